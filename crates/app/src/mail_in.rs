//! Service desk (ISO/IEC 20000-1 §8.6.1, REQUIREMENTS §4), email channel, mail coming in: a
//! message becomes a ticket or a public reply on its ticket, or is recorded as noise or held
//! for review — each exactly once, by its Message-ID.
//!
//! The parsing step is the pure crate `keel-mailparse` (raw RFC 5322 bytes in, the facts Keel
//! acts on out), which the fuzz target drives too.

use crate::desk::Staged;
use crate::incidents::{NewTicket, TransitionInput, comment_in};
use crate::users::{NewUser, insert_user_in};
use crate::writer::snapshot;
use crate::{App, AppError, Principal, Result, secrets};
use keel_domain::audit::AuditAction;
use keel_domain::identity::{AccountKind, Role};
use keel_domain::incident::{Action, Status, TicketNumber, Visibility, attachment};
pub use keel_mailparse::rules::{self, Noise};
pub use keel_mailparse::{InboundMail, MailFile, exercise_parsing, sanitize_html};
use keel_store::desk::AttachmentRecord;
use keel_store::incidents::{self as tickets, TicketRecord};
use keel_store::mail::{self as store, MailMessageRecord, MailboxRecord};
use keel_store::{accounts, directory, kernel};

/// The host Keel writes into its own Message-IDs (`<{uuid}@{host}>`); mail carrying it is
/// Keel's own and never becomes a ticket.
pub const MAIL_HOST_SETTING: &str = "mail.host";

/// Unknown-sender policies of a mailbox.
pub const UNKNOWN_SENDER_POLICIES: &[&str] = &["create_contact", "hold"];
/// How a mailbox talks to its IMAP server.
pub const IMAP_TLS_MODES: &[&str] = &["tls", "starttls", "plain"];

/// Parses raw RFC 5322 bytes (`keel_mailparse::parse_mail`); a refusal is a validation
/// error of `message`.
pub fn parse_mail(raw: &[u8], own_host: Option<&str>) -> Result<InboundMail> {
    keel_mailparse::parse_mail(raw, own_host).map_err(|e| AppError::field("message", "invalid", e.to_string()))
}

/// What became of a received message.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub message: MailMessageRecord,
    /// The message had been received before; nothing new was stored.
    pub duplicate: bool,
}

impl Receipt {
    /// Stored as a ticket or reply, or deliberately ignored: the sender's MTA is done.
    pub fn accepted(&self) -> bool {
        matches!(self.message.outcome.as_str(), "ticket" | "reply" | "ignored" | "held")
    }
}

/// A mailbox as the settings form or the API delivers it.
#[derive(Debug, Clone, Default)]
pub struct MailboxInput {
    pub address: String,
    pub unknown_sender: Option<String>,
    pub imap_host: Option<String>,
    pub imap_port: Option<i64>,
    pub imap_tls: Option<String>,
    pub imap_user: Option<String>,
    pub imap_secret: Option<String>,
    pub imap_folder: Option<String>,
    pub imap_done_folder: Option<String>,
    /// PEM certificate(s) of a private CA the IMAP server's certificate is issued by.
    pub imap_ca_pem: Option<String>,
    /// The resolver group (a team working on the project) whose queue receives the tickets
    /// this mailbox's mail creates; none leaves them unassigned.
    pub team_id: Option<String>,
}

fn blank(s: &Option<String>) -> Option<String> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

fn may_configure(actor: &Principal, project_id: &str, org: &str) -> bool {
    actor.is_staff()
        && !actor.is_read_only()
        && (actor.is_admin()
            || actor.has(Role::ServiceManager)
            || (actor.has(Role::ProjectManager) && actor.can_see_project(project_id, Some(org))))
}

