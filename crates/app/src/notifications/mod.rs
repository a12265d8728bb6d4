//! Communication with customers and staff (ISO/IEC 20000-1 §8.3.2, §8.6): turns the events
//! processes announce into deliveries (one per announcement, channel and recipient, exactly
//! once across instances), renders them from templates in the recipient's language, and sends
//! them by email and chat webhooks with retries and a dead-letter list.

pub mod channels;
pub mod preferences;
pub mod templates;

use crate::{App, AppError, Principal, Result, Writer, secrets};
use channels::SmtpConfig;
use keel_domain::FieldError;
use keel_domain::audit::AuditAction;
use keel_domain::identity::Role;
use keel_domain::notification::{Announcement, Audience};
use keel_store::notifications::{self as store, Delivery, DeliveryFilter, OutboxAnnouncement, Person, TemplateRecord, WebhookRecord};
use keel_store::{AnyConnection, kernel};
use std::time::Duration;
use templates::{MessageTemplate, Rendered};

/// How far back the dispatcher looks again on every run, so an announcement committed late
/// with an earlier `created_at` (a long transaction) is still dispatched.
pub const DISPATCH_WINDOW_MS: i64 = 5 * 60_000;
const CURSOR_SETTING: &str = "notification.dispatch_cursor";

/// The dispatcher's position: announcements before it (less its window) are dispatched.
pub async fn dispatch_cursor(conn: &mut AnyConnection) -> Result<i64> {
    Ok(kernel::get_setting(conn, CURSOR_SETTING).await?.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0))
}
const BATCH: i64 = 100;

/// Delivery settings of an instance, from `keel.toml` / `KEEL_SMTP_*`.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// Without SMTP settings no email deliveries are prepared (webhooks still are).
    pub smtp: Option<SmtpConfig>,
    /// Attempts before a delivery becomes a dead letter.
    pub max_attempts: i64,
    /// First retry delay; doubled on each further attempt.
    pub backoff_ms: i64,
    pub timeout: Duration,
    /// What a delivery lease holds beyond sending its whole batch at the worst timeout.
    pub lease_margin_ms: i64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig { smtp: None, max_attempts: 5, backoff_ms: 30_000, timeout: Duration::from_secs(15), lease_margin_ms: 60_000 }
    }
}

/// The per-project From address (setting `notification.from.{project id}`).
pub fn project_from_setting(project_id: &str) -> String {
    format!("notification.from.{project_id}")
}

/// What an announcement is about, looked up once for its audience and templates.
#[derive(Debug, Default)]
struct Subject {
    number: Option<String>,
    thread_key: Option<String>,
    project_id: Option<String>,
    organization_id: Option<String>,
    team_id: Option<String>,
    agent_id: Option<String>,
    reporter_id: Option<String>,
    vars: serde_json::Map<String, serde_json::Value>,
}

fn var(vars: &serde_json::Value, name: &str) -> Option<String> {
    vars.get(name).and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(str::to_string)
}

async fn subject_of(conn: &mut AnyConnection, a: &Announcement) -> Result<Subject> {
    let mut s = Subject {
        number: var(&a.vars, "number"),
        project_id: var(&a.vars, "project_id"),
        organization_id: var(&a.vars, "organization_id"),
        team_id: var(&a.vars, "team_id"),
        agent_id: var(&a.vars, "assignee_id"),
        reporter_id: var(&a.vars, "reporter_id"),
        ..Default::default()
    };
    if a.entity_type == "ticket"
        && let Some(t) = keel_store::incidents::get_ticket(conn, &a.entity_id).await?
    {
        s.vars.insert("number".into(), t.number.clone().into());
        s.vars.insert("title".into(), t.title.clone().into());
        s.vars.insert("priority".into(), t.priority.clone().into());
        s.vars.insert("status".into(), t.status.clone().into());
        s.number = Some(t.number);
        s.thread_key = Some(t.id);
        s.project_id = Some(t.project_id);
        s.organization_id = Some(t.organization_id);
        s.team_id = t.team_id;
        s.agent_id = t.agent_id;
        s.reporter_id = Some(t.reporter_id);
    }
    if let Some(p) = &s.project_id
        && let Some(p) = keel_store::directory::get_project(conn, p).await?
    {
        s.vars.insert("project".into(), p.code.into());
    }
    // The announcement's own values win over what was looked up.
    if let Some(o) = a.vars.as_object() {
        for (k, v) in o {
            s.vars.insert(k.clone(), v.clone());
        }
    }
    Ok(s)
}

