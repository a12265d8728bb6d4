# Change administration, CMDB import and CI classes, release forms (REQUIREMENTS §5)

nav-change-awaiting = Awaiting my approval
nav-ci-classes = CI classes
nav-cmdb-import = Import CIs
nav-change-delegations = Approval delegations
nav-change-freezes = Change freezes
nav-change-templates = Standard change templates
nav-change-control = Change control of CIs

field-checklist = Checklist
field-expected = Expected results
field-signer-ids = Signers
field-key = Key
field-result = Actual result
field-met = Met
field-starts-at = Starts
field-ends-at = Ends
field-delegator-id = Delegating approver
field-delegate-id = Delegate
field-mode = Strictness
field-name-en = Name (English)
field-name-zh = Name (Chinese)
field-parent = Parent class

release-plan-stage = Plan the stage
release-record-result = Record an actual result
release-action-record = Record
release-help-expected = One per line: key | description | target
release-help-signers = In the order they sign
release-comparison = Planned against actual
release-verdict-as-expected = As expected
release-verdict-deviations = Deviations
release-verdict-incomplete = Incomplete
release-results-met = Results met
release-results-not-met = Results not met or missing
release-rollback = Rollback
release-rollback-restored = Restored
release-rollback-partially-restored = Partially restored
release-rollback-failed = Failed
release-review = Release review
release-set-rollback-plan = Rollback plan
release-record-rollback = Record a rollback
release-record-review = Record the release review
release-window = Planned window
release-outcome = Rollback and review

change-awaiting-title = Awaiting my approval
change-awaiting-intro = Changes whose open approval step waits for your vote, as approver or as delegate. Open one to approve or reject it.
change-freezes-title = Change freezes
change-freezes-intro = Freeze (blackout) windows: changes planned inside one are shown as conflicts before approval.
change-freeze-all-cis = Every CI
change-action-end-freeze = End now
change-freeze-new = Declare a freeze
change-action-declare-freeze = Declare
change-freeze-cis-help = None chosen: the freeze covers every CI.
change-templates-title = Standard change templates
change-templates-intro = Pre-approved templates: standard changes raised from them need no CAB.
change-action-retire = Retire
change-action-restore = Restore
change-template-new = New template
change-template-edit = Edit standard change template
change-template-approved = Approved { $when }. Saving approves it again in your name.
change-delegations-title = Approval delegations
change-delegations-intro = While you are away, a delegate approves or rejects changes in your place.
change-delegation-new = Delegate my approvals
change-action-delegate = Delegate
change-delegator-help = Empty: your own approvals.
change-control-title = Change control of live CIs
change-control-intro = How strictly changes to live CIs must reference an approved change in implementation.
change-control-off = Off
change-control-warn = Warn (accept and note it in the audit trail)
change-control-enforce = Enforce (refuse)

cmdb-import-title = Import CIs
cmdb-import-intro = Import CIs and their relations from a CSV file with a column mapping, or from an iTop XML data file. Check first: the dry run lists every bad row by line and writes nothing.
cmdb-import-csv = CSV with a column mapping
cmdb-import-itop = iTop XML
cmdb-import-xml = XML content
cmdb-import-mapping-help = TOML: [fields] maps external_ref, class and name (and status, project, location, owner_email, team) to columns; [attributes] and [relations] name further columns. See docs/import/cis.toml.
cmdb-import-cis = CIs read
cmdb-import-relations = Relations read
cmdb-import-imported-cis = CIs imported
cmdb-import-imported-relations = Relations imported
cmdb-import-skipped = Skipped source classes
cmdb-classes-title = CI classes
cmdb-classes-intro = Classes of configuration items with their typed attributes; a class inherits every attribute of its parent.
cmdb-class-new = New CI class
cmdb-class-attributes = Attributes
cmdb-class-shipped = Shipped
cmdb-class-key-help = Lower-case letters, digits and '_'; cannot be changed later.
cmdb-class-inherited = Inherited attributes
cmdb-class-attributes-help = Enumerations list their values separated by commas; a reference may be limited to one class. Leave a row empty to drop it.
cmdb-attr-label-en = Label (English)
cmdb-attr-label-zh = Label (Chinese)
cmdb-attr-type = Type
cmdb-attr-values = Values
cmdb-attr-class = Referenced class
cmdb-attr-required = Required
cmdb-attr-unique = Unique
cmdb-attr-type-text = Text
cmdb-attr-type-number = Number
cmdb-attr-type-date = Date
cmdb-attr-type-enum = Enumeration
cmdb-attr-type-reference = Reference to a CI
cmdb-attr-type-ip-address = IP address
cmdb-attr-type-url = URL
cmdb-attr-type-boolean = Yes/no

err-invalid-expected = Write each result as key | description | target.
err-freeze-over = The freeze has already ended.
err-duplicate-class = A class with this key exists.
err-class-cycle = A class cannot inherit from itself.
err-duplicate-attribute = This attribute is already defined by the class or a parent.
err-invalid-key = Use lower-case letters, digits and '_', starting with a letter.
err-not-rollbackable = Only a release in progress or deployed can be rolled back.
err-not-reviewable = A release is reviewed once deployed or rolled back.
err-invalid-value = Invalid value.
err-duplicate-value = A value is listed twice.
err-invalid-unique = A yes/no attribute cannot be unique.
err-self-delegation = You cannot delegate to yourself.
err-unknown-signer = No active staff member of the project.
err-end-not-after-start = The end must be after the start.
err-invalid-outcome = Choose one of the offered outcomes.
change-reject-reason-help = Required to reject.
cmdb-import-xml-file = XML file
action-create = Create
cmdb-attr-fill = Value for existing CIs
err-existing-cis-missing = { $count ->
    [one] One existing CI has no value for this attribute: give a value for existing CIs, or leave it optional.
   *[other] { $count } existing CIs have no value for this attribute: give a value for existing CIs, or leave it optional.
}
err-existing-cis-invalid = { $count ->
    [one] One existing CI has a value that this definition refuses: correct it first, or keep the old type or values.
   *[other] { $count } existing CIs have a value that this definition refuses: correct them first, or keep the old type or values.
}
err-existing-cis-not-unique = { $count ->
    [one] One existing CI shares a value of this attribute: make it unique first.
   *[other] { $count } existing CIs share a value of this attribute: make them unique first.
}