/// Why a team cannot be a mailbox's default team for a project, if it cannot.
async fn team_refusal(conn: &mut sqlx::AnyConnection, team_id: &str, project_id: &str) -> Result<Option<keel_domain::FieldError>> {
    let refusal = match directory::get_team(conn, team_id).await? {
        None => Some(("unknown_reference", "no such team")),
        Some(t) if !t.active => Some(("team_inactive", "the team is inactive")),
        Some(_) if !store::team_serves_project(conn, team_id, project_id).await? => {
            Some(("team_not_in_project", "no member of the team works on the mailbox's project"))
        }
        Some(_) => None,
    };
    Ok(refusal.map(|(code, message)| keel_domain::FieldError::new("team_id", code, message)))
}

/// The validated settings of a mailbox of a project (no id, times or state).
async fn mailbox_of(conn: &mut sqlx::AnyConnection, project_id: &str, input: MailboxInput) -> Result<MailboxRecord> {
    let mut errs = keel_domain::error::Errors::new();
    let team_id = blank(&input.team_id);
    if let Some(team) = &team_id
        && let Some(e) = team_refusal(conn, team, project_id).await?
    {
        errs.push(e);
    }
    let address = input.address.trim().to_lowercase();
    if !(address.contains('@') && address.len() <= 254 && !address.contains(char::is_whitespace)) {
        errs.push(keel_domain::FieldError::new("address", "invalid", "an email address"));
    }
    let policy = blank(&input.unknown_sender).unwrap_or_else(|| "hold".into());
    if !UNKNOWN_SENDER_POLICIES.contains(&policy.as_str()) {
        errs.push(keel_domain::FieldError::new("unknown_sender", "invalid_choice", "create_contact or hold"));
    }
    let imap_host = blank(&input.imap_host);
    let tls = blank(&input.imap_tls);
    if imap_host.is_some() {
        if !tls.as_deref().is_some_and(|t| IMAP_TLS_MODES.contains(&t)) {
            errs.push(keel_domain::FieldError::new("imap_tls", "invalid_choice", "tls, starttls or plain"));
        }
        if !input.imap_port.is_some_and(|p| (1..=65535).contains(&p)) {
            errs.push(keel_domain::FieldError::new("imap_port", "out_of_range", "a port from 1 to 65535"));
        }
        if blank(&input.imap_user).is_none() {
            errs.push(keel_domain::FieldError::new("imap_user", "required", "the IMAP user"));
        }
        if tls.as_deref() == Some("plain") && !crate::mail_imap::is_loopback(imap_host.as_deref().unwrap_or("")) {
            errs.push(keel_domain::FieldError::new("imap_tls", "invalid_choice", "plain only on loopback; tls or starttls"));
        }
        if let Some(pem) = blank(&input.imap_ca_pem)
            && crate::mail_imap::ca_certificates(&pem).is_err()
        {
            errs.push(keel_domain::FieldError::new("imap_ca_pem", "invalid", "PEM certificates (-----BEGIN CERTIFICATE-----)"));
        }
    }
    errs.finish()?;
    Ok(MailboxRecord {
        address,
        unknown_sender: policy,
        imap_port: imap_host.as_ref().and(input.imap_port),
        imap_tls: imap_host.as_ref().and(tls),
        imap_user: imap_host.as_ref().and(blank(&input.imap_user)),
        imap_secret: imap_host.as_ref().and(blank(&input.imap_secret)),
        imap_folder: imap_host.as_ref().map(|_| blank(&input.imap_folder).unwrap_or_else(|| "INBOX".into())),
        imap_done_folder: imap_host.as_ref().and(blank(&input.imap_done_folder)),
        imap_ca_pem: imap_host.as_ref().and(blank(&input.imap_ca_pem)),
        imap_host,
        team_id,
        ..Default::default()
    })
}

/// A mailbox as the audit trail keeps it: its IMAP password only as `set`, `not_set` or
/// `replaced` (a new one was entered), never the value, encrypted or not.
fn mailbox_snapshot(m: &MailboxRecord, replaced: bool) -> serde_json::Value {
    let mut v = snapshot(m);
    if let Some(o) = v.as_object_mut() {
        let state = if replaced { "replaced" } else { secrets::audit_state(m.imap_secret.as_deref()) };
        o.insert("imap_secret".into(), serde_json::json!(state));
    }
    v
}

