-- Service desk (REQUIREMENTS §4), email channel: a mailbox's IMAP server may present a
-- certificate of a private CA; its PEM certificate(s) are trusted for that mailbox only,
-- in addition to the public roots.
ALTER TABLE mailboxes ADD COLUMN imap_ca_pem TEXT;
