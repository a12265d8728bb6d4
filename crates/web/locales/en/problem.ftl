## Problem management and the known error database (REQUIREMENTS §4)

nav-problems = Problems
nav-known-errors = Known error database
nav-trends = Incident trends
nav-articles = Knowledge articles

problem-list-title = Problems
problem-new-title = Raise a problem
problem-action-raise = Raise the problem
problem-assignee = Assigned to
problem-known-error = Known error
problem-problem = Problem
problem-analysis = Root-cause analysis
problem-incidents = Linked incidents
problem-panel-title = Problem management
problem-unknown = Not yet known
problem-none = None yet
problem-published = Published on the portal
problem-not-published = Not published
problem-yes = Yes
problem-no = No
problem-language-en = English
problem-language-zh-CN = Chinese (简体中文)
problem-help-incidents = Incident numbers (INC-000042) of this project, separated by commas.
problem-help-root-cause = Leave empty until the root cause is identified.
problem-help-translation = The same record in the other language, for customers who read it.

## values
problem-status-new = New
problem-status-under-investigation = Under investigation
problem-status-known-error = Known error
problem-status-resolved = Resolved
problem-status-closed = Closed
problem-source-incident-trend = Incident trend
problem-source-major-incident = Major incident
problem-source-proactive = Proactive
problem-source-supplier = Supplier notice
problem-rca-five-whys = Five whys
problem-rca-ishikawa = Ishikawa (fishbone) diagram
problem-rca-kepner-tregoe = Kepner-Tregoe
problem-rca-fault-tree = Fault tree analysis
problem-rca-other = Other
problem-closure-resolved = Closed after resolution
problem-closure-cancelled = Cancelled

## actions
problem-action-investigate = Investigate
problem-action-reassign = Reassign
problem-action-record-rca = Record the analysis
problem-action-record-workaround = Record a workaround
problem-action-declare-known-error = Declare a known error
problem-action-set-publication = Publish or withdraw
problem-action-resolve = Resolve
problem-action-reopen = Reopen
problem-action-close = Close
problem-action-cancel = Cancel
problem-action-edit = Edit details
problem-action-link-to-problem = Link to problem
flash-problem-not-found = No such problem.
problem-action-link = Link incidents
problem-action-link-known-error = Link to this ticket
problem-action-raise-from-incident = Raise a problem
problem-action-raise-from-these = Raise a problem from these incidents

## trend view
problem-trend-title = Incident trends
problem-trend-help = Incidents per category, service or configuration item over time: recurring ones are candidate problems.
problem-trend-by-category = By category
problem-trend-by-service = By service
problem-trend-by-ci = By configuration item
problem-trend-week = Weeks
problem-trend-month = Months
problem-trend-none = (none)
problem-trend-show = Show
problem-trend-total = Total
problem-trend-choose-project = Choose a service project to raise a problem from a row.

## known error database and portal
problem-kedb-title = Known error database
problem-suggest-title = Does this match a known error?
problem-suggest-none = No known error matches.
problem-suggest-help = Type a title or description to look for known errors.
problem-articles-title = Knowledge articles
problem-articles-empty = No articles are published for your organisation.

## fields
field-source = Source
field-service-id = Affected service
field-incident-ids = Incidents
field-rca-method = Analysis method
field-rca-findings = Findings
field-rca-recorded-by = Analysis recorded by
field-findings = Findings
field-root-cause = Root cause
field-workaround = Workaround
field-workaround-recorded-by = Workaround recorded by
field-fixing-change-id = Fixing change
field-symptoms = Symptoms
field-translation-title = Title (other language)
field-translation-symptoms = Symptoms (other language)
field-translation-workaround = Workaround (other language)
field-publish-to-portal = Published on the portal
field-problem-id = Problem
field-known-error-id = Known error
field-dimension = Group by
field-bucket = Period
field-periods = Number of periods

## errors
err-not-an-incident = Service requests are not caused by problems.
err-other-project = The incident belongs to another service project.
err-root-cause-or-workaround = Record the root cause or a workaround first.
err-workaround-required = Only known errors with a workaround are published.
err-too-few = Not enough incidents for this source.
err-problem-closed = The problem is resolved or closed.
err-too-many = Too many at once.
problem-suggest-matched = Matched by: { $reasons }
problem-suggest-reason-same-ci = same CI
problem-suggest-reason-related-ci = a CI it runs on or depends on
problem-suggest-reason-same-category = same category
problem-suggest-reason-text = text