/// A project whose staff the actor is; not found for anyone else.
async fn staff_of(conn: &mut sqlx::AnyConnection, actor: &Principal, project_id: &str) -> Result<directory::ProjectRecord> {
    let project = directory::get_project(conn, project_id).await?.ok_or(AppError::NotFound)?;
    if !actor.is_staff() || !actor.can_see_project(&project.id, Some(&project.organization_id)) {
        return Err(AppError::NotFound);
    }
    Ok(project)
}

/// A project by its id or its code.
async fn project_by_key(conn: &mut sqlx::AnyConnection, key: &str) -> Result<directory::ProjectRecord> {
    let id = store::project_id_by_id_or_code(conn, key.trim()).await?.ok_or(AppError::NotFound)?;
    directory::get_project(conn, &id).await?.ok_or(AppError::NotFound)
}

/// Outcome of deciding, inside the transaction, what a message becomes.
#[derive(Default)]
struct StagedFiles<'m> {
    kept: Vec<(&'m MailFile, Staged)>,
    skipped: Vec<String>,
}

struct Decision {
    outcome: &'static str,
    reason: Option<String>,
    ticket: Option<TicketRecord>,
    comment_id: Option<String>,
    uploader: Option<String>,
}

impl Decision {
    fn just(outcome: &'static str, reason: impl Into<String>) -> Self {
        Decision { outcome, reason: Some(reason.into()), ticket: None, comment_id: None, uploader: None }
    }
}

impl App {
    /// The host of Keel's own Message-IDs, when configured.
    pub async fn mail_host(&self) -> Result<Option<String>> {
        let mut c = self.read().await?;
        Ok(kernel::get_setting(&mut c, MAIL_HOST_SETTING).await?.map(|h| h.trim().to_lowercase()).filter(|h| !h.is_empty()))
    }

    // ---- mailboxes ----

    pub async fn create_mailbox(&self, actor: &Principal, project_id: &str, input: MailboxInput) -> Result<MailboxRecord> {
        let mut w = self.write(actor).await?;
        let project = project_by_key(&mut w.tx, project_id).await?;
        if !may_configure(actor, &project.id, &project.organization_id) {
            return Err(if actor.can_see_project(&project.id, Some(&project.organization_id)) {
                AppError::Forbidden
            } else {
                AppError::NotFound
            });
        }
        let mut rec = MailboxRecord {
            id: keel_store::new_id(),
            project_id: project.id.clone(),
            active: true,
            created_at: w.now,
            updated_at: w.now,
            version: 1,
            ..mailbox_of(&mut w.tx, &project.id, input).await?
        };
        if let Some(plain) = rec.imap_secret.take() {
            rec.imap_secret = Some(self.seal_secret(&secrets::mailbox_context(&rec.id), &plain)?);
        }
        store::insert_mailbox(&mut w.tx, &rec).await?;
        w.record("mailbox", &rec.id, AuditAction::Create, None, Some(&mailbox_snapshot(&rec, false))).await?;
        w.commit().await?;
        Ok(rec)
    }