async fn audience_people(conn: &mut AnyConnection, a: &Announcement, s: &Subject) -> Result<(Vec<Person>, Vec<String>)> {
    let mut ids: Vec<String> = Vec::new();
    let mut people = Vec::new();
    let mut addresses = Vec::new();
    for who in &a.audience {
        match who {
            Audience::Assignee => ids.extend(s.agent_id.clone()),
            Audience::AssignmentTeam => {
                if let Some(t) = &s.team_id {
                    people.extend(store::team_members(conn, t).await?);
                }
            }
            Audience::TeamLead => {
                if let Some(t) = &s.team_id
                    && let Some(team) = keel_store::directory::get_team(conn, t).await?
                {
                    ids.extend(team.lead_user_id);
                }
            }
            Audience::ProjectManager => {
                if let Some(p) = &s.project_id
                    && let Some(p) = keel_store::directory::get_project(conn, p).await?
                {
                    ids.extend(p.manager_user_id);
                }
            }
            Audience::Reporter => ids.extend(s.reporter_id.clone()),
            Audience::CustomerContacts => {
                if let Some(o) = &s.organization_id {
                    people.extend(store::organization_contacts(conn, o).await?);
                }
            }
            Audience::Watchers => {
                if a.entity_type == "ticket" {
                    ids.extend(keel_store::incidents::list_watchers(conn, &a.entity_id).await?);
                }
            }
            Audience::Person { id } => ids.push(id.clone()),
            Audience::Email { address } => addresses.push(address.trim().to_string()),
        }
    }
    people.extend(store::people(conn, &ids).await?);
    Ok((people, addresses))
}

async fn template_for(conn: &mut AnyConnection, kind: &str, lang: &str) -> Result<MessageTemplate> {
    if let Some(t) = store::get_template(conn, kind, lang).await? {
        return Ok(MessageTemplate { subject: t.subject, body_text: t.body_text, body_html: t.body_html });
    }
    Ok(templates::default_template(kind, lang).unwrap_or_else(|| MessageTemplate {
        subject: kind.to_string() + " {{ number }} {{ title }}",
        body_text: "{{ number }} {{ title }}\n".into(),
        body_html: "<p>{{ number }} {{ title }}</p>\n".into(),
    }))
}

async fn render_for(conn: &mut AnyConnection, kind: &str, lang: &str, vars: &serde_json::Value) -> Result<Rendered> {
    let t = template_for(conn, kind, lang).await?;
    match templates::render(&t, vars) {
        Ok(r) => Ok(r),
        Err(e) => {
            tracing::warn!(kind, lang, errors = ?e, "notification template failed; using the shipped one");
            let d = templates::default_template(kind, lang).unwrap_or_default();
            templates::render(&d, vars).map_err(|e| AppError::Internal(format!("{e:?}")))
        }
    }
}

fn is_admin_or_auditor(actor: &Principal) -> bool {
    actor.is_admin() || actor.has(Role::Auditor)
}

/// Announces an event about a ticket: its number, title, priority and status and who acted
/// go with it for the templates.
pub(crate) async fn announce_ticket(
    w: &mut Writer,
    kind: &str,
    t: &keel_store::incidents::TicketRecord,
    audience: Vec<Audience>,
    extra: serde_json::Value,
) -> Result<()> {
    let mut vars = serde_json::json!({
        "number": t.number, "title": t.title, "priority": t.priority, "status": t.status,
        "actor_id": w.actor.user_id, "author": w.actor.display_name,
    });
    if let (Some(v), Some(e)) = (vars.as_object_mut(), extra.as_object()) {
        v.extend(e.clone());
    }
    w.announce(&Announcement { kind: kind.into(), entity_type: "ticket".into(), entity_id: t.id.clone(), audience, vars }).await
}

