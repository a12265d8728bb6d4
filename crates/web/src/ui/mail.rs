//! Service desk (REQUIREMENTS §4), email channel pages: the mailboxes of a service project
//! (address, unknown-sender policy, IMAP server; edited and deactivated), the log of mail
//! received for it, the messages held for review (released or discarded) and the From
//! address of its notification mail.

use super::desk::human_size;
use super::{Ctx, Field, FormPage, ListQuery, OrPage, Row, UiResult, attach_errors, list_page, render, render_status, see_other};
use crate::AppState;
use crate::auth::{CsrfForm, UiUser};
use crate::error::status_of;
use crate::i18n::Tr;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use keel_app::mail_in::{IMAP_TLS_MODES, MailboxInput, UNKNOWN_SENDER_POLICIES};

#[derive(serde::Deserialize, Default)]
pub struct MailboxForm {
    #[serde(default)]
    address: String,
    #[serde(default)]
    unknown_sender: String,
    #[serde(default)]
    imap_host: String,
    #[serde(default)]
    imap_port: String,
    #[serde(default)]
    imap_tls: String,
    #[serde(default)]
    imap_user: String,
    #[serde(default)]
    imap_secret: String,
    #[serde(default)]
    imap_folder: String,
    #[serde(default)]
    imap_done_folder: String,
    #[serde(default)]
    imap_ca_pem: String,
    #[serde(default)]
    team_id: String,
    /// Only on the edit form (`true`/`false`).
    #[serde(default)]
    active: Option<String>,
}

impl MailboxForm {
    fn of(m: &keel_store::mail::MailboxRecord) -> MailboxForm {
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        MailboxForm {
            address: m.address.clone(),
            unknown_sender: m.unknown_sender.clone(),
            imap_host: o(&m.imap_host),
            imap_port: m.imap_port.map(|p| p.to_string()).unwrap_or_default(),
            imap_tls: o(&m.imap_tls),
            imap_user: o(&m.imap_user),
            imap_secret: String::new(),
            imap_folder: o(&m.imap_folder),
            imap_done_folder: o(&m.imap_done_folder),
            imap_ca_pem: o(&m.imap_ca_pem),
            team_id: o(&m.team_id),
            active: Some(m.active.to_string()),
        }
    }

    fn input(&self) -> MailboxInput {
        MailboxInput {
            address: self.address.clone(),
            unknown_sender: opt(&self.unknown_sender),
            imap_host: opt(&self.imap_host),
            imap_port: self.imap_port.trim().parse::<i64>().ok(),
            imap_tls: opt(&self.imap_tls),
            imap_user: opt(&self.imap_user),
            imap_secret: opt(&self.imap_secret),
            imap_folder: opt(&self.imap_folder),
            imap_done_folder: opt(&self.imap_done_folder),
            imap_ca_pem: opt(&self.imap_ca_pem),
            team_id: opt(&self.team_id),
        }
    }
}