    /// Changes a mailbox; `active: false` stops polling it and receiving through it. An
    /// empty IMAP secret keeps the stored one.
    pub async fn update_mailbox(&self, actor: &Principal, id: &str, input: MailboxInput, active: bool) -> Result<MailboxRecord> {
        let mut w = self.write(actor).await?;
        let before = store::get_mailbox(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
        let project = directory::get_project(&mut w.tx, &before.project_id).await?.ok_or(AppError::NotFound)?;
        if !may_configure(actor, &project.id, &project.organization_id) {
            return Err(if actor.is_staff() && actor.can_see_project(&project.id, Some(&project.organization_id)) {
                AppError::Forbidden
            } else {
                AppError::NotFound
            });
        }
        let keep_secret = blank(&input.imap_secret).is_none();
        let mut after = MailboxRecord {
            id: before.id.clone(),
            project_id: before.project_id.clone(),
            active,
            created_at: before.created_at,
            updated_at: w.now,
            version: before.version + 1,
            ..mailbox_of(&mut w.tx, &project.id, input).await?
        };
        let ctx = secrets::mailbox_context(&after.id);
        let replaced = !keep_secret && after.imap_secret.is_some() && before.imap_secret.is_some();
        after.imap_secret = match after.imap_secret.take() {
            Some(plain) => Some(self.seal_secret(&ctx, &plain)?),
            // a kept legacy plaintext is encrypted now
            None if keep_secret && after.imap_host.is_some() => match &before.imap_secret {
                Some(kept) => Some(self.secrets.reseal(&ctx, kept).map_err(|e| AppError::Internal(e.to_string()))?),
                None => None,
            },
            None => None,
        };
        store::update_mailbox(&mut w.tx, &after).await?;
        w.record(
            "mailbox",
            &after.id,
            AuditAction::Update,
            Some(&mailbox_snapshot(&before, false)),
            Some(&mailbox_snapshot(&after, replaced)),
        )
        .await?;
        w.commit().await?;
        Ok(after)
    }

    /// One mailbox, for staff of its project.
    pub async fn get_mailbox(&self, actor: &Principal, id: &str) -> Result<MailboxRecord> {
        let mut c = self.read().await?;
        let m = store::get_mailbox(&mut c, id).await?.ok_or(AppError::NotFound)?;
        staff_of(&mut c, actor, &m.project_id).await?;
        Ok(m)
    }

    pub async fn list_mailboxes(&self, actor: &Principal, project_id: &str) -> Result<Vec<MailboxRecord>> {
        let mut c = self.read().await?;
        let project = project_by_key(&mut c, project_id).await?;
        if !actor.is_staff() || !actor.can_see_project(&project.id, Some(&project.organization_id)) {
            return Err(AppError::NotFound);
        }
        Ok(store::project_mailboxes(&mut c, &project.id).await?)
    }

    /// The teams a mailbox of a project may send its tickets to, as (id, name), with the
    /// mailbox's current team (`current`) whatever its state (staff of the project).
    pub async fn mailbox_teams(&self, actor: &Principal, project_id: &str, current: Option<&str>) -> Result<Vec<(String, String)>> {
        let mut c = self.read().await?;
        let project = project_by_key(&mut c, project_id).await?;
        staff_of(&mut c, actor, &project.id).await?;
        Ok(store::teams_serving_project(&mut c, &project.id, current.unwrap_or("")).await?)
    }

    /// The messages received for a project with what became of them (staff only).
    pub async fn list_received_mail(&self, actor: &Principal, project_id: &str) -> Result<Vec<MailMessageRecord>> {
        let mut c = self.read().await?;
        let project = project_by_key(&mut c, project_id).await?;
        if !actor.is_staff() || !actor.can_see_project(&project.id, Some(&project.organization_id)) {
            return Err(AppError::NotFound);
        }
        Ok(store::list_messages(&mut c, &project.id, 200).await?)
    }

    // ---- receiving ----

    /// Receives one message for a project (by id or code): records it once by its
    /// Message-ID, with the ticket or reply it became in the same transaction, or with the
    /// reason it became neither.
    pub async fn receive_mail(&self, actor: &Principal, project_id: &str, raw: &[u8]) -> Result<Receipt> {
        let project = {
            let mut c = self.read().await?;
            project_by_key(&mut c, project_id).await?
        };
        // The gateway acts for the project: staff of it (an API token) or the system.
        if !actor.is_staff() || !actor.can_see_project(&project.id, Some(&project.organization_id)) {
            return Err(AppError::NotFound);
        }
        if actor.is_read_only() {
            return Err(AppError::Forbidden);
        }
        let own_host = self.mail_host().await?;
        let mail = parse_mail(raw, own_host.as_deref())?;
        {
            let mut c = self.read().await?;
            if let Some(m) = store::get_message_by_message_id(&mut c, &mail.message_id).await? {
                return Ok(Receipt { message: m, duplicate: true });
            }
        }
        // Files are made durable before the transaction; an abandoned one is only an
        // unreferenced file.
        let staged = if mail.noise.is_none() { self.stage_files(&mail).await? } else { Default::default() };
        let mut raw_staged = self.stage(raw, u64::MAX).await?;

        let system = Principal::system();
        let mut w = self.write(&system).await?;
        let mailboxes = store::project_mailboxes(&mut w.tx, &project.id).await?;
        let mailbox = mailboxes
            .iter()
            .filter(|m| m.active)
            .find(|m| mail.to.contains(&m.address))
            .or_else(|| mailboxes.iter().find(|m| m.active))
            .cloned();
        let decision = self.decide(&mut w, &project, mailbox.as_ref(), &mail).await?;
        let reason = self.attach_files(&mut w, &decision, staged).await?;
        self.files.keep(&mut raw_staged).await?;
        let rec = MailMessageRecord {
            id: keel_store::new_id(),
            message_id: mail.message_id.clone(),
            project_id: project.id.clone(),
            mailbox_id: mailbox.map(|m| m.id),
            sender: mail.from.clone(),
            subject: rules::truncate_chars(&mail.subject, 998),
            outcome: decision.outcome.into(),
            reason,
            ticket_id: decision.ticket.as_ref().map(|t| t.id.clone()),
            comment_id: decision.comment_id.clone(),
            safe_html: mail.safe_html.clone(),
            raw_sha256: Some(raw_staged.sha256.clone()),
            received_at: w.now,
        };
        match store::insert_message(&mut w.tx, &rec).await {
            Ok(()) => {}
            // Received concurrently by another delivery: that one counts.
            Err(keel_store::StoreError::Unique { .. }) => {
                drop(w);
                let mut c = self.read().await?;
                let m = store::get_message_by_message_id(&mut c, &mail.message_id).await?.ok_or(AppError::NotFound)?;
                return Ok(Receipt { message: m, duplicate: true });
            }
            Err(e) => return Err(e.into()),
        }
        w.actor = system;
        w.record("mail_message", &rec.id, AuditAction::Create, None, Some(&snapshot(&rec))).await?;
        w.commit().await?;
        Ok(Receipt { message: rec, duplicate: false })
    }

    async fn stage(&self, bytes: &[u8], max: u64) -> Result<Staged> {
        let mut up = crate::desk::FileStore::new(self.files.dir.clone(), max).begin().await?;
        up.write(bytes).await?;
        up.finish().await
    }

    /// The message's files made durable before the transaction (an abandoned one is only an
    /// unreferenced file); those over the size limit are named instead.
    async fn stage_files<'m>(&self, mail: &'m InboundMail) -> Result<StagedFiles<'m>> {
        let mut out = StagedFiles::default();
        for f in &mail.files {
            match self.stage(&f.bytes, self.files.max_bytes).await {
                Ok(s) => out.kept.push((f, s)),
                Err(AppError::Validation(_)) => out.skipped.push(f.file_name.clone()),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Attaches the staged files to the ticket or reply a message became; returns the
    /// decision's reason with any files left out named.
    async fn attach_files(&self, w: &mut crate::Writer, decision: &Decision, staged: StagedFiles<'_>) -> Result<Option<String>> {
        let mut reason = decision.reason.clone();
        let (Some(t), Some(uploader)) = (&decision.ticket, &decision.uploader) else { return Ok(reason) };
        for (f, mut s) in staged.kept {
            self.files.keep(&mut s).await?;
            let rec = AttachmentRecord {
                id: keel_store::new_id(),
                ticket_id: t.id.clone(),
                comment_id: decision.comment_id.clone(),
                visibility: Visibility::Public.as_str().into(),
                file_name: attachment::clean_file_name(&f.file_name),
                content_type: attachment::served_type(&f.content_type, &f.bytes[..f.bytes.len().min(16)]).into(),
                size_bytes: i64::try_from(s.size).unwrap_or(i64::MAX),
                sha256: s.sha256.clone(),
                uploaded_by: uploader.clone(),
                created_at: w.now,
                uploader_name: None,
            };
            keel_store::desk::insert_attachment(&mut w.tx, &rec).await?;
            w.record("ticket_attachment", &rec.id, AuditAction::Create, None, Some(&snapshot(&rec))).await?;
        }
        if !staged.skipped.is_empty() {
            let note = format!("attachments over the size limit left out: {}", staged.skipped.join(", "));
            reason = Some(reason.map_or(note.clone(), |r| format!("{r}; {note}")));
        }
        Ok(reason)
    }

    // ---- held messages ----

    /// One received message (staff of its project).
    pub async fn received_mail(&self, actor: &Principal, id: &str) -> Result<MailMessageRecord> {
        let mut c = self.read().await?;
        let m = store::get_message(&mut c, id).await?.ok_or(AppError::NotFound)?;
        staff_of(&mut c, actor, &m.project_id).await?;
        Ok(m)
    }

    /// One received message with what a reviewer reads of it: the text (the text rendering of
    /// HTML-only mail, so no markup, script or remote content reaches the page) and the files
    /// it carries, parsed again from the kept raw message (staff of its project). `None` when
    /// the raw message was not kept.
    pub async fn received_mail_content(&self, actor: &Principal, id: &str) -> Result<(MailMessageRecord, Option<InboundMail>)> {
        let m = self.received_mail(actor, id).await?;
        let Some(sha) = m.raw_sha256.clone() else { return Ok((m, None)) };
        let raw = match tokio::fs::read(self.files.object_path(&sha)).await {
            Ok(raw) => raw,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((m, None)),
            Err(e) => return Err(AppError::Internal(format!("received message: {e}"))),
        };
        let own_host = self.mail_host().await?;
        Ok((m, keel_mailparse::parse_mail(&raw, own_host.as_deref()).ok()))
    }

    /// The messages held for review in a project, newest first (staff of the project).
    pub async fn list_held_mail(&self, actor: &Principal, project_id: &str) -> Result<Vec<MailMessageRecord>> {
        Ok(self.list_received_mail(actor, project_id).await?.into_iter().filter(|m| m.outcome == "held").collect())
    }

    /// A held message with its project, for an actor who may review it.
    async fn held_for(&self, conn: &mut sqlx::AnyConnection, actor: &Principal, id: &str) -> Result<MailMessageRecord> {
        let m = store::get_message(conn, id).await?.ok_or(AppError::NotFound)?;
        staff_of(conn, actor, &m.project_id).await?;
        if actor.is_read_only() {
            return Err(AppError::Forbidden);
        }
        if m.outcome != "held" {
            return Err(AppError::Conflict { code: "conflict", field: None, message: "the message is no longer held".into() });
        }
        Ok(m)
    }

    /// Releases a held message: it is received again as if its mailbox created contacts for
    /// unknown senders (the contact in the project's organisation), so it becomes a ticket
    /// or a reply. Mail held for another reason (another organisation's contact, staff mail)
    /// stays held and the reason is returned as a validation error.
    pub async fn release_held_mail(&self, actor: &Principal, id: &str) -> Result<MailMessageRecord> {
        let held = {
            let mut c = self.read().await?;
            self.held_for(&mut c, actor, id).await?
        };
        let sha = held.raw_sha256.clone().ok_or_else(|| AppError::field("message", "invalid", "the raw message was not kept"))?;
        let raw = tokio::fs::read(self.files.object_path(&sha)).await.map_err(|e| AppError::Internal(format!("held message: {e}")))?;
        let own_host = self.mail_host().await?;
        let mail = parse_mail(&raw, own_host.as_deref())?;
        let staged = self.stage_files(&mail).await?;
        let mut w = self.write(actor).await?;
        let held = self.held_for(&mut w.tx, actor, id).await?;
        let project = directory::get_project(&mut w.tx, &held.project_id).await?.ok_or(AppError::NotFound)?;
        let mailboxes = store::project_mailboxes(&mut w.tx, &project.id).await?;
        let mut mailbox = held.mailbox_id.as_ref().and_then(|b| mailboxes.iter().find(|m| &m.id == b)).cloned().unwrap_or_default();
        mailbox.unknown_sender = "create_contact".into();
        let reviewer = actor.clone();
        let decision = self.decide(&mut w, &project, Some(&mailbox), &mail).await?;
        if decision.outcome == "held" || decision.outcome == "ignored" {
            let why = decision.reason.unwrap_or_default();
            return Err(AppError::field("message", "invalid", format!("the message cannot be released: {why}")));
        }
        let reason = self.attach_files(&mut w, &decision, staged).await?;
        let released = format!("released by {}", reviewer.user_id);
        let after = MailMessageRecord {
            outcome: decision.outcome.into(),
            reason: Some(reason.map_or(released.clone(), |r| format!("{released}; {r}"))),
            ticket_id: decision.ticket.as_ref().map(|t| t.id.clone()),
            comment_id: decision.comment_id.clone(),
            ..held.clone()
        };
        store::update_message_outcome(&mut w.tx, &after).await?;
        w.actor = reviewer;
        w.record("mail_message", &after.id, AuditAction::Update, Some(&snapshot(&held)), Some(&snapshot(&after))).await?;
        w.commit().await?;
        Ok(after)
    }

    /// Discards a held message: it stays in the log as `discarded`, nothing else is made.
    pub async fn discard_held_mail(&self, actor: &Principal, id: &str) -> Result<MailMessageRecord> {
        let mut w = self.write(actor).await?;
        let held = self.held_for(&mut w.tx, actor, id).await?;
        let after = MailMessageRecord {
            outcome: "discarded".into(),
            reason: Some(format!("{}; discarded by {}", held.reason.clone().unwrap_or_default(), actor.user_id)),
            ..held.clone()
        };
        store::update_message_outcome(&mut w.tx, &after).await?;
        w.record("mail_message", &after.id, AuditAction::Update, Some(&snapshot(&held)), Some(&snapshot(&after))).await?;
        w.commit().await?;
        Ok(after)
    }

    async fn decide(
        &self,
        w: &mut crate::Writer,
        project: &directory::ProjectRecord,
        mailbox: Option<&MailboxRecord>,
        mail: &InboundMail,
    ) -> Result<Decision> {
        if let Some(n) = mail.noise {
            return Ok(Decision::just("ignored", n.as_str()));
        }
        let since = w.now - 3_600_000;
        if rules::is_storm(store::count_from_sender(&mut w.tx, &mail.from, since).await?) {
            return Ok(Decision::just("ignored", Noise::Storm.as_str()));
        }
        let policy = mailbox.map_or("hold", |m| m.unknown_sender.as_str());
        let mut notes: Vec<String> = Vec::new();
        let sender = match accounts::get_user_by_email(&mut w.tx, &mail.from).await? {
            Some(u) if !u.active => return Ok(Decision::just("held", "inactive_sender")),
            Some(u) => crate::auth::principal_of(&mut w.tx, &u).await?,
            None if policy == "create_contact" => {
                let name = mail.from_name.clone().unwrap_or_else(|| mail.from.split('@').next().unwrap_or("").to_string());
                let input = NewUser {
                    kind: AccountKind::Contact,
                    email: mail.from.clone(),
                    display_name: rules::truncate_chars(&name, 100),
                    organization_id: Some(project.organization_id.clone()),
                    ..Default::default()
                };
                let u = match insert_user_in(w, input).await {
                    Ok(u) => u,
                    Err(AppError::Validation(_)) => return Ok(Decision::just("held", "unknown_sender_invalid")),
                    Err(e) => return Err(e),
                };
                notes.push("contact created".into());
                crate::auth::principal_of(&mut w.tx, &u).await?
            }
            None => return Ok(Decision::just("held", "unknown_sender")),
        };
        w.actor = sender.clone();

        // Threading: Keel's thread id or a message received before, then the subject's number.
        let mut candidates: Vec<TicketRecord> = Vec::new();
        for id in mail.in_reply_to.iter().chain(mail.references.iter().rev()) {
            let t = match rules::thread_ticket_id(id) {
                Some(tid) => tickets::get_ticket(&mut w.tx, tid).await?,
                None => match store::get_message_by_message_id(&mut w.tx, id).await?.and_then(|m| m.ticket_id) {
                    Some(tid) => tickets::get_ticket(&mut w.tx, &tid).await?,
                    None => None,
                },
            };
            if let Some(t) = t {
                candidates.push(t);
            }
        }
        if let Some(n) = subject_number(&mail.subject)
            && let Some(t) = tickets::get_ticket_by_number(&mut w.tx, &n.to_string()).await?
        {
            candidates.push(t);
        }
        let mut closed = None;
        let mut foreign = false;
        for t in candidates {
            if !sender.can_see_project(&t.project_id, Some(&t.organization_id)) {
                foreign = true;
                continue;
            }
            if t.status == Status::Closed.as_str() {
                closed.get_or_insert(t.number.clone());
                continue;
            }
            let body = if mail.reply_text.trim().is_empty() { "(empty message)".to_string() } else { mail.reply_text.clone() };
            let body = rules::truncate_chars(&body, keel_domain::incident::comment::BODY_MAX);
            let c = comment_in(w, &sender, &t, Visibility::Public.as_str(), &body).await?;
            return Ok(Decision {
                outcome: "reply",
                reason: (!notes.is_empty()).then(|| notes.join("; ")),
                ticket: Some(t),
                comment_id: Some(c.id),
                uploader: Some(sender.user_id.clone()),
            });
        }
        if foreign {
            notes.push("reference to a ticket the sender may not see ignored".into());
        }
        if let Some(n) = closed {
            notes.push(format!("{n} is closed"));
        }
        if sender.kind != AccountKind::Contact {
            return Ok(Decision::just("held", "staff mail without a ticket"));
        }
        if !sender.can_see_project(&project.id, Some(&project.organization_id)) {
            notes.insert(0, "sender_of_another_organization".into());
            return Ok(Decision { outcome: "held", reason: Some(notes.join("; ")), ticket: None, comment_id: None, uploader: None });
        }
        let title = rules::clean_subject(&mail.subject, |t| TicketNumber::parse(t).is_some());
        let title = if title.is_empty() {
            "(no subject)".to_string()
        } else {
            rules::truncate_chars(&title, keel_domain::incident::fields::TITLE_MAX)
        };
        let description =
            Some(rules::truncate_chars(&mail.text, keel_domain::incident::fields::DESCRIPTION_MAX)).filter(|d| !d.trim().is_empty());
        let input = NewTicket { project_id: project.id.clone(), title, description, ..Default::default() };
        let t = self.create_ticket_in(w, &sender, input, Some("email")).await?;
        let t = match mailbox.and_then(|m| m.team_id.as_deref()) {
            Some(team) => self.route_to_team(w, &sender, t, team, &mut notes).await?,
            None => t,
        };
        Ok(Decision {
            outcome: "ticket",
            reason: (!notes.is_empty()).then(|| notes.join("; ")),
            ticket: Some(t),
            comment_id: None,
            uploader: Some(sender.user_id.clone()),
        })
    }
}

impl App {
    /// Assigns a ticket just made from mail to its mailbox's team, in the same transaction. The
    /// system assigns (the sender, a contact, may not), so the step is in the status log and
    /// the audit like any assignment. A team no longer active, or no longer working on the
    /// project, leaves the ticket unassigned and says so on the message.
    async fn route_to_team(
        &self,
        w: &mut crate::Writer,
        sender: &Principal,
        t: TicketRecord,
        team: &str,
        notes: &mut Vec<String>,
    ) -> Result<TicketRecord> {
        if let Some(e) = team_refusal(&mut w.tx, team, &t.project_id).await? {
            notes.push(format!("mailbox team not assigned ({}); ticket left unassigned", e.code));
            return Ok(t);
        }
        let system = Principal::system();
        w.actor = system.clone();
        let input = TransitionInput { action: Action::Assign.as_str().into(), team_id: Some(team.into()), ..Default::default() };
        let assigned = self.transition_in(w, &system, &t.id, &input, None).await;
        w.actor = sender.clone();
        assigned
    }
}

/// A ticket number is only ever read from a tag, never from free text.
pub fn subject_number(subject: &str) -> Option<TicketNumber> {
    rules::subject_ticket_number(subject, TicketNumber::parse)
}
