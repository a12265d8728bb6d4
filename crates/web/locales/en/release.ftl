# Release management (REQUIREMENTS §5, manual §5.1.4)

nav-releases = Releases
release-list-title = Releases
release-version = Version
release-status-planned = Planned
release-status-in-progress = In progress
release-status-deployed = Deployed
release-status-rolled-back = Rolled back
release-status-reviewed = Reviewed
release-status-closed = Closed
release-status-cancelled = Cancelled
release-notes-markdown = Release notes (Markdown)
release-notes-pdf = Release notes (PDF)
release-signers = Signers, in order
release-signed-off = Signed off
release-stage-build = Build
release-stage-test = Test
release-stage-acceptance = Acceptance
release-stage-deployment = Deployment
release-new-title = New release
release-action-create = Create release
release-help-lines = One per line
field-version = Version
field-change-ids = Changes
field-rollback-plan = Rollback plan
field-known-issues = Known issues
err-unknown-project = no such service project
