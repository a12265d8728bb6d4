//! Service desk agent workspace (REQUIREMENTS §4): saved and shared queue views — filters,
//! sort and columns an agent keeps, shared with a team or with all staff, counted per view.

use crate::incidents::Queue;
use crate::writer::snapshot;
use crate::{App, AppError, Principal, Result};
use keel_domain::audit::AuditAction;
use keel_domain::error::{Errors, FieldError};
use keel_domain::incident::{Priority, Status, TicketKind};
use keel_store::incident_views::{self as store, IncidentViewRecord};
use keel_store::incidents::{QueueCounts, TicketFilter, TicketRecord};
use keel_store::page::{Page, PageRequest};
use keel_store::sla_clocks::ClockRow;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The columns a view may show, in their default order.
pub const VIEW_COLUMNS: &[&str] = &[
    "number",
    "title",
    "status",
    "priority",
    "sla",
    "project",
    "assignee",
    "team",
    "agent",
    "reporter",
    "organization",
    "category",
    "kind",
    "impact",
    "urgency",
    "created_at",
    "updated_at",
];

/// Columns that name the desk's own people and projects: never shown to contacts.
pub const STAFF_COLUMNS: &[&str] = &["project", "assignee", "team", "agent"];

/// The columns of the queue when no view chooses them.
pub const DEFAULT_COLUMNS: &[&str] = &["number", "title", "status", "priority", "sla", "project", "assignee", "reporter", "updated_at"];

/// Sort keys a view may name (`-` first: descending).
pub const VIEW_SORTS: &[&str] = &["priority", "updated_at", "created_at", "number", "status"];

/// Who sees a view besides its owner.
pub const AUDIENCES: &[&str] = &["private", "team", "everyone"];

/// The filters a view keeps; empty values do not filter.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ViewFilters {
    /// A queue: `mine`, `team`, `unassigned`, `pending`, `open` or `all`.
    pub queue: Option<String>,
    pub statuses: Vec<String>,
    pub priorities: Vec<String>,
    pub kind: Option<String>,
    pub team_id: Option<String>,
    pub project_id: Option<String>,
    pub organization_id: Option<String>,
    pub major: Option<bool>,
    pub q: Option<String>,
}

impl ViewFilters {
    /// The store filter this view means for `user_id` (queues like "mine" follow the reader).
    pub fn to_filter(&self, user_id: &str) -> TicketFilter {
        let some = |v: &Option<String>| v.as_ref().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let mut f = TicketFilter {
            statuses: self.statuses.clone(),
            priorities: self.priorities.clone(),
            kind: some(&self.kind),
            team_id: some(&self.team_id),
            project_id: some(&self.project_id),
            organization_id: some(&self.organization_id),
            major: self.major,
            q: some(&self.q),
            ..Default::default()
        };
        if let Some(q) = self.queue.as_deref().and_then(Queue::parse) {
            q.apply(&mut f, user_id);
        }
        f
    }
}

/// A view as its owner writes it.
#[derive(Debug, Clone, Default)]
pub struct ViewInput {
    pub name: String,
    pub audience: String,
    pub team_id: Option<String>,
    pub filters: ViewFilters,
    /// Blank: `priority`.
    pub sort: String,
    /// Empty: the default columns.
    pub columns: Vec<String>,
}

/// A stored view, decoded.
#[derive(Debug, Clone)]
pub struct IncidentView {
    pub record: IncidentViewRecord,
    pub filters: ViewFilters,
    pub columns: Vec<String>,
    /// Whether the reader may change or delete it.
    pub editable: bool,
}

impl IncidentView {
    /// The sort key name and whether it is descending.
    pub fn sort(&self) -> (&str, bool) {
        match self.record.sort.strip_prefix('-') {
            Some(s) => (s, true),
            None => (self.record.sort.as_str(), false),
        }
    }
}

fn may_edit(actor: &Principal, v: &IncidentViewRecord) -> bool {
    !actor.is_read_only() && (v.owner_id == actor.user_id || actor.is_admin())
}

fn decode(actor: &Principal, record: IncidentViewRecord) -> Result<IncidentView> {
    let filters: ViewFilters =
        serde_json::from_str(&record.filters).map_err(|e| AppError::Internal(format!("stored view filters: {e}")))?;
    let columns = record
        .columns
        .split(',')
        .filter(|c| !c.is_empty())
        .filter(|c| actor.is_staff() || !STAFF_COLUMNS.contains(c))
        .map(str::to_string)
        .collect();
    Ok(IncidentView { editable: may_edit(actor, &record), record, filters, columns })
}

fn visible(actor: &Principal, v: &IncidentViewRecord, teams: &[String]) -> bool {
    v.owner_id == actor.user_id
        || (actor.is_staff() && v.audience == "everyone")
        || (v.audience == "team" && v.team_id.as_ref().is_some_and(|t| teams.contains(t)))
}

impl App {
    async fn teams_of(&self, conn: &mut sqlx::AnyConnection, user_id: &str) -> Result<Vec<String>> {
        Ok(store::teams_of_user(conn, user_id).await?)
    }

