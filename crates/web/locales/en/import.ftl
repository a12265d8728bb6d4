import-title = Import incidents from CSV
import-intro = Choose a service project, a CSV export of another tool and a mapping of its columns. Check it first: every bad row is listed with its line and reason, and nothing is written. The import then writes all tickets in one go, or none.
import-file = CSV file
import-mapping = Mapping (TOML)
import-mapping-help = Columns or templates per field, value maps, date formats and missing markers; examples are in docs/import/ (this one is for the UCI ServiceNow event log).
import-check = Check (dry run)
import-run = Import
import-report = Dry-run report
import-rows = { $count ->
    [one] { $count } row read
   *[other] { $count } rows read
}
import-tickets = { $count ->
    [one] { $count } ticket
   *[other] { $count } tickets
}
import-new-categories = Categories to be created
import-all-good = Every row is good; nothing was written.
import-line = Line
import-reference = Source number
import-field = Field
import-reason = Reason
import-no-project = No such service project, or you may not log tickets on it.
import-refused = { $count ->
    [one] { $count } bad row: nothing was imported.
   *[other] { $count } bad rows: nothing was imported.
}
import-done = { $count ->
    [one] Imported { $count } ticket.
   *[other] Imported { $count } tickets.
}
import-phase-reading = Reading rows…
import-phase-checking = Checking tickets…
import-phase-writing = Writing tickets…
nav-incident-import = Import incidents
