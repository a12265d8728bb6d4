## Service desk and incident management (REQUIREMENTS §4)

nav-group-resolution = Resolution processes
nav-incidents = Incidents and requests
nav-incident-new = Log a ticket
nav-my-tickets = Our tickets
nav-ticket-new = Raise a ticket

incident-queue-title = Service desk queue
incident-portal-title = Our organisation's tickets
incident-new-title = Log a ticket
incident-portal-new-title = Raise a ticket
incident-help-reporter = The customer contact (or colleague) who called.
incident-search = Number or title
incident-total = { $count ->
    [one] { $count } ticket
   *[other] { $count } tickets
}
incident-assignee = Assigned to
incident-updated-at = Last activity
incident-major = Major incident
incident-actions = Next steps
incident-conversation = Conversation
incident-conversation-empty = No replies or notes yet.
incident-conversation-add = Add a reply or note
incident-worklog = Work log
incident-worklog-add = Log time spent
incident-worklog-total = { $minutes ->
    [one] { $minutes } minute in total
   *[other] { $minutes } minutes in total
}
incident-rating-title = Satisfaction
incident-major-declare = Declare a major incident
incident-major-stand-down = Stand the major incident down
incident-closure = Closure

## queues
incident-view-mine = Mine
incident-view-team = My resolver groups
incident-view-unassigned = Unassigned
incident-view-pending = Pending
incident-view-open = Open
incident-view-all = All
incident-sort-priority = Priority
incident-sort-desc-updated-at = Latest activity first
incident-sort-updated-at = Oldest activity first
incident-sort-desc-created-at = Newest first
incident-sort-created-at = Oldest first
incident-sort-number = Number

## values
incident-kind-incident = Incident
incident-kind-service-request = Service request
incident-status-new = New
incident-status-assigned = Assigned
incident-status-in-progress = In progress
incident-status-pending = Pending
incident-status-resolved = Resolved
incident-status-closed = Closed
incident-priority-p1 = P1 critical
incident-priority-p2 = P2 high
incident-priority-p3 = P3 medium
incident-priority-p4 = P4 low
incident-level-high = High
incident-level-medium = Medium
incident-level-low = Low
incident-channel-portal = Portal
incident-channel-email = E-mail
incident-channel-phone = Phone / manual entry
incident-channel-api = API
incident-channel-monitoring = Monitoring alert
incident-pending-waiting-for-customer = Waiting for the customer
incident-pending-waiting-for-supplier = Waiting for a supplier
incident-pending-waiting-for-change = Waiting for a change
incident-pending-other = Other
incident-resolution-solved = Solved
incident-resolution-workaround = Workaround
incident-resolution-fulfilled = Fulfilled
incident-resolution-advice-given = Advice given
incident-resolution-no-fault-found = No fault found
incident-resolution-resolved-by-change = Resolved by a change
incident-resolution-resolved-by-supplier = Resolved by a supplier
incident-resolution-resolved-by-problem = Resolved by a problem
incident-closure-confirmed-by-reporter = Confirmed by the reporter
incident-closure-closed-by-staff = Closed by the service desk
incident-closure-auto-closed = Closed automatically
incident-closure-cancelled = Cancelled
incident-closure-duplicate = Duplicate of
incident-visibility-public = Public reply
incident-visibility-internal = Internal note
incident-score-1 = 1 – very dissatisfied
incident-score-2 = 2 – dissatisfied
incident-score-3 = 3 – neutral
incident-score-4 = 4 – satisfied
incident-score-5 = 5 – very satisfied

## actions
incident-action-assign = Assign
incident-action-reassign = Reassign
incident-action-start = Start work
incident-action-pend = Put on hold
incident-action-resume = Resume
incident-action-resolve = Resolve
incident-action-confirm = Confirm the resolution
incident-action-reject = Not solved
incident-action-close = Close
incident-action-auto-close = Close automatically
incident-action-reopen = Reopen
incident-action-cancel = Cancel the ticket
incident-action-mark-duplicate = Mark as duplicate
incident-action-log = Log ticket
incident-action-send = Send
incident-action-log-work = Log time
incident-action-rate = Rate
incident-action-declare-major = Declare major incident
incident-action-stand-down = Stand down

## fields
field-number = Number
field-title = Title
field-reporter-id = Reported by
field-channel = Channel
field-impact = Impact
field-urgency = Urgency
field-priority = Priority
field-category-id = Category
field-agent-id = Agent
field-sort = Order
field-pending-reason = Pending reason
field-pending-note = Pending note
field-note = Note
field-resolution-code = Resolution code
field-resolution-notes = Resolution notes
field-reason = Reason
field-duplicate-of = Duplicate of (number)
field-duplicate-of-id = Duplicate of
field-body = Message
field-visibility = Visibility
field-minutes = Minutes
field-score = Score
field-comment = Comment
field-manager-id = Major incident manager
field-transition = Step
field-reopen-count = Times reopened
field-major = Major incident
field-major-manager-id = Major incident manager
field-major-reason = Major incident reason
field-major-declared-at = Declared major
field-major-declared-by = Declared major by
field-stand-down-reason = Stand-down reason
field-closure-kind = Closure
field-closure-reason = Closure reason
field-resolved-by = Resolved by
field-closed-by = Closed by
field-created-by = Logged by
field-status-changed-at = Status since
field-assigned-at = Assigned at
field-started-at = Work started at
field-pending-at = Pending since
field-resolved-at = Resolved at
field-closed-at = Closed at
field-first-response-at = First response at

## errors of the service desk rules
err-not-staff = Only the service desk can do this.
err-not-reporter = Only the person who reported the ticket can do this.
err-not-staff-or-reporter = Only the service desk or the reporter can do this.
err-not-system = Only Keel itself does this.
err-not-applicable = This does not apply to this kind of ticket.
err-unchanged = The ticket is already assigned there.
err-project-closed = The service project is closed.
err-closed = The ticket is closed; reopen it first.
err-reopen-window-expired = The ticket was closed too long ago to reopen.
err-reopen-not-allowed = Closed tickets cannot be reopened.
err-not-reopenable = A cancelled or merged ticket cannot be reopened.
err-not-resolved = Only resolved tickets can be rated.
err-already-rated = The ticket is closed and its rating is final.
err-in-future = This lies in the future.
err-already-major = The ticket is already a major incident.
err-not-major = The ticket is not a major incident.
err-not-incident = Only incidents can be major incidents.
err-not-open = The ticket is no longer open.
err-self-merge = A ticket cannot be a duplicate of itself.
err-closed-target = A ticket cannot be merged into a closed ticket.
err-kind-mismatch = Incidents and service requests are not merged into each other.
err-project-mismatch = Tickets of different service projects are not merged.
err-cycle = This would go round in a circle.
err-chain-too-long = The chain of links is too long.
err-already-taken-on = The service desk has taken the ticket on; add a reply instead.
err-not-checked = The merge was checked for another ticket.
incident-affected-cis = Affected configuration items
incident-help-affected-cis = Type to find configuration items; hold Ctrl (⌘ on a Mac) to choose several.
