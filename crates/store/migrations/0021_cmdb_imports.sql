-- Configuration management (REQUIREMENTS §5): CIs imported from CSV files or another CMDB (iTop)
-- keep their reference there, so relations in later files can name them and no CI is imported
-- twice from the same source.

CREATE TABLE ci_external_refs (
    ci_id TEXT PRIMARY KEY REFERENCES configuration_items (id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    external_ref TEXT NOT NULL,
    imported_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX ci_external_refs_source ON ci_external_refs (source, external_ref);
