//! Service desk pages (REQUIREMENTS §4): files attached from the ticket page (agents and the
//! customer portal) and their download link, with the same authorisation as the API.

use super::{OrPage, UiResult};
use crate::AppState;
use crate::auth::UiUser;
use crate::i18n::Tr;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use keel_app::AppError;

/// Uploads a file (optionally with a reply) from the ticket page; the form carries `_csrf`.
pub async fn upload(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Path(id): Path<String>, mp: Multipart) -> UiResult {
    let expected = who.csrf().to_string();
    let mut typed = std::collections::HashMap::new();
    let r = crate::api::desk::upload(&state.app, &who.principal, &id, mp, |fields| {
        typed = fields.clone();
        let sent = fields.get("_csrf").map(String::as_str).unwrap_or("");
        if expected.is_empty() || !crate::constant_time_eq(sent, &expected) {
            return Err(AppError::Forbidden);
        }
        Ok(())
    })
    .await;
    match r {
        Err(AppError::Forbidden) => Ok(super::error_page(&tr, StatusCode::FORBIDDEN, "error-csrf")),
        r => super::incidents::after_post(&state, &tr, &who, &id, "attachment", typed, r.map(|_| ())).await,
    }
}

/// Downloads a file the reader may see (404 otherwise, as for the ticket itself).
pub async fn download(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Path(id): Path<String>) -> UiResult {
    crate::api::desk::serve(&state.app, &who.principal, &id).await.or_page(&tr)
}

pub struct AttachmentView {
    pub href: String,
    pub file_name: String,
    pub size: String,
    pub who: String,
    pub when: String,
    pub internal: bool,
}

fn human_size(bytes: i64) -> String {
    match bytes {
        b if b >= 1024 * 1024 => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
        b if b >= 1024 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// The files of a ticket and the form to add one (with an optional reply).
pub async fn attachments_panel(
    state: &AppState,
    tr: &Tr,
    p: &keel_app::Principal,
    t: &keel_store::incidents::TicketRecord,
    typed: &std::collections::HashMap<String, String>,
    failed: &Option<&AppError>,
    errors: &mut Vec<String>,
) -> Result<(Vec<AttachmentView>, Option<super::incidents::SideForm>), AppError> {
    let views = state
        .app
        .list_attachments(p, &t.id)
        .await?
        .into_iter()
        .map(|a| AttachmentView {
            href: format!("/attachments/{}", a.id),
            size: human_size(a.size_bytes),
            who: a.uploader_name.clone().unwrap_or_else(|| a.uploaded_by.clone()),
            when: tr.datetime(&a.created_at),
            internal: a.visibility == "internal",
            file_name: a.file_name,
        })
        .collect();
    let form = (t.status != "closed" && !p.is_read_only()).then(|| {
        let val = |k: &str| typed.get(k).cloned().unwrap_or_default();
        let mut fields = vec![
            super::Field::new(tr, "file", "file", "").required().help(tr.t1(
                "incident-attachment-limit",
                "size",
                human_size(i64::try_from(state.app.files.max_bytes).unwrap_or(i64::MAX)),
            )),
            super::Field::new(tr, "body", "textarea", val("body")),
        ];
        if p.is_staff() {
            let vis = typed.get("visibility").cloned().unwrap_or_else(|| "public".into());
            fields.push(
                super::Field::new(tr, "visibility", "select", "").required().options(
                    [("public", "incident-visibility-public"), ("internal", "incident-visibility-internal")]
                        .iter()
                        .map(|(v, k)| (v.to_string(), tr.t(k))),
                    &[vis],
                ),
            );
        }
        if let Some(e) = failed {
            errors.extend(super::attach_errors(tr, &mut fields, e));
        }
        super::incidents::SideForm {
            action: format!("/incidents/{}/attachments", t.id),
            title: tr.t("incident-attachment-add"),
            submit: tr.t("incident-action-attach"),
            fields,
        }
    });
    Ok((views, form))
}
