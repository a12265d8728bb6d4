//! Service desk (REQUIREMENTS §4), email channel pages: the mailboxes of a service project
//! (address, unknown-sender policy, IMAP server) and the log of mail received for it.

use super::{Ctx, Field, FormPage, ListQuery, OrPage, Row, UiResult, attach_errors, list_page, render, render_status, see_other};
use crate::AppState;
use crate::auth::{CsrfForm, UiUser};
use crate::i18n::Tr;
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
}

fn opt(s: &str) -> Option<String> {
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

fn fields(tr: &Tr, f: &MailboxForm) -> Vec<Field> {
    let policy = if f.unknown_sender.is_empty() { "hold".to_string() } else { f.unknown_sender.clone() };
    let tls = if f.imap_tls.is_empty() { "tls".to_string() } else { f.imap_tls.clone() };
    vec![
        Field::new(tr, "address", "email", f.address.clone()).required(),
        Field::new(tr, "unknown_sender", "select", "").required().options(
            UNKNOWN_SENDER_POLICIES.iter().map(|p| (p.to_string(), tr.t(&format!("mail-policy-{}", p.replace('_', "-"))))),
            &[policy],
        ),
        Field::new(tr, "imap_host", "text", f.imap_host.clone()).help(tr.t("mail-imap-help")),
        Field::new(tr, "imap_port", "number", f.imap_port.clone()),
        Field::new(tr, "imap_tls", "select", "")
            .options(IMAP_TLS_MODES.iter().map(|m| (m.to_string(), tr.t(&format!("mail-tls-{m}")))), &[tls]),
        Field::new(tr, "imap_user", "text", f.imap_user.clone()).autocomplete("off"),
        Field::new(tr, "imap_secret", "password", "").autocomplete("new-password"),
        Field::new(tr, "imap_folder", "text", f.imap_folder.clone()),
        Field::new(tr, "imap_done_folder", "text", f.imap_done_folder.clone()),
        Field::new(tr, "imap_ca_pem", "textarea", f.imap_ca_pem.clone()).help(tr.t("mail-ca-help")),
    ]
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
    let rows = list
        .into_iter()
        .map(|m| Row {
            href: format!("/projects/{id}/mail"),
            cells: vec![
                m.address,
                tr.t(&format!("mail-policy-{}", m.unknown_sender.replace('_', "-"))),
                m.imap_host.map(|h| format!("{h}:{}", m.imap_port.unwrap_or(0))).unwrap_or_else(|| "—".into()),
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
        (vec![tr.t("field-address"), tr.t("field-unknown-sender"), tr.t("field-imap-host")], rows),
        None,
    ))
}

pub async fn mailbox_new(tr: Tr, UiUser(who): UiUser, Path(id): Path<String>) -> Response {
    let ctx = Ctx::new(&tr, Some(&who), "/projects", None);
    let back = format!("/projects/{id}/mailboxes");
    render(&FormPage::new(ctx, tr.t("mail-new-mailbox"), back.clone(), fields(&tr, &MailboxForm::default()), &back))
}

pub async fn mailbox_create(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<MailboxForm>,
) -> Response {
    let back = format!("/projects/{id}/mailboxes");
    let port = f.imap_port.trim().parse::<i64>().ok();
    let input = MailboxInput {
        address: f.address.clone(),
        unknown_sender: opt(&f.unknown_sender),
        imap_host: opt(&f.imap_host),
        imap_port: port,
        imap_tls: opt(&f.imap_tls),
        imap_user: opt(&f.imap_user),
        imap_secret: opt(&f.imap_secret),
        imap_folder: opt(&f.imap_folder),
        imap_done_folder: opt(&f.imap_done_folder),
        imap_ca_pem: opt(&f.imap_ca_pem),
    };
    match state.app.create_mailbox(&who.principal, &id, input).await {
        Ok(_) => see_other(&back, "created"),
        Err(e) => {
            let mut fs = fields(&tr, &f);
            let errors = attach_errors(&tr, &mut fs, &e);
            let ctx = Ctx::new(&tr, Some(&who), "/projects", None);
            let mut page = FormPage::new(ctx, tr.t("mail-new-mailbox"), back.clone(), fs, &back);
            page.errors = errors;
            render_status(crate::error::status_of(&e), &page)
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