fn opt(s: &str) -> Option<String> {
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

/// The form's fields; `teams` are the teams working on the project, as (id, name).
fn fields(tr: &Tr, f: &MailboxForm, teams: &[(String, String)]) -> Vec<Field> {
    let policy = if f.unknown_sender.is_empty() { "hold".to_string() } else { f.unknown_sender.clone() };
    let tls = if f.imap_tls.is_empty() { "tls".to_string() } else { f.imap_tls.clone() };
    let mut v = vec![
        Field::new(tr, "address", "email", f.address.clone()).required(),
        Field::new(tr, "unknown_sender", "select", "").required().options(
            UNKNOWN_SENDER_POLICIES.iter().map(|p| (p.to_string(), tr.t(&format!("mail-policy-{}", p.replace('_', "-"))))),
            &[policy],
        ),
        Field::new(tr, "team_id", "select", "")
            .options(
                std::iter::once((String::new(), tr.t("mail-team-none"))).chain(teams.iter().map(|(id, name)| (id.clone(), name.clone()))),
                std::slice::from_ref(&f.team_id),
            )
            .help(tr.t("mail-team-help")),
        Field::new(tr, "imap_host", "text", f.imap_host.clone()).help(tr.t("mail-imap-help")),
        Field::new(tr, "imap_port", "number", f.imap_port.clone()),
        Field::new(tr, "imap_tls", "select", "")
            .options(IMAP_TLS_MODES.iter().map(|m| (m.to_string(), tr.t(&format!("mail-tls-{m}")))), &[tls]),
        Field::new(tr, "imap_user", "text", f.imap_user.clone()).autocomplete("off"),
        Field::new(tr, "imap_secret", "password", "").autocomplete("new-password"),
        Field::new(tr, "imap_folder", "text", f.imap_folder.clone()),
        Field::new(tr, "imap_done_folder", "text", f.imap_done_folder.clone()),
        Field::new(tr, "imap_ca_pem", "textarea", f.imap_ca_pem.clone()).help(tr.t("mail-ca-help")),
    ];
    if let Some(active) = &f.active {
        v.push(Field::new(tr, "active", "checkbox", active.clone()));
    }
    v
}

/// The mailboxes of a project.
pub async fn mailboxes(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> UiResult {
    let list = state.app.list_mailboxes(&who.principal, &id).await.or_page(&tr)?;
    let teams = state.app.mailbox_teams(&who.principal, &id, None).await.or_page(&tr)?;
    let team_name = |t: &Option<String>| match t {
        None => "—".to_string(),
        // a team that no longer works on the project: its tickets stay unassigned
        Some(t) => teams.iter().find(|(id, _)| id == t).map_or_else(|| format!("{t} ({})", tr.t("mail-team-unused")), |(_, n)| n.clone()),
    };
    let rows = list
        .into_iter()
        .map(|m| Row {
            href: format!("/mailboxes/{}", m.id),
            cells: vec![
                if m.active { m.address } else { format!("{} ({})", m.address, tr.t("mail-inactive")) },
                tr.t(&format!("mail-policy-{}", m.unknown_sender.replace('_', "-"))),
                m.imap_host.map(|h| format!("{h}:{}", m.imap_port.unwrap_or(0))).unwrap_or_else(|| "—".into()),
                team_name(&m.team_id),
            ],
        })
        .collect();
    let base = format!("/projects/{id}/mailboxes");
    let new = who.principal.is_staff().then(|| (format!("{base}/new"), tr.t("mail-new-mailbox")));
    let ctx = Ctx::new(&tr, Some(&who), "/projects", q.flash.as_deref());
    Ok(list_page(
        ctx,
        tr.t("mail-mailboxes"),
        &base,
        &q,
        new,
        (vec![tr.t("field-address"), tr.t("field-unknown-sender"), tr.t("field-imap-host"), tr.t("field-team-id")], rows),
        None,
    ))
}

pub async fn mailbox_new(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Path(id): Path<String>) -> UiResult {
    let teams = state.app.mailbox_teams(&who.principal, &id, None).await.or_page(&tr)?;
    let ctx = Ctx::new(&tr, Some(&who), "/projects", None);
    let back = format!("/projects/{id}/mailboxes");
    Ok(render(&FormPage::new(ctx, tr.t("mail-new-mailbox"), back.clone(), fields(&tr, &MailboxForm::default(), &teams), &back)))
}

pub async fn mailbox_create(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<MailboxForm>,
) -> Response {
    let back = format!("/projects/{id}/mailboxes");
    let input = f.input();
    match state.app.create_mailbox(&who.principal, &id, input).await {
        Ok(_) => see_other(&back, "created"),
        Err(e) => {
            let teams = state.app.mailbox_teams(&who.principal, &id, Some(&f.team_id)).await.unwrap_or_default();
            refused(&tr, &who, tr.t("mail-new-mailbox"), (&back, &back), fields(&tr, &f, &teams), &e)
        }
    }
}

/// The mail received for a project and what became of each message.
pub async fn received(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> UiResult {
    let list = state.app.list_received_mail(&who.principal, &id).await.or_page(&tr)?;
    let rows = list
        .into_iter()
        .map(|m| Row {
            href: m.ticket_id.as_ref().map(|t| format!("/incidents/{t}")).unwrap_or_else(|| format!("/projects/{id}/mail")),
            cells: vec![
                tr.datetime(&m.received_at),
                m.sender,
                m.subject,
                tr.t(&format!("mail-outcome-{}", m.outcome)),
                m.reason.unwrap_or_default(),
            ],
        })
        .collect();
    let ctx = Ctx::new(&tr, Some(&who), "/projects", q.flash.as_deref());
    let columns = vec![tr.t("mail-received-at"), tr.t("mail-sender"), tr.t("mail-subject"), tr.t("mail-outcome"), tr.t("mail-reason")];
    Ok(list_page(ctx, tr.t("mail-received"), &format!("/projects/{id}/mail"), &q, None, (columns, rows), None))
}

/// A form page answered with the typed values and the errors of a refused save.
fn refused(
    tr: &Tr,
    who: &crate::auth::Identity,
    title: String,
    (action, back): (&str, &str),
    mut fs: Vec<Field>,
    e: &keel_app::AppError,
) -> Response {
    let errors = attach_errors(tr, &mut fs, e);
    let ctx = Ctx::new(tr, Some(who), "/projects", None);
    let mut page = FormPage::new(ctx, title, action.to_string(), fs, back);
    page.errors = errors;
    render_status(status_of(e), &page)
}

/// A mailbox's settings, edited by the project's managers.
pub async fn mailbox_show(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Path(id): Path<String>) -> UiResult {
    let m = state.app.get_mailbox(&who.principal, &id).await.or_page(&tr)?;
    let teams = state.app.mailbox_teams(&who.principal, &m.project_id, m.team_id.as_deref()).await.or_page(&tr)?;
    let back = format!("/projects/{}/mailboxes", m.project_id);
    let ctx = Ctx::new(&tr, Some(&who), "/projects", None);
    let action = format!("/mailboxes/{id}");
    let mut page = FormPage::new(ctx, m.address.clone(), action, fields(&tr, &MailboxForm::of(&m), &teams), &back);
    page.version = Some(m.version);
    Ok(render(&page))
}

pub async fn mailbox_update(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<MailboxForm>,
) -> Response {
    let active = f.active.as_deref() == Some("true");
    match state.app.update_mailbox(&who.principal, &id, f.input(), active).await {
        Ok(m) => see_other(&format!("/projects/{}/mailboxes", m.project_id), "saved"),
        Err(e) => {
            let teams = match state.app.get_mailbox(&who.principal, &id).await {
                Ok(m) => state.app.mailbox_teams(&who.principal, &m.project_id, Some(&f.team_id)).await.unwrap_or_default(),
                Err(_) => vec![],
            };
            refused(&tr, &who, f.address.clone(), (&format!("/mailboxes/{id}"), "/projects"), fields(&tr, &f, &teams), &e)
        }
    }
}

/// The messages of a project held for review.
pub async fn held(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> UiResult {
    let list = state.app.list_held_mail(&who.principal, &id).await.or_page(&tr)?;
    let rows = list
        .into_iter()
        .map(|m| Row {
            href: format!("/held-mail/{}", m.id),
            cells: vec![tr.datetime(&m.received_at), m.sender, m.subject, m.reason.unwrap_or_default()],
        })
        .collect();
    let ctx = Ctx::new(&tr, Some(&who), "/projects", q.flash.as_deref());
    let columns = vec![tr.t("mail-received-at"), tr.t("mail-sender"), tr.t("mail-subject"), tr.t("mail-reason")];
    Ok(list_page(ctx, tr.t("mail-held"), &format!("/projects/{id}/held-mail"), &q, None, (columns, rows), None))
}

#[derive(serde::Deserialize, Default)]
pub struct HeldForm {
    #[serde(default)]
    decision: String,
}

fn held_fields(tr: &Tr) -> Vec<Field> {
    vec![
        Field::new(tr, "decision", "select", "")
            .required()
            .options(["release", "discard"].iter().map(|d| (d.to_string(), tr.t(&format!("mail-decision-{d}")))), &["release".into()]),
    ]
}

/// One held message as its reviewer sees it: sender, reason, the message's text (escaped; the
/// text rendering of HTML mail, so nothing of it runs or loads) and the names of its files.
#[derive(Template)]
#[template(path = "mail_held.html")]
pub struct HeldPage {
    pub ctx: Ctx,
    pub title: String,
    pub action: String,
    pub back_href: String,
    pub facts: Vec<(String, String)>,
    /// `None` when the raw message was not kept.
    pub body: Option<String>,
    /// (name, content type and size)
    pub files: Vec<(String, String)>,
    pub fields: Vec<Field>,
    pub errors: Vec<String>,
    pub editable: bool,
}

/// The held-message page, with the errors of a refused decision when there are any.
async fn held_page(state: &AppState, tr: &Tr, who: &crate::auth::Identity, id: &str, refusal: Option<&keel_app::AppError>) -> UiResult {
    let (m, content) = state.app.received_mail_content(&who.principal, id).await.or_page(tr)?;
    let mut fields = held_fields(tr);
    let errors = refusal.map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let mut facts = vec![
        (tr.t("mail-sender"), m.sender.clone()),
        (tr.t("mail-received-at"), tr.datetime(&m.received_at)),
        (tr.t("mail-outcome"), tr.t(&format!("mail-outcome-{}", m.outcome))),
    ];
    if let Some(r) = m.reason.clone().filter(|r| !r.is_empty()) {
        facts.push((tr.t("mail-reason"), r));
    }
    let files = content
        .as_ref()
        .map(|c| {
            c.files.iter().map(|f| (f.file_name.clone(), format!("{} · {}", f.content_type, human_size(f.bytes.len() as i64)))).collect()
        })
        .unwrap_or_default();
    let page = HeldPage {
        ctx: Ctx::new(tr, Some(who), "/projects", None),
        title: m.subject.clone(),
        action: format!("/held-mail/{id}"),
        back_href: format!("/projects/{}/held-mail", m.project_id),
        facts,
        body: content.map(|c| c.text),
        files,
        fields,
        errors,
        editable: m.outcome == "held",
    };
    Ok(match refusal {
        Some(e) => render_status(status_of(e), &page),
        None => render(&page),
    })
}

/// One held message: release it (the sender becomes a contact, the message a ticket) or
/// discard it.
pub async fn held_show(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Path(id): Path<String>) -> UiResult {
    held_page(&state, &tr, &who, &id, None).await
}

pub async fn held_decide(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<HeldForm>,
) -> Response {
    let done = match f.decision.as_str() {
        "discard" => state.app.discard_held_mail(&who.principal, &id).await,
        _ => state.app.release_held_mail(&who.principal, &id).await,
    };
    match done {
        Ok(m) => match m.ticket_id {
            Some(t) => see_other(&format!("/incidents/{t}"), "released"),
            None => see_other(&format!("/projects/{}/held-mail", m.project_id), "discarded"),
        },
        Err(e) => match held_page(&state, &tr, &who, &id, Some(&e)).await {
            Ok(page) => page,
            Err(_) => super::error_page(&tr, status_of(&e), "err-not-found"),
        },
    }
}

#[derive(serde::Deserialize, Default)]
pub struct SenderForm {
    #[serde(default)]
    from: String,
}

/// The From address of a project's notification mail (administrators).
pub async fn sender_show(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Path(id): Path<String>) -> UiResult {
    let from = state.app.project_sender(&who.principal, &id).await.or_page(&tr)?;
    let ctx = Ctx::new(&tr, Some(&who), "/projects", None);
    let fs = vec![Field::new(&tr, "from", "text", from.unwrap_or_default()).help(tr.t("mail-from-help"))];
    Ok(render(&FormPage::new(ctx, tr.t("mail-sender-title"), format!("/projects/{id}/sender"), fs, &format!("/projects/{id}"))))
}

pub async fn sender_update(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<SenderForm>,
) -> Response {
    match state.app.set_project_sender(&who.principal, &id, Some(&f.from)).await {
        Ok(_) => see_other(&format!("/projects/{id}/sender"), "saved"),
        Err(e) => {
            let fs = vec![Field::new(&tr, "from", "text", f.from.clone()).help(tr.t("mail-from-help"))];
            refused(&tr, &who, tr.t("mail-sender-title"), (&format!("/projects/{id}/sender"), &format!("/projects/{id}")), fs, &e)
        }
    }
}