    async fn check_view(&self, conn: &mut sqlx::AnyConnection, actor: &Principal, input: &ViewInput) -> Result<IncidentViewRecord> {
        let mut e = Errors::new();
        let name = e.check(keel_domain::validate::required_text("name", &input.name, 100));
        let audience = input.audience.trim();
        let audience = if audience.is_empty() { "private" } else { audience };
        let mut team_id = None;
        if !AUDIENCES.contains(&audience) {
            e.push(FieldError::new("audience", "invalid_choice", "audience is private, team or everyone"));
        } else if audience != "private" && !actor.is_staff() {
            e.push(FieldError::new("audience", "invalid_choice", "only staff share views"));
        } else if audience == "team" {
            match input.team_id.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                None => e.push(FieldError::new("team_id", "required", "name the team to share with")),
                Some(t) => match keel_store::directory::get_team(conn, t).await? {
                    Some(team) if actor.is_admin() || team.member_ids.contains(&actor.user_id) => team_id = Some(team.id),
                    _ => e.push(FieldError::new("team_id", "unknown_reference", "not a team of yours")),
                },
            }
        }
        let f = &input.filters;
        if let Some(q) = f.queue.as_deref().filter(|q| !q.is_empty())
            && Queue::parse(q).is_none()
        {
            e.push(FieldError::new("filters.queue", "invalid_choice", "queue is mine, team, unassigned, pending, open or all"));
        }
        if f.statuses.iter().any(|s| Status::parse(s).is_none()) {
            e.push(FieldError::new("filters.statuses", "invalid_choice", "unknown status"));
        }
        if f.priorities.iter().any(|s| Priority::parse(s).is_none()) {
            e.push(FieldError::new("filters.priorities", "invalid_choice", "unknown priority"));
        }
        if f.kind.as_deref().filter(|k| !k.is_empty()).is_some_and(|k| TicketKind::parse(k).is_none()) {
            e.push(FieldError::new("filters.kind", "invalid_choice", "kind is incident or service_request"));
        }
        if f.q.as_deref().is_some_and(|q| q.chars().count() > 200) {
            e.push(FieldError::new("filters.q", "too_long", "at most 200 characters"));
        }
        let sort = input.sort.trim();
        let sort = if sort.is_empty() { "priority" } else { sort };
        if !VIEW_SORTS.contains(&sort.trim_start_matches('-')) {
            e.push(FieldError::new("sort", "invalid_choice", format!("sort is one of {}, optionally with - first", VIEW_SORTS.join(", "))));
        }
        let mut columns: Vec<&str> = Vec::new();
        for c in &input.columns {
            let c = c.trim();
            if !VIEW_COLUMNS.contains(&c) {
                e.push(FieldError::new("columns", "invalid_choice", format!("unknown column {c}")));
            } else if !columns.contains(&c) {
                columns.push(c);
            }
        }
        if columns.is_empty() {
            columns = DEFAULT_COLUMNS.to_vec();
        }
        e.finish()?;
        Ok(IncidentViewRecord {
            name: name.unwrap_or_default(),
            owner_id: actor.user_id.clone(),
            audience: audience.to_string(),
            team_id,
            filters: serde_json::to_string(f).map_err(|e| AppError::Internal(e.to_string()))?,
            sort: sort.to_string(),
            columns: columns.join(","),
            version: 1,
            ..Default::default()
        })
    }

    /// The views the actor may use: their own, their teams', and (staff) everyone's.
    pub async fn list_views(&self, actor: &Principal) -> Result<Vec<IncidentView>> {
        let mut c = self.read().await?;
        let rows = store::list_visible_views(&mut c, &actor.user_id, actor.is_staff()).await?;
        rows.into_iter().map(|r| decode(actor, r)).collect()
    }

    /// A view the actor may use; `NotFound` for views shared with someone else.
    pub async fn get_view(&self, actor: &Principal, id: &str) -> Result<IncidentView> {
        let mut c = self.read().await?;
        let v = store::get_view(&mut c, id.trim()).await?.ok_or(AppError::NotFound)?;
        let teams = self.teams_of(&mut c, &actor.user_id).await?;
        if !visible(actor, &v, &teams) {
            return Err(AppError::NotFound);
        }
        decode(actor, v)
    }

    pub async fn create_view(&self, actor: &Principal, input: ViewInput) -> Result<IncidentView> {
        let mut w = self.write(actor).await?;
        let mut rec = self.check_view(&mut w.tx, actor, &input).await?;
        rec.id = keel_store::new_id();
        rec.created_at = w.now;
        rec.updated_at = w.now;
        store::insert_view(&mut w.tx, &rec).await?;
        w.record("incident_view", &rec.id, AuditAction::Create, None, Some(&snapshot(&rec))).await?;
        let fresh = store::get_view(&mut w.tx, &rec.id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        decode(actor, fresh)
    }

    /// Loads a view for a change: `NotFound` when the actor cannot see it, `Forbidden` when
    /// they see it but neither own it nor administer.
    async fn view_to_change(&self, conn: &mut sqlx::AnyConnection, actor: &Principal, id: &str) -> Result<IncidentViewRecord> {
        let v = store::get_view(conn, id.trim()).await?.ok_or(AppError::NotFound)?;
        let teams = self.teams_of(conn, &actor.user_id).await?;
        if !visible(actor, &v, &teams) && !actor.is_admin() {
            return Err(AppError::NotFound);
        }
        if !may_edit(actor, &v) {
            return Err(AppError::Forbidden);
        }
        Ok(v)
    }

    /// Changes a view (its owner or an administrator); the owner stays.
    pub async fn update_view(&self, actor: &Principal, id: &str, input: ViewInput, expected_version: Option<i64>) -> Result<IncidentView> {
        let mut w = self.write(actor).await?;
        let before = self.view_to_change(&mut w.tx, actor, id).await?;
        let checked = self.check_view(&mut w.tx, actor, &input).await?;
        let after = IncidentViewRecord {
            id: before.id.clone(),
            owner_id: before.owner_id.clone(),
            created_at: before.created_at,
            updated_at: w.now,
            version: before.version,
            ..checked
        };
        store::update_view(&mut w.tx, &after, expected_version.unwrap_or(before.version)).await?;
        w.record("incident_view", &before.id, AuditAction::Update, Some(&snapshot(&before)), Some(&snapshot(&after))).await?;
        let fresh = store::get_view(&mut w.tx, &before.id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        decode(actor, fresh)
    }

    pub async fn delete_view(&self, actor: &Principal, id: &str) -> Result<()> {
        let mut w = self.write(actor).await?;
        let before = self.view_to_change(&mut w.tx, actor, id).await?;
        store::delete_view(&mut w.tx, &before.id).await?;
        w.record("incident_view", &before.id, AuditAction::Delete, Some(&snapshot(&before)), None).await?;
        w.commit().await?;
        Ok(())
    }

    /// How many tickets a view shows the actor (always within the actor's own scope).
    pub async fn count_view(&self, actor: &Principal, v: &IncidentView) -> Result<i64> {
        self.count_tickets(actor, &v.filters.to_filter(&actor.user_id)).await
    }

    /// The queue page's reads, on one connection: a page of tickets for `filter` (narrowed to
    /// the tickets breaching soon when `breaching`) and its count, the tab counts, for staff the
    /// breaching-soon count, the listed tickets' most urgent clocks, the views the actor may
    /// use with their counts, and the option lists. Everything is read in the actor's scope.
    pub async fn queue_page_data(
        &self,
        actor: &Principal,
        filter: &TicketFilter,
        page: &PageRequest,
        breaching: bool,
    ) -> Result<QueuePageData> {
        use keel_store::incidents as tickets;
        let scope = crate::directory::scope_of(actor);
        let mut c = self.read().await?;
        let soon_before = if breaching || actor.is_staff() { Some(self.breaching_soon_in(&mut c).await?) } else { None };
        let mut filter = filter.clone();
        if breaching {
            filter.breaching_before = soon_before;
        }
        let list = tickets::list_tickets(&mut c, &scope, &filter, page).await?;
        let total = tickets::count_tickets(&mut c, &scope, &filter).await?;
        let counts = tickets::queue_counts(&mut c, &scope, &actor.user_id).await?;
        let breaching_soon = match soon_before.filter(|_| actor.is_staff()) {
            Some(before) => {
                let soon = TicketFilter { open_only: true, breaching_before: Some(before), ..Default::default() };
                Some(tickets::count_tickets(&mut c, &scope, &soon).await?)
            }
            None => None,
        };
        let ids: Vec<String> = list.items.iter().map(|t| t.id.clone()).collect();
        let clocks = keel_store::sla_clocks::most_urgent(&mut c, &ids).await?;
        let mut views = Vec::new();
        for r in store::list_visible_views(&mut c, &actor.user_id, actor.is_staff()).await? {
            let v = decode(actor, r)?;
            let n = tickets::count_tickets(&mut c, &scope, &v.filters.to_filter(&actor.user_id)).await?;
            views.push((v, n));
        }
        let choices = crate::reference::Choices::new(self.reference.lists(&mut c).await?, actor);
        Ok(QueuePageData { list, total, counts, breaching_soon, clocks, views, choices })
    }
}

/// What the queue page shows besides the chosen view ([`App::queue_page_data`]).
pub struct QueuePageData {
    pub list: Page<TicketRecord>,
    pub total: i64,
    pub counts: QueueCounts,
    /// Staff only: open tickets with a clock due within the breaching-soon window.
    pub breaching_soon: Option<i64>,
    /// The most urgent open clock of each listed ticket.
    pub clocks: HashMap<String, ClockRow>,
    /// The views the actor may use, each with its count.
    pub views: Vec<(IncidentView, i64)>,
    pub choices: crate::reference::Choices,
}
