app-tagline = ISO/IEC 20000 service management

## navigation
nav-group-workspace = Workspace
nav-group-relationship = Business relationship
nav-group-delivery = Service delivery
nav-group-management-system = Management system
nav-group-account = My account
nav-home = Home
nav-organizations = Customer organisations
nav-contacts = Customer contacts
nav-projects = Service projects
nav-teams = Resolver groups
nav-users = Staff
nav-audit = Audit trail
nav-jobs = Background jobs
nav-profile = Profile
nav-tokens = API tokens

## actions
action-back = Back
action-home = Home
action-save = Save
action-search = Search
action-login = Sign in
action-logout = Sign out
action-logout-everywhere = Sign out all other sessions
action-change-password = Change password
action-reset-password = Set a new password
action-create-token = Create token
action-revoke-token = Revoke token
action-new-organization = New organisation
action-new-contact = New contact
action-new-user = New staff member
action-new-team = New resolver group
action-new-project = New service project
action-verify-audit = Verify integrity
action-retry-job = Retry job

## fields
field-name = Name
field-code = Code
field-description = Description
field-active = Active
field-display-name = Name
field-email = E-mail
field-phone = Phone
field-organization-id = Organisation
field-password = Password
field-current-password = Current password
field-new-password = New password
field-locale = Language
field-time-zone = Time zone
field-roles = Roles
field-lead-user-id = Group lead
field-member-ids = Members
field-member-count = Members
field-manager-user-id = Project manager
field-starts-on = Contract starts
field-ends-on = Contract ends
field-status = Status
field-expires-in-days = Expires after (days)
field-created-at = Created
field-last-used-at = Last used
field-expires-at = Expires
field-prefix = Token starts with
value-yes = Yes
value-no = No

help-code = Letters, digits, "-" and "_"; stored in capitals.
help-password = At least 10 characters.
help-contact-password = Leave empty if this contact does not use the portal yet.
help-time-zone = An IANA time zone, e.g. Asia/Shanghai or Europe/London.
help-expires-in-days = Leave empty for a token that does not expire.

## roles (REQUIREMENTS §0)
role-administrator = Administrator
role-service-manager = Service department manager
role-project-manager = Project manager
role-service-desk-agent = Service desk
role-technician = Technician (resolver group)
role-cab-member = Change advisory board member
role-finance = Finance
role-sales = Sales / account manager
role-management-representative = Management representative
role-auditor = Auditor

## processes
process-service-desk = Service desk
process-incident = Incident management
process-business-relationship = Business relationship management
process-information-security = Information security management
process-supplier = Supplier management
process-finance = Budgeting and accounting for IT services
process-problem = Problem management
process-release = Release management
process-configuration = Configuration management
process-change = Change management
process-availability = Availability and IT service continuity
process-capacity = Capacity management
process-service-level = Service level management
process-service-reporting = Service reporting

project-status-active = Active
project-status-closed = Closed

## tailoring
tailoring-title = Process tailoring
tailoring-help = Six processes are mandatory for every service project; the other eight can be tailored out of this contract. Each decision is recorded with who, when and why.
tailoring-process = Process
tailoring-kind = Kind
tailoring-state = State
tailoring-decision = Last decision
tailoring-mandatory = Mandatory
tailoring-tailorable = Tailorable
tailoring-on = On
tailoring-off = Off
tailoring-reason = Reason
tailoring-switch-off = Switch off
tailoring-switch-on = Switch on

## lists, forms, history
list-empty = Nothing here yet.
list-next = Next page
form-has-errors = Please correct the fields marked below.
history-title = History
history-empty = No changes recorded.
history-when = When
history-who = Who
history-action = Action
history-changes = Changes
audit-action-create = Created
audit-action-update = Changed
audit-action-delete = Deleted
audit-action-secret_key_rotated = Secret key rotated
audit-record = Record
audit-field-count = { $count ->
    [one] { $count } field
   *[other] { $count } fields
}
audit-verified-entries = { $n ->
    [one] { $count } audit entry checked.
   *[other] { $count } audit entries checked.
}
audit-verify-ok = The audit trail is intact
audit-verify-failed = The audit trail has problems

