//! Service desk and incident management (REQUIREMENTS §4), second part: files attached to
//! tickets and replies, watchers, links (parent/child, merged duplicates, related problems,
//! changes and configuration items, the affected catalogue service) and the automatic closure
//! of resolved tickets the customer leaves unanswered.
//!
//! Files are kept under the data directory, named by their SHA-256: written to a temporary
//! file, synced, renamed into place and the directory synced, and only then is the row
//! committed. A failed commit leaves an unreferenced file behind, never a row without its file.

use crate::incidents::NewTicket;
use crate::incidents::{comment_in, load_visible, persist_applied, policy_in, state_of, time};
use crate::writer::snapshot;
use crate::{App, AppError, Principal, Result};
use chrono::{DateTime, Datelike, Duration, Utc, Weekday};
use keel_domain::audit::AuditAction;
use keel_domain::identity::AccountKind;
use keel_domain::incident::request_form::{FormField, check_form, validate_answers};
use keel_domain::incident::{self as inc, Actor, Command, Context, Status, TicketKind, Visibility, attachment};
use keel_store::desk::{self as store, AttachmentRecord, CatalogueItemRecord, WatcherRecord};
use keel_store::incidents::{self as tickets, LinkRecord, TicketRecord};
use keel_store::{accounts, kernel};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// Business days after resolution before an unanswered ticket is closed; `0` or `never` turns
/// automatic closure off.
pub const AUTO_CLOSE_SETTING: &str = "incident.auto_close_business_days";
pub const DEFAULT_AUTO_CLOSE_DAYS: u32 = 5;

/// The ticket page's reads (`App::ticket_page_data`).
#[derive(Debug, Clone)]
pub struct TicketPageData {
    pub ticket: TicketRecord,
    pub comments: Vec<tickets::CommentRecord>,
    /// Staff only (empty for customer contacts).
    pub work_log: Vec<tickets::WorkLogRecord>,
    pub rating: Option<tickets::RatingRecord>,
    pub attachments: Vec<AttachmentRecord>,
    /// Children and merged duplicates the actor may see.
    pub children: Vec<TicketRecord>,
    pub duplicates: Vec<TicketRecord>,
    pub watchers: Vec<WatcherRecord>,
    /// Staff only.
    pub links: Vec<LinkRecord>,
    /// The audit trail; staff only.
    pub history: Vec<keel_store::audit::HistoryEntry>,
    /// The names of the records the audit trail refers to, as the actor may see them.
    pub history_names: crate::history_names::HistoryNames,
    /// The lifecycle steps the actor may take now.
    pub actions: Vec<inc::Action>,
    /// The major incident communication log.
    pub communications: crate::major_incidents::CommunicationLog,
    /// Linked problems and known errors the actor may see; staff only.
    pub problems: Vec<keel_store::problems::ProblemRecord>,
    pub known_errors: Vec<keel_store::problems::KnownErrorRecord>,
    /// SLA clocks, and for staff the escalations fired.
    pub sla: crate::sla_clocks::TicketSla,
    /// The option lists of the page's forms, as the actor may see them.
    pub choices: crate::reference::Choices,
}

async fn attachments_of(c: &mut sqlx::AnyConnection, actor: &Principal, ticket_id: &str) -> Result<Vec<AttachmentRecord>> {
    let all = store::list_attachments(c, ticket_id, !actor.is_staff()).await?;
    Ok(all.into_iter().filter(|a| Visibility::parse(&a.visibility).is_some_and(|v| attachment::may_download(actor.kind, v))).collect())
}

async fn watchers_of(c: &mut sqlx::AnyConnection, actor: &Principal, ticket_id: &str) -> Result<Vec<WatcherRecord>> {
    let all = store::list_watcher_records(c, ticket_id).await?;
    // Contacts see the people of their own organisation and the staff, by name only.
    Ok(all.into_iter().filter(|w| actor.is_staff() || w.kind == "staff" || w.organization_id == actor.organization_id).collect())
}

async fn links_of(c: &mut sqlx::AnyConnection, actor: &Principal, ticket_id: &str) -> Result<Vec<LinkRecord>> {
    if !actor.is_staff() {
        return Ok(vec![]);
    }
    Ok(tickets::list_links(c, ticket_id).await?)
}

/// The children of a ticket and the tickets merged into it that the actor may see, in number
/// order: one query for the ids, one for the tickets.
async fn related_of(c: &mut sqlx::AnyConnection, actor: &Principal, ticket_id: &str) -> Result<(Vec<TicketRecord>, Vec<TicketRecord>)> {
    let (children, merged) = store::related_ids(c, ticket_id).await?;
    let ids: Vec<String> = children.iter().chain(&merged).cloned().collect();
    if ids.is_empty() {
        return Ok((vec![], vec![]));
    }
    let found: std::collections::HashMap<String, TicketRecord> = tickets::tickets_by_ids(c, &ids)
        .await?
        .into_iter()
        .filter(|x| actor.can_see_project(&x.project_id, Some(&x.organization_id)))
        .map(|x| (x.id.clone(), x))
        .collect();
    let pick = |list: &[String]| list.iter().filter_map(|id| found.get(id).cloned()).collect();
    Ok((pick(&children), pick(&merged)))
}

