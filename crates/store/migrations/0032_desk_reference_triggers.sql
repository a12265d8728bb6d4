-- Incident management and service level management (§8.1, §6.1), every page of the service
-- desk: the database itself bumps the `desk_reference` counter on every write to the reference
-- data each process keeps a copy of (crates/app/src/reference.rs) — the priority matrix setting,
-- SLAs with their services, business calendars with their days, teams, staff accounts,
-- catalogue services and projects — in the writing transaction, whatever code wrote. Staff
-- accounts count only for the columns the copy holds (name, email, active, kind), so login
-- bookkeeping and contacts' accounts leave the copies alone. Triggers are per-backend SQL: the
-- runner keeps the part after `-- keel:sqlite` or `-- keel:postgres` for that backend only.
INSERT INTO counters (name, value) VALUES ('desk_reference', 0) ON CONFLICT (name) DO NOTHING;

-- keel:sqlite
CREATE TRIGGER teams_desk_reference_insert AFTER INSERT ON teams
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;
CREATE TRIGGER teams_desk_reference_update AFTER UPDATE ON teams
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;
CREATE TRIGGER teams_desk_reference_delete AFTER DELETE ON teams
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;
CREATE TRIGGER projects_desk_reference_insert AFTER INSERT ON projects
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;
CREATE TRIGGER projects_desk_reference_update AFTER UPDATE ON projects
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;
CREATE TRIGGER projects_desk_reference_delete AFTER DELETE ON projects
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;
CREATE TRIGGER services_desk_reference_insert AFTER INSERT ON services
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;
CREATE TRIGGER services_desk_reference_update AFTER UPDATE ON services
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;
CREATE TRIGGER services_desk_reference_delete AFTER DELETE ON services
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;
CREATE TRIGGER slas_desk_reference_insert AFTER INSERT ON slas
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;
CREATE TRIGGER slas_desk_reference_update AFTER UPDATE ON slas
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;
CREATE TRIGGER slas_desk_reference_delete AFTER DELETE ON slas
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;
CREATE TRIGGER sla_services_desk_reference_insert AFTER INSERT ON sla_services
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;
CREATE TRIGGER sla_services_desk_reference_update AFTER UPDATE ON sla_services
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;
CREATE TRIGGER sla_services_desk_reference_delete AFTER DELETE ON sla_services
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;
CREATE TRIGGER business_calendars_desk_reference_insert AFTER INSERT ON business_calendars
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;
CREATE TRIGGER business_calendars_desk_reference_update AFTER UPDATE ON business_calendars
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;
CREATE TRIGGER business_calendars_desk_reference_delete AFTER DELETE ON business_calendars
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;
CREATE TRIGGER calendar_days_desk_reference_insert AFTER INSERT ON calendar_days
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;
CREATE TRIGGER calendar_days_desk_reference_update AFTER UPDATE ON calendar_days
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;
CREATE TRIGGER calendar_days_desk_reference_delete AFTER DELETE ON calendar_days
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;
CREATE TRIGGER settings_desk_reference_insert AFTER INSERT ON settings WHEN NEW.name = 'incident.priority_matrix'
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;
CREATE TRIGGER settings_desk_reference_update AFTER UPDATE ON settings WHEN OLD.name = 'incident.priority_matrix' OR NEW.name = 'incident.priority_matrix'
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;
CREATE TRIGGER settings_desk_reference_delete AFTER DELETE ON settings WHEN OLD.name = 'incident.priority_matrix'
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;
CREATE TRIGGER users_desk_reference_insert AFTER INSERT ON users WHEN NEW.kind = 'staff'
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;
CREATE TRIGGER users_desk_reference_update AFTER UPDATE OF kind, email, display_name, active ON users WHEN OLD.kind = 'staff' OR NEW.kind = 'staff'
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;
CREATE TRIGGER users_desk_reference_delete AFTER DELETE ON users WHEN OLD.kind = 'staff'
BEGIN INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1; END;

-- keel:postgres
CREATE FUNCTION keel_bump_desk_reference() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO counters (name, value) VALUES ('desk_reference', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER teams_desk_reference AFTER INSERT OR UPDATE OR DELETE ON teams
    FOR EACH STATEMENT EXECUTE FUNCTION keel_bump_desk_reference();
CREATE TRIGGER projects_desk_reference AFTER INSERT OR UPDATE OR DELETE ON projects
    FOR EACH STATEMENT EXECUTE FUNCTION keel_bump_desk_reference();
CREATE TRIGGER services_desk_reference AFTER INSERT OR UPDATE OR DELETE ON services
    FOR EACH STATEMENT EXECUTE FUNCTION keel_bump_desk_reference();
CREATE TRIGGER slas_desk_reference AFTER INSERT OR UPDATE OR DELETE ON slas
    FOR EACH STATEMENT EXECUTE FUNCTION keel_bump_desk_reference();
CREATE TRIGGER sla_services_desk_reference AFTER INSERT OR UPDATE OR DELETE ON sla_services
    FOR EACH STATEMENT EXECUTE FUNCTION keel_bump_desk_reference();
CREATE TRIGGER business_calendars_desk_reference AFTER INSERT OR UPDATE OR DELETE ON business_calendars
    FOR EACH STATEMENT EXECUTE FUNCTION keel_bump_desk_reference();
CREATE TRIGGER calendar_days_desk_reference AFTER INSERT OR UPDATE OR DELETE ON calendar_days
    FOR EACH STATEMENT EXECUTE FUNCTION keel_bump_desk_reference();
CREATE TRIGGER settings_desk_reference_insert AFTER INSERT ON settings
    FOR EACH ROW WHEN (NEW.name = 'incident.priority_matrix') EXECUTE FUNCTION keel_bump_desk_reference();
CREATE TRIGGER settings_desk_reference_update AFTER UPDATE ON settings
    FOR EACH ROW WHEN (OLD.name = 'incident.priority_matrix' OR NEW.name = 'incident.priority_matrix') EXECUTE FUNCTION keel_bump_desk_reference();
CREATE TRIGGER settings_desk_reference_delete AFTER DELETE ON settings
    FOR EACH ROW WHEN (OLD.name = 'incident.priority_matrix') EXECUTE FUNCTION keel_bump_desk_reference();
CREATE TRIGGER users_desk_reference_insert AFTER INSERT ON users
    FOR EACH ROW WHEN (NEW.kind = 'staff') EXECUTE FUNCTION keel_bump_desk_reference();
CREATE TRIGGER users_desk_reference_update AFTER UPDATE OF kind, email, display_name, active ON users
    FOR EACH ROW WHEN (OLD.kind = 'staff' OR NEW.kind = 'staff') EXECUTE FUNCTION keel_bump_desk_reference();
CREATE TRIGGER users_desk_reference_delete AFTER DELETE ON users
    FOR EACH ROW WHEN (OLD.kind = 'staff') EXECUTE FUNCTION keel_bump_desk_reference();
