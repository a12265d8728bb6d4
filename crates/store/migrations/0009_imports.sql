-- Service desk and incident management (REQUIREMENTS §4): tickets imported from other ITSM
-- tools keep the number they had there as an external reference, so an import can be traced
-- back to its source and is never loaded twice.

CREATE TABLE ticket_external_refs (
    ticket_id TEXT PRIMARY KEY REFERENCES tickets (id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    external_ref TEXT NOT NULL,
    imported_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX ticket_external_refs_source ON ticket_external_refs (source, external_ref);