/// Kinds of records a ticket links to by reference.
pub const LINK_KINDS: &[&str] = &["problem", "change", "ci"];

fn io(e: std::io::Error) -> AppError {
    AppError::Internal(format!("attachment storage: {e}"))
}

/// Where attachments are kept and how large one may be.
#[derive(Debug, Clone)]
pub struct FileStore {
    pub dir: PathBuf,
    pub max_bytes: u64,
}

impl Default for FileStore {
    fn default() -> Self {
        FileStore { dir: PathBuf::from("keel-data").join("attachments"), max_bytes: 10 * 1024 * 1024 }
    }
}

impl FileStore {
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> Self {
        FileStore { dir: dir.into(), max_bytes }
    }

    /// The path of a stored file by its SHA-256 (hex).
    pub fn object_path(&self, sha256: &str) -> PathBuf {
        let prefix = sha256.get(..2).unwrap_or("00");
        self.dir.join(prefix).join(sha256)
    }

    /// Starts receiving a file into a temporary file under the store.
    pub async fn begin(&self) -> Result<Upload> {
        let tmp = self.dir.join("tmp");
        tokio::fs::create_dir_all(&tmp).await.map_err(io)?;
        let path = tmp.join(keel_store::new_id());
        let file = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&path).await.map_err(io)?;
        Ok(Upload { path: Some(path), file, hasher: Sha256::new(), size: 0, head: Vec::new(), max: self.max_bytes })
    }

    /// Moves a received file to its content address and makes the rename durable.
    pub(crate) async fn keep(&self, staged: &mut Staged) -> Result<()> {
        let target = self.object_path(&staged.sha256);
        let parent = target.parent().map(Path::to_path_buf).unwrap_or_else(|| self.dir.clone());
        tokio::fs::create_dir_all(&parent).await.map_err(io)?;
        let tmp = staged.path.take().ok_or_else(|| AppError::Internal("attachment already kept".into()))?;
        if tokio::fs::try_exists(&target).await.map_err(io)? {
            let _ = tokio::fs::remove_file(&tmp).await;
        } else {
            tokio::fs::rename(&tmp, &target).await.map_err(io)?;
        }
        let dir = parent.clone();
        tokio::task::spawn_blocking(move || std::fs::File::open(&dir).and_then(|d| d.sync_all()))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?
            .map_err(io)?;
        Ok(())
    }
}

/// A file being received; removed when dropped unfinished.
pub struct Upload {
    path: Option<PathBuf>,
    file: tokio::fs::File,
    hasher: Sha256,
    size: u64,
    head: Vec<u8>,
    max: u64,
}

