# Service desk, second part: attachments, links, watchers, automatic closure.
incident-attachments = Attachments
incident-attachment-add = Attach a file
incident-attachment-limit = At most { $size }. Images and PDF open in the browser; other files are downloaded.
incident-action-attach = Attach
incident-children = Child tickets
incident-merged = Merged duplicates
field-file = File
err-empty-file = The file is empty.
err-too-many = Send one file at a time.
nav-requests = Request a service
request-title = Request a service
request-submit = Send request
err-unknown-field = This form does not ask that.