/// An administrator's view of one template: the override if there is one, else the default.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TemplateView {
    pub event_kind: String,
    pub language: String,
    pub template: MessageTemplate,
    pub overridden: bool,
    pub version: i64,
}

/// A chat webhook as administrators enter it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct WebhookInput {
    pub name: String,
    pub kind: String,
    pub url: String,
    /// Left empty on update keeps the stored secret.
    pub secret: Option<String>,
    pub event_kinds: Vec<String>,
    pub project_id: Option<String>,
    pub team_id: Option<String>,
    pub language: Option<String>,
    pub active: Option<bool>,
}

pub const WEBHOOK_KINDS: &[&str] = &["dingtalk", "wecom", "feishu", "slack", "generic"];

fn blank(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

impl App {
    /// Turns announcements in the outbox into deliveries; returns how many were created.
    /// Safe to run in several processes at once: the unique key absorbs duplicates.
    pub async fn dispatch_announcements(&self) -> Result<usize> {
        let cursor = {
            let mut c = self.read().await?;
            dispatch_cursor(&mut c).await?
        };
        let mut high = cursor;
        let mut created = 0;
        loop {
            let batch = {
                let mut c = self.read().await?;
                store::undispatched(&mut c, Announcement::TOPIC, cursor - DISPATCH_WINDOW_MS, BATCH).await?
            };
            if batch.is_empty() {
                break;
            }
            // One write transaction per batch, not per announcement: on SQLite every
            // transaction queues for the single writer, and under a stream of new tickets one
            // per announcement doubled the writer's transactions.
            let mut tx = self.db.begin().await?;
            let webhooks = store::list_webhooks(&mut tx).await?;
            for a in &batch {
                created += self.dispatch_one(&mut tx, &webhooks, a).await?;
                high = high.max(a.created_at);
            }
            let last = (batch.len() as i64) < BATCH;
            if last && high > cursor {
                let current = kernel::get_setting(&mut tx, CURSOR_SETTING).await?.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
                if high > current {
                    kernel::set_setting(&mut tx, CURSOR_SETTING, &high.to_string(), self.now()).await?;
                }
            }
            tx.commit().await.map_err(keel_store::StoreError::from)?;
            if last {
                break;
            }
        }
        Ok(created)
    }

    async fn dispatch_one(&self, tx: &mut keel_store::Tx, webhooks: &[WebhookRecord], row: &OutboxAnnouncement) -> Result<usize> {
        let now = self.now();
        let a: Announcement = match serde_json::from_str(&row.payload) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(announcement = %row.id, error = %e, "unreadable announcement skipped");
                store::mark_dispatched(tx, &row.id, 0, now).await?;
                return Ok(0);
            }
        };
        let s = subject_of(&mut *tx, &a).await?;
        let base_vars = serde_json::Value::Object(s.vars.clone());
        let actor = var(&a.vars, "actor_id");
        let mut n = 0;
        let blank_delivery = |channel: &str, recipient: String, lang: &str, r: Rendered| Delivery {
            id: keel_store::new_id(),
            announcement_id: row.id.clone(),
            event_kind: a.kind.clone(),
            entity_type: a.entity_type.clone(),
            entity_id: a.entity_id.clone(),
            channel: channel.into(),
            recipient,
            recipient_user_id: None,
            language: lang.into(),
            subject: r.subject,
            body_text: r.body_text,
            body_html: r.body_html,
            thread_key: s.thread_key.clone(),
            from_address: None,
            status: "pending".into(),
            attempts: 0,
            max_attempts: self.notify.max_attempts,
            next_attempt_at: now,
            lease_owner: None,
            lease_until: None,
            last_error: None,
            sent_at: None,
            created_at: now,
            updated_at: now,
        };
        if self.notify.smtp.is_some() {
            let (people, addresses) = audience_people(&mut *tx, &a, &s).await?;
            let from = match &s.project_id {
                Some(p) => kernel::get_setting(&mut *tx, &project_from_setting(p)).await?.filter(|f| !f.trim().is_empty()),
                None => None,
            };
            let mut seen = std::collections::HashSet::new();
            let mut targets: Vec<(String, Option<Person>)> = people
                .into_iter()
                .filter(|p| actor.as_deref() != Some(p.user_id.as_str()))
                .map(|p| (p.email.to_lowercase(), Some(p)))
                .collect();
            targets.extend(addresses.into_iter().filter(|a| a.contains('@')).map(|a| (a.to_lowercase(), None)));
            // People who opted out of this kind are not emailed (never for a mandatory kind).
            let opted_out = if preferences::MANDATORY_KINDS.contains(&a.kind.as_str()) {
                Default::default()
            } else {
                let ids: Vec<&str> = targets.iter().filter_map(|(_, p)| p.as_ref().map(|p| p.user_id.as_str())).collect();
                store::opted_out(&mut *tx, &a.kind, &ids).await?
            };
            for (address, person) in targets {
                if person.as_ref().is_some_and(|p| opted_out.contains(&p.user_id)) || !seen.insert(address.clone()) {
                    continue;
                }
                let lang = person.as_ref().map_or("en", |p| templates::language_of(&p.locale));
                let mut vars = base_vars.clone();
                vars["recipient"] = person.as_ref().map_or_else(|| address.clone(), |p| p.display_name.clone()).into();
                let mut r = render_for(&mut *tx, &a.kind, lang, &vars).await?;
                if let Some(num) = &s.number
                    && !r.subject.contains(&format!("[{num}]"))
                {
                    r.subject = format!("[{num}] {}", r.subject);
                }
                let mut d = blank_delivery("email", address, lang, r);
                d.recipient_user_id = person.map(|p| p.user_id);
                d.from_address = from.clone();
                n += store::insert_delivery(&mut *tx, &d).await? as usize;
            }
        }
        for h in webhooks {
            let wanted = h.active
                && (h.event_kinds.is_empty() || h.event_kinds.contains(&a.kind))
                && h.project_id.as_ref().is_none_or(|p| s.project_id.as_ref() == Some(p))
                && h.team_id.as_ref().is_none_or(|t| s.team_id.as_ref() == Some(t));
            if !wanted {
                continue;
            }
            let mut vars = base_vars.clone();
            vars["recipient"] = h.name.clone().into();
            let r = render_for(&mut *tx, &a.kind, &h.language, &vars).await?;
            let d = blank_delivery("webhook", h.id.clone(), &h.language, r);
            n += store::insert_delivery(&mut *tx, &d).await? as usize;
        }
        store::mark_dispatched(tx, &row.id, n as i64, now).await?;
        Ok(n)
    }

    /// Leases and sends the deliveries due now; returns how many were attempted. The lease
    /// outlasts sending the whole batch at the worst timeout, so no other instance takes a
    /// delivery over while this one may still send it.
    pub async fn deliver_due(&self, limit: i64) -> Result<usize> {
        let owner = self.instance_id.clone();
        let lease_ms =
            (self.notify.timeout.as_millis() as i64).saturating_mul(limit.max(1)).saturating_mul(2) + self.notify.lease_margin_ms;
        let claimed = store::claim_deliveries(&self.db, &owner, self.now(), lease_ms, limit).await?;
        for d in &claimed {
            let outcome = self.send_delivery(d).await;
            let now = self.now();
            let mut tx = self.db.begin().await?;
            match outcome {
                Ok(()) => {
                    if !store::delivery_sent(&mut tx, &d.id, &owner, now).await? {
                        tracing::warn!(delivery = %d.id, "delivery lease was lost before it was marked sent");
                    }
                }
                Err(e) => {
                    tracing::warn!(delivery = %d.id, channel = %d.channel, error = %e, "delivery failed");
                    let retry_at = now + self.notify.backoff_ms.saturating_mul(1i64 << (d.attempts - 1).clamp(0, 16));
                    store::delivery_failed(&mut tx, d, &owner, &e, retry_at, now).await?;
                }
            }
            tx.commit().await.map_err(keel_store::StoreError::from)?;
        }
        Ok(claimed.len())
    }

    async fn send_delivery(&self, d: &Delivery) -> Result<(), String> {
        match d.channel.as_str() {
            "email" => {
                let smtp = self.notify.smtp.as_ref().ok_or("SMTP is not configured")?;
                let m = channels::email_message(smtp, d)?;
                channels::send_email(smtp, m, self.notify.timeout).await
            }
            "webhook" => {
                let h = {
                    let mut c = self.read().await.map_err(|e| e.to_string())?;
                    store::get_webhook(&mut c, &d.recipient).await.map_err(|e| e.to_string())?
                };
                let h = h.ok_or("the webhook was removed")?;
                // A secret this instance cannot open fails the delivery: it is never sent unsigned.
                let secret = match h.secret.as_deref().filter(|s| !s.is_empty() && channels::signs(&h.kind)) {
                    Some(stored) => Some(
                        self.secrets
                            .open(&secrets::webhook_context(&h.id), stored)
                            .map_err(|e| secrets::webhook_error(&h.name, &h.id, &e))?,
                    ),
                    None => None,
                };
                let req = channels::webhook_request(&h, secret.as_deref(), d, chrono::Utc::now().timestamp_millis());
                channels::post(&req, self.notify.timeout).await
            }
            other => Err(format!("unknown channel {other}")),
        }
    }

    pub async fn list_deliveries(&self, actor: &Principal, f: &DeliveryFilter) -> Result<Vec<Delivery>> {
        if !is_admin_or_auditor(actor) {
            return Err(AppError::Forbidden);
        }
        let mut c = self.read().await?;
        Ok(store::list_deliveries(&mut c, f, 200).await?)
    }

    pub async fn get_delivery(&self, actor: &Principal, id: &str) -> Result<Delivery> {
        if !is_admin_or_auditor(actor) {
            return Err(AppError::Forbidden);
        }
        let mut c = self.read().await?;
        store::get_delivery(&mut c, id).await?.ok_or(AppError::NotFound)
    }

    /// Puts a dead letter back in the queue.
    pub async fn retry_delivery(&self, actor: &Principal, id: &str) -> Result<Delivery> {
        if !actor.is_admin() {
            return Err(AppError::Forbidden);
        }
        let mut w = self.write(actor).await?;
        let before = store::get_delivery(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
        if !store::retry_delivery(&mut w.tx, id, w.now).await? {
            return Err(AppError::Conflict { code: "not_dead", field: None, message: "only a dead delivery can be retried".into() });
        }
        let after = store::get_delivery(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
        let snap = |d: &Delivery| serde_json::json!({ "status": d.status, "attempts": d.attempts });
        w.record("notification_delivery", id, AuditAction::Update, Some(&snap(&before)), Some(&snap(&after))).await?;
        w.commit().await?;
        Ok(after)
    }

    /// Every event kind and language with the template in force.
    pub async fn notification_templates(&self, actor: &Principal) -> Result<Vec<TemplateView>> {
        if !actor.is_admin() {
            return Err(AppError::Forbidden);
        }
        let mut c = self.read().await?;
        let overrides = store::list_templates(&mut c).await?;
        let mut out = Vec::new();
        for kind in templates::EVENT_KINDS {
            for lang in templates::LANGUAGES {
                out.push(view_of(kind, lang, overrides.iter().find(|t| t.event_kind == *kind && t.language == *lang)));
            }
        }
        Ok(out)
    }

    pub async fn notification_template(&self, actor: &Principal, kind: &str, lang: &str) -> Result<TemplateView> {
        if !actor.is_admin() {
            return Err(AppError::Forbidden);
        }
        known_template(kind, lang)?;
        let mut c = self.read().await?;
        let o = store::get_template(&mut c, kind, lang).await?;
        Ok(view_of(kind, lang, o.as_ref()))
    }

    /// Renders a template with the sample variables; errors name the part and line.
    pub fn preview_template(&self, actor: &Principal, t: &MessageTemplate) -> Result<Rendered> {
        if !actor.is_admin() {
            return Err(AppError::Forbidden);
        }
        templates::check(t).map_err(AppError::Validation)
    }

    /// Saves an override; a template that does not compile or render is refused, never saved.
    pub async fn save_template(
        &self,
        actor: &Principal,
        kind: &str,
        lang: &str,
        t: MessageTemplate,
        expected_version: Option<i64>,
    ) -> Result<TemplateView> {
        if !actor.is_admin() {
            return Err(AppError::Forbidden);
        }
        known_template(kind, lang)?;
        templates::check(&t).map_err(AppError::Validation)?;
        let mut w = self.write(actor).await?;
        let before = store::get_template(&mut w.tx, kind, lang).await?;
        let current = before.as_ref().map_or(0, |b| b.version);
        if expected_version.is_some_and(|v| v != current) {
            return Err(AppError::Stale);
        }
        let rec = TemplateRecord {
            event_kind: kind.into(),
            language: lang.into(),
            subject: t.subject,
            body_text: t.body_text,
            body_html: t.body_html,
            updated_by: actor.user_id.clone(),
            updated_at: w.now,
            version: current + 1,
        };
        store::upsert_template(&mut w.tx, &rec).await?;
        let key = format!("{kind}/{lang}");
        let snap = |r: &TemplateRecord| serde_json::json!({ "subject": r.subject, "body_text": r.body_text, "body_html": r.body_html });
        let action = if before.is_some() { AuditAction::Update } else { AuditAction::Create };
        w.record("notification_template", &key, action, before.as_ref().map(snap).as_ref(), Some(&snap(&rec))).await?;
        let saved = store::get_template(&mut w.tx, kind, lang).await?;
        w.commit().await?;
        Ok(view_of(kind, lang, saved.as_ref()))
    }

    /// Removes an override, so the shipped default is used again.
    pub async fn reset_template(&self, actor: &Principal, kind: &str, lang: &str) -> Result<TemplateView> {
        if !actor.is_admin() {
            return Err(AppError::Forbidden);
        }
        known_template(kind, lang)?;
        let mut w = self.write(actor).await?;
        if let Some(before) = store::get_template(&mut w.tx, kind, lang).await? {
            store::delete_template(&mut w.tx, kind, lang).await?;
            let snap = serde_json::json!({ "subject": before.subject, "body_text": before.body_text, "body_html": before.body_html });
            w.record("notification_template", &format!("{kind}/{lang}"), AuditAction::Delete, Some(&snap), None).await?;
        }
        w.commit().await?;
        Ok(view_of(kind, lang, None))
    }

    /// The From address of a project's (by id or code) notification emails; `None` uses the instance's.
    pub async fn project_sender(&self, actor: &Principal, project_id: &str) -> Result<Option<String>> {
        if !actor.is_admin() {
            return Err(AppError::Forbidden);
        }
        let mut c = self.read().await?;
        let project_id = &keel_store::mail::project_id_by_id_or_code(&mut c, project_id).await?.ok_or(AppError::NotFound)?;
        Ok(kernel::get_setting(&mut c, &project_from_setting(project_id)).await?.filter(|f| !f.is_empty()))
    }

    /// Sets (or with `None` clears) a project's From address, e.g. `Acme Desk <acme@desk.example>`.
    pub async fn set_project_sender(&self, actor: &Principal, project_id: &str, from: Option<&str>) -> Result<Option<String>> {
        if !actor.is_admin() {
            return Err(AppError::Forbidden);
        }
        let from = from.map(str::trim).filter(|f| !f.is_empty());
        if let Some(f) = from
            && f.parse::<lettre::message::Mailbox>().is_err()
        {
            return Err(AppError::field("from", "invalid_email", "a mailbox such as Desk <desk@example.com> is required"));
        }
        let mut w = self.write(actor).await?;
        let project_id = &keel_store::mail::project_id_by_id_or_code(&mut w.tx, project_id).await?.ok_or(AppError::NotFound)?;
        let key = project_from_setting(project_id);
        let before = kernel::get_setting(&mut w.tx, &key).await?.filter(|f| !f.is_empty());
        kernel::set_setting(&mut w.tx, &key, from.unwrap_or(""), w.now).await?;
        let snap = |v: &Option<String>| serde_json::json!({ "notification_from": v });
        w.record("setting", &key, AuditAction::Update, Some(&snap(&before)), Some(&snap(&from.map(str::to_string)))).await?;
        w.commit().await?;
        Ok(from.map(str::to_string))
    }

    pub async fn list_webhooks(&self, actor: &Principal) -> Result<Vec<WebhookRecord>> {
        if !actor.is_admin() {
            return Err(AppError::Forbidden);
        }
        let mut c = self.read().await?;
        Ok(store::list_webhooks(&mut c).await?)
    }

    pub async fn get_webhook(&self, actor: &Principal, id: &str) -> Result<WebhookRecord> {
        if !actor.is_admin() {
            return Err(AppError::Forbidden);
        }
        let mut c = self.read().await?;
        store::get_webhook(&mut c, id).await?.ok_or(AppError::NotFound)
    }

    pub async fn create_webhook(&self, actor: &Principal, input: WebhookInput) -> Result<WebhookRecord> {
        if !actor.is_admin() {
            return Err(AppError::Forbidden);
        }
        let mut w = self.write(actor).await?;
        let mut rec = WebhookRecord { id: keel_store::new_id(), created_at: w.now, version: 1, ..Default::default() };
        let new_secret = apply_webhook(&mut w.tx, &mut rec, input).await?;
        if let Some(s) = new_secret {
            rec.secret = Some(self.seal_secret(&secrets::webhook_context(&rec.id), &s)?);
        }
        rec.updated_at = w.now;
        store::insert_webhook(&mut w.tx, &rec).await?;
        w.record("notification_webhook", &rec.id, AuditAction::Create, None, Some(&webhook_snapshot(&rec, false))).await?;
        w.commit().await?;
        Ok(rec)
    }

    pub async fn update_webhook(
        &self,
        actor: &Principal,
        id: &str,
        input: WebhookInput,
        expected_version: Option<i64>,
    ) -> Result<WebhookRecord> {
        if !actor.is_admin() {
            return Err(AppError::Forbidden);
        }
        let mut w = self.write(actor).await?;
        let before = store::get_webhook(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
        let expected = expected_version.unwrap_or(before.version);
        if expected != before.version {
            return Err(AppError::Stale);
        }
        let mut after = before.clone();
        let new_secret = apply_webhook(&mut w.tx, &mut after, input).await?;
        let ctx = secrets::webhook_context(id);
        let replaced = new_secret.is_some() && before.secret.is_some();
        after.secret = match (new_secret, &before.secret) {
            (Some(s), _) => Some(self.seal_secret(&ctx, &s)?),
            // a kept legacy plaintext is encrypted now
            (None, Some(kept)) => Some(self.secrets.reseal(&ctx, kept).map_err(|e| AppError::Internal(e.to_string()))?),
            (None, None) => None,
        };
        after.updated_at = w.now;
        store::update_webhook(&mut w.tx, &after, expected).await?;
        w.record(
            "notification_webhook",
            id,
            AuditAction::Update,
            Some(&webhook_snapshot(&before, false)),
            Some(&webhook_snapshot(&after, replaced)),
        )
        .await?;
        let fresh = store::get_webhook(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok(fresh)
    }

    pub async fn delete_webhook(&self, actor: &Principal, id: &str) -> Result<()> {
        if !actor.is_admin() {
            return Err(AppError::Forbidden);
        }
        let mut w = self.write(actor).await?;
        let before = store::get_webhook(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
        store::delete_webhook(&mut w.tx, id).await?;
        w.record("notification_webhook", id, AuditAction::Delete, Some(&webhook_snapshot(&before, false)), None).await?;
        w.commit().await?;
        Ok(())
    }
}

fn known_template(kind: &str, lang: &str) -> Result<()> {
    if !templates::EVENT_KINDS.contains(&kind) || !templates::LANGUAGES.contains(&lang) {
        return Err(AppError::NotFound);
    }
    Ok(())
}

fn view_of(kind: &str, lang: &str, o: Option<&TemplateRecord>) -> TemplateView {
    match o {
        Some(t) => TemplateView {
            event_kind: kind.into(),
            language: lang.into(),
            template: MessageTemplate { subject: t.subject.clone(), body_text: t.body_text.clone(), body_html: t.body_html.clone() },
            overridden: true,
            version: t.version,
        },
        None => TemplateView {
            event_kind: kind.into(),
            language: lang.into(),
            template: templates::default_template(kind, lang).unwrap_or_default(),
            overridden: false,
            version: 0,
        },
    }
}

/// A webhook as the audit trail keeps it: its secret only as `set`, `not_set` or `replaced`
/// (a new secret was entered), never the value, encrypted or not.
fn webhook_snapshot(h: &WebhookRecord, replaced: bool) -> serde_json::Value {
    let mut v = crate::writer::snapshot(h);
    if let Some(o) = v.as_object_mut() {
        let state = if replaced { "replaced" } else { secrets::audit_state(h.secret.as_deref()) };
        o.insert("secret".into(), serde_json::json!(state));
    }
    v
}

/// Checks and applies an administrator's input; returns the new secret entered, if any (the
/// caller encrypts it; left empty keeps the stored one).
async fn apply_webhook(conn: &mut AnyConnection, rec: &mut WebhookRecord, input: WebhookInput) -> Result<Option<String>> {
    let mut errors = Vec::new();
    let name = input.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 {
        errors.push(FieldError::new("name", "required", "a name of at most 200 characters is required"));
    }
    if !WEBHOOK_KINDS.contains(&input.kind.as_str()) {
        errors.push(FieldError::new("kind", "invalid_choice", format!("one of {}", WEBHOOK_KINDS.join(", "))));
    }
    let url = input.url.trim().to_string();
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.parse::<hyper::Uri>().is_err() {
        errors.push(FieldError::new("url", "invalid_url", "an http:// or https:// address is required"));
    }
    for k in &input.event_kinds {
        if !templates::EVENT_KINDS.contains(&k.as_str()) {
            errors.push(FieldError::new("event_kinds", "invalid_choice", format!("unknown event kind {k}")));
        }
    }
    let language = blank(&input.language).unwrap_or_else(|| "zh-CN".into());
    if !templates::LANGUAGES.contains(&language.as_str()) {
        errors.push(FieldError::new("language", "invalid_choice", "en or zh-CN"));
    }
    let project_id = blank(&input.project_id);
    if let Some(p) = &project_id
        && keel_store::directory::get_project(conn, p).await?.is_none()
    {
        errors.push(FieldError::new("project_id", "not_found", "no such service project"));
    }
    let team_id = blank(&input.team_id);
    if let Some(t) = &team_id
        && keel_store::directory::get_team(conn, t).await?.is_none()
    {
        errors.push(FieldError::new("team_id", "not_found", "no such team"));
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    rec.name = name;
    rec.kind = input.kind;
    rec.url = url;
    rec.event_kinds = input.event_kinds;
    rec.project_id = project_id;
    rec.team_id = team_id;
    rec.language = language;
    rec.active = input.active.unwrap_or(true);
    Ok(blank(&input.secret))
}

/// The announcement a lifecycle step makes, if any: assignment to the assignee (or the team
/// when nobody is named), resolution to the reporter, closure to reporter and watchers.
pub(crate) fn step_announcement(action: &str, after: &keel_store::incidents::TicketRecord) -> Option<(&'static str, Vec<Audience>)> {
    match action {
        "assign" | "reassign" if after.agent_id.is_some() => Some(("incident.assigned", vec![Audience::Assignee])),
        "assign" | "reassign" => Some(("incident.assigned", vec![Audience::AssignmentTeam])),
        "resolve" => Some(("incident.resolved", vec![Audience::Reporter])),
        _ if after.status == "closed" => Some(("incident.closed", vec![Audience::Reporter, Audience::Watchers])),
        _ => None,
    }
}

/// Who hears of a public reply: the reporter when staff reply, the assignee (or the team)
/// when the customer does.
pub(crate) fn reply_audience(actor: &Principal, t: &keel_store::incidents::TicketRecord) -> Vec<Audience> {
    match (actor.is_staff(), t.agent_id.is_some()) {
        (true, _) => vec![Audience::Reporter],
        (false, true) => vec![Audience::Assignee],
        (false, false) => vec![Audience::AssignmentTeam],
    }
}