impl Upload {
    /// Appends a chunk; refuses as soon as the file passes the size limit.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.size += chunk.len() as u64;
        if self.size > self.max {
            return Err(attachment::check_size(self.size, self.max).map(|_| ()).unwrap_err().into());
        }
        if self.head.len() < 16 {
            let take = (16 - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.hasher.update(chunk);
        self.file.write_all(chunk).await.map_err(io)
    }

    /// Syncs the received bytes to disk.
    pub async fn finish(mut self) -> Result<Staged> {
        attachment::check_size(self.size, self.max)?;
        self.file.flush().await.map_err(io)?;
        self.file.sync_all().await.map_err(io)?;
        let sha256 = hex::encode(std::mem::take(&mut self.hasher).finalize());
        Ok(Staged { path: self.path.take(), sha256, size: self.size, head: std::mem::take(&mut self.head) })
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A received, synced file waiting for its row.
pub struct Staged {
    path: Option<PathBuf>,
    pub sha256: String,
    pub size: u64,
    head: Vec<u8>,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// What comes with a file: its name and declared type, and where it goes.
#[derive(Debug, Clone, Default)]
pub struct AttachInput {
    pub file_name: String,
    pub declared_type: String,
    /// Attach to this comment of the ticket (its visibility is the file's).
    pub comment_id: Option<String>,
    /// `public` (default) or `internal`, for a file of the ticket itself or of a new reply.
    pub visibility: Option<String>,
    /// A reply written with the file: the comment is created with it, in one transaction.
    pub body: Option<String>,
}

fn blank(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn not_closed(t: &TicketRecord) -> Result<()> {
    if t.status == Status::Closed.as_str() {
        return Err(AppError::field("status", "closed", "a closed ticket cannot be changed"));
    }
    Ok(())
}

/// Adds `days` working days to `from` by a calendar's working days (or Monday to Friday).
pub fn add_business_days(calendar: Option<&keel_domain::sla::BusinessCalendar>, from: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    let mut t = from;
    let mut left = days;
    let mut guard = 0;
    while left > 0 && guard < 3660 {
        t += Duration::days(1);
        guard += 1;
        let working = match calendar {
            Some(c) => c.is_working_day(t.with_timezone(&c.time_zone()).date_naive()),
            None => !matches!(t.weekday(), Weekday::Sat | Weekday::Sun),
        };
        if working {
            left -= 1;
        }
    }
    t
}

impl App {
    // ---- attachments ----

    /// Keeps a received file and records it on the ticket (and a reply written with it).
    pub async fn attach_file(&self, actor: &Principal, ticket: &str, input: AttachInput, mut staged: Staged) -> Result<AttachmentRecord> {
        let mut w = self.write(actor).await?;
        let t = load_visible(&mut w.tx, actor, ticket).await?;
        not_closed(&t)?;
        let requested = blank(&input.visibility).unwrap_or("public");
        let requested = Visibility::parse_field("visibility", requested)?;
        if requested == Visibility::Internal && !actor.is_staff() {
            return Err(AppError::field("visibility", "not_allowed", "customers cannot add internal files"));
        }
        let (comment_id, visibility) = match (blank(&input.comment_id), blank(&input.body)) {
            (Some(_), Some(_)) => return Err(AppError::field("comment_id", "conflict", "attach to an existing reply or write a new one")),
            (Some(cid), None) => {
                let vis = store::comment_visibility(&mut w.tx, &t.id, cid).await?;
                match vis.as_deref().and_then(Visibility::parse) {
                    Some(v) if inc::may_see_comment(actor.kind, v) => (Some(cid.to_string()), v),
                    _ => return Err(AppError::field("comment_id", "not_found", "no such reply on this ticket")),
                }
            }
            (None, Some(body)) => {
                let c = comment_in(&mut w, actor, &t, requested.as_str(), body).await?;
                (Some(c.id), requested)
            }
            (None, None) => (None, requested),
        };
        let served = attachment::served_type(&input.declared_type, &staged.head);
        self.files.keep(&mut staged).await?;
        let rec = AttachmentRecord {
            id: keel_store::new_id(),
            ticket_id: t.id.clone(),
            comment_id,
            visibility: visibility.as_str().into(),
            file_name: attachment::clean_file_name(&input.file_name),
            content_type: served.into(),
            size_bytes: i64::try_from(staged.size).unwrap_or(i64::MAX),
            sha256: staged.sha256.clone(),
            uploaded_by: actor.user_id.clone(),
            created_at: w.now,
            uploader_name: Some(actor.display_name.clone()),
        };
        store::insert_attachment(&mut w.tx, &rec).await?;
        w.record("ticket_attachment", &rec.id, AuditAction::Create, None, Some(&snapshot(&rec))).await?;
        tickets::touch_ticket(&mut w.tx, &t.id, w.now, false).await?;
        w.commit().await?;
        Ok(rec)
    }

    /// The files of a ticket the actor may download (contacts: no internal ones).
    pub async fn list_attachments(&self, actor: &Principal, ticket: &str) -> Result<Vec<AttachmentRecord>> {
        let mut c = self.read().await?;
        let t = load_visible(&mut c, actor, ticket).await?;
        attachments_of(&mut c, actor, &t.id).await
    }

    /// An attachment and the path of its bytes, when the actor may download it; `NotFound`
    /// otherwise (another organisation's ticket, an internal note's file for a contact).
    pub async fn attachment_file(&self, actor: &Principal, id: &str) -> Result<(AttachmentRecord, PathBuf)> {
        let mut c = self.read().await?;
        let a = store::get_attachment(&mut c, id.trim()).await?.ok_or(AppError::NotFound)?;
        load_visible(&mut c, actor, &a.ticket_id).await?;
        let vis = Visibility::parse(&a.visibility).ok_or(AppError::NotFound)?;
        if !attachment::may_download(actor.kind, vis) {
            return Err(AppError::NotFound);
        }
        let path = self.files.object_path(&a.sha256);
        Ok((a, path))
    }

    // ---- watchers ----

    pub async fn list_watchers(&self, actor: &Principal, ticket: &str) -> Result<Vec<WatcherRecord>> {
        let mut c = self.read().await?;
        let t = load_visible(&mut c, actor, ticket).await?;
        watchers_of(&mut c, actor, &t.id).await
    }

    /// Adds a watcher: staff add colleagues or the customer's contacts; a contact only
    /// themselves or a colleague of their organisation.
    pub async fn add_watcher(&self, actor: &Principal, ticket: &str, user_id: &str) -> Result<()> {
        let mut w = self.write(actor).await?;
        let t = load_visible(&mut w.tx, actor, ticket).await?;
        let user_id = if user_id.trim().is_empty() { actor.user_id.as_str() } else { user_id.trim() };
        let u = accounts::get_user(&mut w.tx, user_id).await?.filter(|u| u.active);
        let ok = match &u {
            None => false,
            Some(u) if u.kind == AccountKind::Staff.as_str() => actor.is_staff() || u.id == actor.user_id,
            Some(u) => u.organization_id.as_deref() == Some(t.organization_id.as_str()),
        };
        if !ok {
            return Err(AppError::field("user_id", "unknown_reference", "no such person who may follow this ticket"));
        }
        tickets::add_watcher(&mut w.tx, &t.id, user_id, w.now).await?;
        let after = serde_json::json!({ "ticket_id": t.id, "user_id": user_id });
        w.record("ticket_watcher", &format!("{}:{user_id}", t.id), AuditAction::Create, None, Some(&after)).await?;
        w.commit().await
    }

    pub async fn remove_watcher(&self, actor: &Principal, ticket: &str, user_id: &str) -> Result<()> {
        let mut w = self.write(actor).await?;
        let t = load_visible(&mut w.tx, actor, ticket).await?;
        if !actor.is_staff() && user_id != actor.user_id {
            return Err(AppError::Forbidden);
        }
        if !store::remove_watcher(&mut w.tx, &t.id, user_id).await? {
            return Err(AppError::NotFound);
        }
        let before = serde_json::json!({ "ticket_id": t.id, "user_id": user_id });
        w.record("ticket_watcher", &format!("{}:{user_id}", t.id), AuditAction::Delete, Some(&before), None).await?;
        w.commit().await
    }

    // ---- links ----

    /// Makes `parent` (id or number) the parent of the ticket, or clears it with `None`.
    pub async fn set_parent(&self, actor: &Principal, ticket: &str, parent: Option<&str>) -> Result<TicketRecord> {
        if !actor.is_staff() {
            return Err(AppError::Forbidden);
        }
        let mut w = self.write(actor).await?;
        let t = load_visible(&mut w.tx, actor, ticket).await?;
        let parent_id = match parent.map(str::trim).filter(|p| !p.is_empty()) {
            None => None,
            Some(p) => {
                let parent = match load_visible(&mut w.tx, actor, p).await {
                    Ok(p) => p,
                    Err(AppError::NotFound) => return Err(AppError::field("parent_id", "not_found", "no such ticket")),
                    Err(e) => return Err(e),
                };
                let mut parents = std::collections::HashMap::new();
                let mut cur = parent.parent_id.clone().map(|x| (parent.id.clone(), x));
                while let Some((from, to)) = cur.take() {
                    if parents.len() > inc::links::MAX_CHAIN || parents.contains_key(&from) {
                        break;
                    }
                    parents.insert(from, to.clone());
                    cur = tickets::get_ticket(&mut w.tx, &to).await?.and_then(|n| n.parent_id.map(|d| (n.id, d)));
                }
                let (cs, ps) = (state_of(&t)?, state_of(&parent)?);
                let child = inc::LinkSubject { id: &t.id, number: cs.number, project_id: &t.project_id, status: cs.status };
                let par = inc::LinkSubject { id: &parent.id, number: ps.number, project_id: &parent.project_id, status: ps.status };
                inc::check_parent(&child, &par, |id| parents.get(id).cloned())?;
                Some(parent.id)
            }
        };
        store::set_parent(&mut w.tx, &t.id, parent_id.as_deref(), w.now).await?;
        let b = serde_json::json!({ "parent_id": t.parent_id });
        let a = serde_json::json!({ "parent_id": parent_id });
        w.record("ticket", &t.id, AuditAction::Update, Some(&b), Some(&a)).await?;
        let fresh = tickets::get_ticket(&mut w.tx, &t.id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok(fresh)
    }

    /// Merges a duplicate into the ticket that carries on: the duplicate is closed as a
    /// duplicate pointing to it and keeps its own conversation, which the target lists.
    pub async fn merge_ticket(&self, actor: &Principal, duplicate: &str, into: &str) -> Result<TicketRecord> {
        let input = crate::incidents::TransitionInput {
            action: inc::Action::MarkDuplicate.as_str().into(),
            duplicate_of: Some(into.to_string()),
            ..Default::default()
        };
        self.transition_ticket(actor, duplicate, input, None).await
    }

    /// Links a ticket to a problem or change (by reference, until those records exist in Keel)
    /// or to a configuration item of the CMDB.
    pub async fn link_record(&self, actor: &Principal, ticket: &str, kind: &str, reference: &str) -> Result<LinkRecord> {
        if !actor.is_staff() {
            return Err(AppError::Forbidden);
        }
        let mut w = self.write(actor).await?;
        let t = load_visible(&mut w.tx, actor, ticket).await?;
        not_closed(&t)?;
        let kind = kind.trim();
        if !LINK_KINDS.contains(&kind) {
            return Err(AppError::field("target_type", "invalid_choice", format!("target_type must be one of: {}", LINK_KINDS.join(", "))));
        }
        let reference = reference.trim();
        keel_domain::validate::required_text("target_id", reference, 100)?;
        if kind == "problem" && t.kind != TicketKind::Incident.as_str() {
            return Err(AppError::field("target_type", "not_incident", "only incidents are linked to problems"));
        }
        if kind == "ci"
            && !keel_store::cmdb::get_ci(&mut w.tx, reference)
                .await?
                .is_some_and(|ci| crate::cmdb::sees_ci(actor, ci.project_id.as_deref()))
        {
            return Err(AppError::field("target_id", "unknown_reference", "no such configuration item"));
        }
        if tickets::list_links(&mut w.tx, &t.id).await?.iter().any(|l| l.target_type == kind && l.target_id == reference) {
            return Err(AppError::field("target_id", "duplicate", "the ticket is already linked to it"));
        }
        let rec = LinkRecord {
            id: keel_store::new_id(),
            ticket_id: t.id.clone(),
            target_type: kind.into(),
            target_id: reference.into(),
            created_by: actor.user_id.clone(),
            created_at: w.now,
        };
        tickets::insert_link(&mut w.tx, &rec).await?;
        w.record("ticket_link", &rec.id, AuditAction::Create, None, Some(&snapshot(&rec))).await?;
        w.commit().await?;
        Ok(rec)
    }

    pub async fn list_links(&self, actor: &Principal, ticket: &str) -> Result<Vec<LinkRecord>> {
        let mut c = self.read().await?;
        let t = load_visible(&mut c, actor, ticket).await?;
        links_of(&mut c, actor, &t.id).await
    }

    /// What the ticket page shows besides the ticket's own fields, read on one connection
    /// after one visibility check (each part filtered as its own use case filters it).
    pub async fn ticket_page_data(&self, actor: &Principal, ticket: &str) -> Result<TicketPageData> {
        let mut c = self.read().await?;
        let t = load_visible(&mut c, actor, ticket).await?;
        let staff = actor.is_staff();
        let (children, duplicates) = related_of(&mut c, actor, &t.id).await?;
        let actions = if actor.is_read_only() { vec![] } else { self.actions_under(actor, &t, &policy_in(&mut c).await?)? };
        let (problems, known_errors) = crate::problems::problem_links_in(&mut c, actor, &t.id).await?;
        let lists = self.reference.lists(&mut c).await?;
        let history = if staff { keel_store::audit::history(&mut c, "ticket", &t.id).await? } else { vec![] };
        let history_names = crate::history_names::history_names_in(&mut c, actor, &lists, &history).await?;
        Ok(TicketPageData {
            actions,
            communications: self.communications_in(&mut c, actor, &t).await?,
            problems,
            known_errors,
            sla: crate::sla_clocks::ticket_sla_in(&mut c, actor, &t.id).await?,
            choices: crate::reference::Choices::new(lists, actor),
            comments: crate::incidents::comments_of(&mut c, actor, &t.id).await?,
            work_log: if staff { tickets::list_work_log(&mut c, &t.id).await? } else { vec![] },
            rating: tickets::get_rating(&mut c, &t.id).await?,
            attachments: attachments_of(&mut c, actor, &t.id).await?,
            children,
            duplicates,
            watchers: watchers_of(&mut c, actor, &t.id).await?,
            links: links_of(&mut c, actor, &t.id).await?,
            history,
            history_names,
            ticket: t,
        })
    }

    pub async fn unlink_record(&self, actor: &Principal, ticket: &str, link_id: &str) -> Result<()> {
        if !actor.is_staff() {
            return Err(AppError::Forbidden);
        }
        let mut w = self.write(actor).await?;
        let t = load_visible(&mut w.tx, actor, ticket).await?;
        let before = tickets::list_links(&mut w.tx, &t.id).await?.into_iter().find(|l| l.id == link_id).ok_or(AppError::NotFound)?;
        store::remove_link(&mut w.tx, &t.id, link_id).await?;
        w.record("ticket_link", link_id, AuditAction::Delete, Some(&snapshot(&before)), None).await?;
        w.commit().await
    }

    /// Sets the affected service from the catalogue (one the customer's SLAs cover), or clears it.
    pub async fn set_affected_service(&self, actor: &Principal, ticket: &str, service_id: Option<&str>) -> Result<TicketRecord> {
        if !actor.is_staff() {
            return Err(AppError::Forbidden);
        }
        let mut w = self.write(actor).await?;
        let t = load_visible(&mut w.tx, actor, ticket).await?;
        not_closed(&t)?;
        let service_id = service_id.map(str::trim).filter(|s| !s.is_empty());
        if let Some(s) = service_id
            && keel_store::service_level::get_service(&mut w.tx, s).await?.is_none()
        {
            return Err(AppError::field("service_id", "unknown_reference", "no such catalogue service"));
        }
        store::set_service(&mut w.tx, &t.id, service_id, w.now).await?;
        let b = serde_json::json!({ "service_id": t.service_id });
        let a = serde_json::json!({ "service_id": service_id });
        w.record("ticket", &t.id, AuditAction::Update, Some(&b), Some(&a)).await?;
        let fresh = tickets::get_ticket(&mut w.tx, &t.id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok(fresh)
    }

    // ---- automatic closure ----

    /// The business days after which resolved tickets close on their own; `None` when off.
    pub async fn auto_close_days(&self) -> Result<Option<u32>> {
        let mut c = self.read().await?;
        Ok(match kernel::get_setting(&mut c, AUTO_CLOSE_SETTING).await? {
            None => Some(DEFAULT_AUTO_CLOSE_DAYS),
            Some(s) if s.trim().is_empty() || s.trim() == "never" || s.trim() == "0" => None,
            Some(s) => Some(s.trim().parse::<u32>().map_err(|e| AppError::Internal(format!("auto-close setting: {e}")))?),
        })
    }

    /// Sets the business days after which resolved tickets close on their own (`None`: never).
    pub async fn set_auto_close_days(&self, actor: &Principal, days: Option<u32>) -> Result<()> {
        if !may_configure(actor) {
            return Err(AppError::Forbidden);
        }
        if days.is_some_and(|d| d > 365) {
            return Err(AppError::field("days", "out_of_range", "at most 365 business days"));
        }
        let before = self.auto_close_days().await?;
        let mut w = self.write(actor).await?;
        let value = days.map(|d| d.to_string()).unwrap_or_else(|| "never".into());
        kernel::set_setting(&mut w.tx, AUTO_CLOSE_SETTING, &value, w.now).await?;
        let (b, a) = (serde_json::json!({ "days": before }), serde_json::json!({ "days": days }));
        w.record("setting", AUTO_CLOSE_SETTING, AuditAction::Update, Some(&b), Some(&a)).await?;
        w.commit().await
    }

    /// The calendar of the active SLA of a project, if there is one.
    async fn project_calendar(
        &self,
        conn: &mut sqlx::AnyConnection,
        project_id: &str,
    ) -> Result<Option<keel_domain::sla::BusinessCalendar>> {
        let row = sqlx::query("SELECT calendar_id FROM slas WHERE project_id = $1 AND status = 'active' ORDER BY created_at DESC LIMIT 1")
            .bind(project_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(keel_store::StoreError::from)?;
        let Some(row) = row else { return Ok(None) };
        let id: String = sqlx::Row::try_get(&row, "calendar_id").map_err(keel_store::StoreError::from)?;
        match keel_store::service_level::get_calendar(conn, &id).await? {
            Some(c) => Ok(crate::service_level::business_calendar(&c).ok()),
            None => Ok(None),
        }
    }

    /// Closes resolved tickets whose customer has not answered within the configured business
    /// days (by the calendar of the project's active SLA, otherwise Monday to Friday). Each is
    /// closed by the system through the lifecycle, with its status log entry. Returns how many.
    pub async fn auto_close_resolved(&self) -> Result<usize> {
        let Some(days) = self.auto_close_days().await? else { return Ok(0) };
        let now = time(self.now());
        // n business days are at least n calendar days: nothing resolved later can be due.
        let horizon = now - Duration::days(i64::from(days));
        let candidates = {
            let mut c = self.read().await?;
            store::resolved_before(&mut c, horizon.timestamp_millis(), 500).await?
        };
        let mut closed = 0;
        let system = Principal::system();
        for id in candidates {
            let mut w = self.write(&system).await?;
            let Some(t) = tickets::get_ticket(&mut w.tx, &id).await? else { continue };
            let state = state_of(&t)?;
            let cal = self.project_calendar(&mut w.tx, &t.project_id).await?;
            if !inc::auto_close_due(&state, days, now, |from, n| add_business_days(cal.as_ref(), from, n)) {
                continue;
            }
            let policy = policy_in(&mut w.tx).await?;
            let applied = inc::apply(&state, &Command::AutoClose, &Context::new(now, &Actor::System, &policy))?;
            persist_applied(
                &mut w,
                &t,
                applied,
                t.version,
                "system",
                Some("auto_close"),
                Some(format!("no answer within {days} business days")),
            )
            .await?;
            w.commit().await?;
            closed += 1;
        }
        Ok(closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn weekdays_skip_the_weekend() {
        let friday = Utc.with_ymd_and_hms(2026, 3, 6, 16, 0, 0).unwrap();
        assert_eq!(add_business_days(None, friday, 1), friday + Duration::days(3));
        assert_eq!(add_business_days(None, friday, 5), friday + Duration::days(7));
        assert_eq!(add_business_days(None, friday, 0), friday);
    }

    #[test]
    fn the_size_limit_is_a_field_error() {
        let e: AppError = attachment::check_size(11, 10).unwrap_err().into();
        assert!(matches!(e, AppError::Validation(ref v) if v[0].field == "file"));
    }
}

// ---- service requests from catalogue items ----

/// A catalogue item as an administrator defines it.
#[derive(Debug, Clone, Default)]
pub struct CatalogueItemInput {
    pub service_id: String,
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub fields: Vec<FormField>,
    pub active: Option<bool>,
}

/// A request for a catalogue item.
#[derive(Debug, Clone, Default)]
pub struct ServiceRequestInput {
    pub catalogue_item_id: String,
    pub project_id: String,
    /// Staff ordering on a caller's behalf name the caller; contacts order for themselves.
    pub reporter_id: Option<String>,
    /// Blank: the item's name.
    pub title: Option<String>,
    pub description: Option<String>,
    pub answers: BTreeMap<String, String>,
}

/// The form fields of a stored item.
pub fn form_of(item: &CatalogueItemRecord) -> Result<Vec<FormField>> {
    serde_json::from_str(&item.form).map_err(|e| AppError::Internal(format!("catalogue item form: {e}")))
}

fn may_configure(actor: &Principal) -> bool {
    actor.is_staff() && !actor.is_read_only() && (actor.is_admin() || actor.has(keel_domain::identity::Role::ServiceManager))
}

fn unique_code(e: keel_store::StoreError) -> AppError {
    match e {
        keel_store::StoreError::Unique { .. } => AppError::field("code", "already_taken", "another catalogue item has this code"),
        other => other.into(),
    }
}

/// Whether a catalogue service may be named on a ticket by this actor: it exists, and for a
/// contact their organisation's SLAs include it.
pub(crate) async fn service_open_to(conn: &mut sqlx::AnyConnection, actor: &Principal, service_id: &str) -> Result<bool> {
    if keel_store::service_level::get_service(conn, service_id).await?.is_none() {
        return Ok(false);
    }
    if actor.is_staff() {
        return Ok(true);
    }
    let org = actor.organization_id.clone().unwrap_or_default();
    Ok(keel_store::service_level::service_is_included_for(conn, service_id, &org).await?)
}

/// Whether a catalogue item may be ordered by this actor: active, and of a service open to them.
pub(crate) async fn catalogue_item_open_to(conn: &mut sqlx::AnyConnection, actor: &Principal, item_id: &str) -> Result<bool> {
    match store::get_catalogue_item(conn, item_id).await? {
        Some(i) if i.active => service_open_to(conn, actor, &i.service_id).await,
        _ => Ok(false),
    }
}

impl App {
    async fn check_item(&self, conn: &mut sqlx::AnyConnection, input: &CatalogueItemInput) -> Result<CatalogueItemRecord> {
        let mut e = keel_domain::error::Errors::new();
        let code = e.check(keel_domain::validate::code("code", &input.code, 32));
        let name = e.check(keel_domain::validate::required_text("name", &input.name, 200));
        let description = e.check(keel_domain::validate::optional_text("description", input.description.as_deref(), 4000));
        if keel_store::service_level::get_service(conn, input.service_id.trim()).await?.is_none() {
            e.push(keel_domain::error::FieldError::new("service_id", "unknown_reference", "no such catalogue service"));
        }
        if let Err(keel_domain::DomainError::Invalid(list)) = check_form(&input.fields) {
            list.into_iter().for_each(|x| e.push(x));
        }
        e.finish()?;
        Ok(CatalogueItemRecord {
            id: String::new(),
            service_id: input.service_id.trim().into(),
            code: code.unwrap_or_default(),
            name: name.unwrap_or_default(),
            description: description.flatten(),
            form: serde_json::to_string(&input.fields).map_err(|e| AppError::Internal(e.to_string()))?,
            active: input.active.unwrap_or(true),
            created_at: 0,
            updated_at: 0,
            version: 1,
        })
    }

    pub async fn create_catalogue_item(&self, actor: &Principal, input: CatalogueItemInput) -> Result<CatalogueItemRecord> {
        if !may_configure(actor) {
            return Err(AppError::Forbidden);
        }
        let mut w = self.write(actor).await?;
        let mut rec = self.check_item(&mut w.tx, &input).await?;
        rec.id = keel_store::new_id();
        rec.created_at = w.now;
        rec.updated_at = w.now;
        store::insert_catalogue_item(&mut w.tx, &rec).await.map_err(unique_code)?;
        w.record("catalogue_item", &rec.id, AuditAction::Create, None, Some(&snapshot(&rec))).await?;
        w.commit().await?;
        Ok(rec)
    }

    pub async fn update_catalogue_item(
        &self,
        actor: &Principal,
        id: &str,
        input: CatalogueItemInput,
        expected_version: Option<i64>,
    ) -> Result<CatalogueItemRecord> {
        if !may_configure(actor) {
            return Err(AppError::Forbidden);
        }
        let mut w = self.write(actor).await?;
        let before = store::get_catalogue_item(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
        let checked = self.check_item(&mut w.tx, &input).await?;
        let after = CatalogueItemRecord {
            id: before.id.clone(),
            created_at: before.created_at,
            updated_at: w.now,
            version: before.version,
            ..checked
        };
        store::update_catalogue_item(&mut w.tx, &after, expected_version.unwrap_or(before.version)).await.map_err(unique_code)?;
        w.record("catalogue_item", id, AuditAction::Update, Some(&snapshot(&before)), Some(&snapshot(&after))).await?;
        let fresh = store::get_catalogue_item(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok(fresh)
    }

    /// The items the actor may see: staff all of them, a contact the active items of services
    /// their organisation's SLAs include (as in the public catalogue view).
    pub async fn list_catalogue_items(&self, actor: &Principal) -> Result<Vec<CatalogueItemRecord>> {
        let mut c = self.read().await?;
        let org = if actor.is_staff() { None } else { Some(actor.organization_id.clone().unwrap_or_default()) };
        Ok(store::list_catalogue_items(&mut c, org.as_deref()).await?)
    }

    pub async fn get_catalogue_item(&self, actor: &Principal, id: &str) -> Result<CatalogueItemRecord> {
        let mut c = self.read().await?;
        let item = store::get_catalogue_item(&mut c, id.trim()).await?.ok_or(AppError::NotFound)?;
        if !actor.is_staff() && !catalogue_item_open_to(&mut c, actor, &item.id).await? {
            return Err(AppError::NotFound);
        }
        Ok(item)
    }

    /// Opens a service request (REQ-…) for a catalogue item with the answers to its form, all
    /// validated, in one transaction; the answers are kept with the ticket.
    pub async fn request_service(&self, actor: &Principal, input: ServiceRequestInput) -> Result<TicketRecord> {
        let mut w = self.write(actor).await?;
        let item = store::get_catalogue_item(&mut w.tx, input.catalogue_item_id.trim()).await?;
        let item = match item {
            Some(i) if catalogue_item_open_to(&mut w.tx, actor, &i.id).await? => i,
            _ => return Err(AppError::field("catalogue_item_id", "not_found", "no such catalogue item")),
        };
        let answers = validate_answers(&form_of(&item)?, &input.answers)?;
        let title = blank(&input.title).map(str::to_string).unwrap_or_else(|| item.name.clone());
        let ticket = NewTicket {
            kind: Some(TicketKind::ServiceRequest.as_str().into()),
            project_id: input.project_id.clone(),
            reporter_id: input.reporter_id.clone(),
            title,
            description: input.description.clone(),
            service_id: Some(item.service_id.clone()),
            catalogue_item_id: Some(item.id.clone()),
            ..Default::default()
        };
        let t = self.create_ticket_in(&mut w, actor, ticket, None).await?;
        let json = serde_json::to_string(&answers).map_err(|e| AppError::Internal(e.to_string()))?;
        store::insert_request_answers(&mut w.tx, &t.id, &item.id, &json, w.now).await?;
        let a = serde_json::json!({ "catalogue_item_id": item.id, "answers": answers });
        w.record("ticket_request", &t.id, AuditAction::Create, None, Some(&a)).await?;
        w.commit().await?;
        Ok(t)
    }

    /// The answers given when a service request was opened.
    pub async fn request_answers(&self, actor: &Principal, ticket: &str) -> Result<Option<serde_json::Value>> {
        let mut c = self.read().await?;
        let t = load_visible(&mut c, actor, ticket).await?;
        match store::request_answers(&mut c, &t.id).await? {
            Some(s) => Ok(Some(serde_json::from_str(&s).map_err(|e| AppError::Internal(e.to_string()))?)),
            None => Ok(None),
        }
    }
}

// ---- bulk changes ----

/// At most this many tickets in one bulk change.
pub const BULK_MAX: usize = 500;

impl App {
    /// Applies one lifecycle step (assign, start, resolve, …) to several tickets, each through
    /// the normal use case, all or nothing: when any ticket refuses, none changes and the error
    /// names every refusing ticket (as the `field`) with its own code and message.
    pub async fn bulk_transition(
        &self,
        actor: &Principal,
        ids: &[String],
        input: crate::incidents::TransitionInput,
    ) -> Result<Vec<TicketRecord>> {
        if ids.is_empty() || ids.len() > BULK_MAX {
            return Err(AppError::field("ids", "out_of_range", format!("choose 1 to {BULK_MAX} tickets")));
        }
        let mut w = self.write(actor).await?;
        let mut done = Vec::new();
        let mut refused = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for id in ids {
            if !seen.insert(id.trim().to_string()) {
                continue;
            }
            match self.transition_in(&mut w, actor, id, &input, None).await {
                Ok(t) => done.push(t),
                Err(AppError::Validation(list)) => {
                    for fe in list {
                        refused.push(keel_domain::error::FieldError::new(id.clone(), fe.code, format!("{}: {}", fe.field, fe.message)));
                    }
                }
                Err(AppError::Internal(e)) => return Err(AppError::Internal(e)),
                Err(e) => refused.push(keel_domain::error::FieldError::new(id.clone(), e.code(), e.to_string())),
            }
        }
        if !refused.is_empty() {
            return Err(AppError::Validation(refused));
        }
        w.commit().await?;
        Ok(done)
    }
}

/// A ticket of a bulk change that refused its step: what it is called and why.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkRefusal {
    pub ticket_id: String,
    /// The ticket's number (INC-000042) when the actor may see the ticket.
    pub number: Option<String>,
    /// The refused field of the step (`pending_reason`, …) or `ticket`.
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

/// What a bulk change did ticket by ticket.
#[derive(Debug, Clone, Default)]
pub struct BulkOutcome {
    pub done: Vec<TicketRecord>,
    pub refused: Vec<BulkRefusal>,
}

impl App {
    /// Applies one lifecycle step to several tickets, each in its own transaction through the
    /// same use case as a single ticket: a ticket that refuses (a guard, a missing reason, a
    /// ticket changed meanwhile) keeps nothing of the step and is reported, the others change.
    pub async fn bulk_transition_each(
        &self,
        actor: &Principal,
        ids: &[String],
        input: crate::incidents::TransitionInput,
    ) -> Result<BulkOutcome> {
        if !actor.is_staff() || actor.is_read_only() {
            return Err(AppError::Forbidden);
        }
        if ids.is_empty() || ids.len() > BULK_MAX {
            return Err(AppError::field("ids", "out_of_range", format!("choose 1 to {BULK_MAX} tickets")));
        }
        let mut out = BulkOutcome::default();
        let mut seen = std::collections::HashSet::new();
        for id in ids.iter().map(|id| id.trim()) {
            if !seen.insert(id.to_string()) {
                continue;
            }
            let mut w = self.write(actor).await?;
            let step = match self.transition_in(&mut w, actor, id, &input, None).await {
                Ok(t) => w.commit().await.map(|()| t),
                Err(e) => Err(e),
            };
            let errors = match step {
                Ok(t) => {
                    out.done.push(t);
                    continue;
                }
                Err(AppError::Validation(list)) => list.into_iter().map(|fe| (fe.field, fe.code, fe.message)).collect(),
                // the tickets before this one are committed already: report, do not abort
                Err(e @ AppError::Internal(_)) => {
                    tracing::error!(ticket = %id, error = %e, "bulk change not stored");
                    vec![("ticket".to_string(), e.code(), "the change could not be stored; try again".to_string())]
                }
                Err(e) => vec![("ticket".to_string(), e.code(), e.to_string())],
            };
            let number = {
                let mut c = self.read().await?;
                load_visible(&mut c, actor, id).await.ok().map(|t| t.number)
            };
            for (field, code, message) in errors {
                out.refused.push(BulkRefusal { ticket_id: id.to_string(), number: number.clone(), field, code, message });
            }
        }
        Ok(out)
    }
}