## pages
login-title = Sign in to Keel
setup-title = Create the first administrator
setup-intro = Keel has no administrator yet. This one-time link lets you create one.
setup-submit = Create administrator
home-title = Home
home-greeting = Welcome, { $name }.
home-projects = Your service projects
home-no-projects = You are not on any service project yet.
password-title = Password
reset-password-title = New password
sessions-title = Sessions
sessions-help = Ends every session of yours except this one, on every device.
tokens-existing = Your tokens
token-created = Token created
token-shown-once = Copy the token now. Keel stores only a digest and cannot show it again.
token-active = Active
token-revoked = Revoked
token-revoke-help = Programs using this token will be refused from now on.
job-kind = Job
job-run-at = Due
job-attempts = Attempts
job-schedule = Schedule
job-last-error = Last error
job-status-pending = Waiting
job-status-running = Running
job-status-done = Done
job-status-failed = Failed
home-awaiting-approval = Changes awaiting your approval: { $count }

## messages after an action
flash-saved = Saved.
flash-created = Created.
flash-password-changed = Your password was changed; your other sessions were ended.
flash-signed-out-elsewhere = Your other sessions were ended.
flash-token-revoked = The token was revoked.
flash-tailored = The tailoring decision was recorded.
flash-setup-done = The administrator was created. Sign in.
flash-signed-out = You are signed out.
flash-job-retried = The job was queued again.

## errors
status-400 = Bad request
status-401 = Sign-in needed
status-403 = Not allowed
status-404 = Not found
status-409 = Conflict
status-412 = Changed by someone else
status-413 = Too large
status-422 = Invalid input
status-428 = Version needed
status-429 = Too many attempts
status-500 = Something went wrong
error-csrf = The form expired or did not come from Keel. Go back, reload the page and try again.
error-malformed-form = The form could not be read.
err-validation-failed = Some fields are not valid.
err-unauthenticated = Please sign in.
err-forbidden = You are not allowed to do this.
err-not-found = This page or record does not exist, or you may not see it.
err-conflict = This conflicts with the current state of the record.
err-stale-version = Someone else changed this record after you opened it. Your entries are kept below; reload to see their change.
err-precondition-required = The version you edited is missing.
err-rate-limited = Too many attempts. Try again later.
err-rate-limited-minutes = { $minutes ->
    [one] Too many attempts. Try again in { $minutes } minute.
   *[other] Too many attempts. Try again in { $minutes } minutes.
}
err-bad-credentials = The e-mail or password is not correct.
err-process-disabled = This process is switched off for the service project.
err-invalid-transition = This step is not allowed in the record's current state.
err-internal = Something went wrong on our side. It has been logged.
err-setup-token-invalid = This setup link is invalid, already used or expired.
err-required = Required.
err-too-long = Too long.
err-invalid-characters = Contains characters that are not allowed.
err-invalid-email = Not a valid e-mail address.
err-password-too-short = Use at least 10 characters.
err-invalid-code = Use letters, digits, "-" and "_" only.
err-invalid-time-zone = Unknown time zone.
err-invalid-locale = Choose English or 简体中文.
err-already-taken = Already in use.
err-unknown-reference = Does not exist.
err-not-allowed = Not allowed here.
err-invalid-date = Use the form YYYY-MM-DD.
err-ends-before-start = The end must come after the start.
err-invalid-status = Unknown status.
err-mandatory-process = Mandatory processes cannot be tailored out.
err-unknown-process = Unknown process.
err-wrong-password = The current password is not correct.
err-out-of-range = Out of the allowed range.
err-not-a-number = Enter a whole number.
err-cannot-remove-own-admin = You cannot remove your own administrator role.
err-cannot-deactivate-self = You cannot deactivate your own account.
err-unknown-role = Unknown role.
field-disabled-processes = Processes tailored out
field-tailoring-reason = Tailoring reason
field-kind = Kind
field-project-id = Service project
field-team-id = Resolver group
err-invalid-choice = Choose one of the offered values.
project-processes = Working pages of this project
history-approval-step = Step { $seq }: { $name } — { $quorum }
history-quorum-all = { $count ->
    [one] 1 of 1
   *[other] all { $count }
}
history-quorum-any = any 1 of { $count }
history-quorum-at-least = { $n } of { $count }
field-approval-steps = Approval steps
field-transition-reason = Reason
field-action = Action
history-system = Keel (automatic)
history-not-available = (not available)
# whether a webhook secret or an IMAP password is stored (never the value)
secret-state-set = set
secret-state-not-set = not set
secret-state-replaced = replaced (a new one was entered)
