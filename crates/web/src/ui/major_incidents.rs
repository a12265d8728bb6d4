//! The communication log panel of a major incident on the ticket page (incident management,
//! REQUIREMENTS §4): what was told to whom and when, the next update promised, and the form the
//! major incident team logs or sends a communication with.

use super::incidents::{Form, SideForm, after_post, label};
use super::{Field, attach_errors};
use crate::AppState;
use crate::auth::{CsrfForm, UiUser};
use crate::i18n::Tr;
use axum::extract::{Path, State};
use keel_app::major_incidents::{CommunicationLog, CommunicationPost};
use keel_app::{AppError, Principal};
use keel_store::incidents::TicketRecord;

const AUDIENCES: [&str; 5] = ["customers", "service_desk", "management", "stakeholders", "suppliers"];
const MEDIA: [&str; 6] = ["email", "portal", "phone", "chat", "sms", "meeting"];
const NEXT_UPDATE_MINUTES: [i64; 6] = [15, 30, 60, 120, 240, 480];

pub struct CommunicationView {
    pub audience: String,
    pub medium: String,
    pub summary: String,
    pub author: String,
    pub when: String,
    pub next_update: Option<String>,
}

pub struct CommunicationPanel {
    pub entries: Vec<CommunicationView>,
    pub overdue: bool,
    pub form: Option<SideForm>,
}

/// The panel, when the ticket is or was a major incident; `failed` is a refused post to show in place.
pub fn panel(
    tr: &Tr,
    p: &Principal,
    t: &TicketRecord,
    log: CommunicationLog,
    typed: &Form,
    failed: Option<&AppError>,
    errors: &mut Vec<String>,
) -> Option<CommunicationPanel> {
    if !t.major && log.entries.is_empty() {
        return None;
    }
    let entries = log
        .entries
        .into_iter()
        .map(|e| CommunicationView {
            audience: label(tr, "major-audience", &e.audience),
            medium: label(tr, "major-medium", &e.medium),
            summary: e.summary,
            author: e.author_name.unwrap_or(e.author_id),
            when: tr.datetime(&e.sent_at),
            next_update: e.next_update_due.map(|d| tr.datetime(&d)),
        })
        .collect();
    let form = (t.major && p.is_staff() && !p.is_read_only() && t.status != "closed").then(|| {
        let val = |k: &str| typed.get(k).cloned().unwrap_or_default();
        let choices = |prefix: &str, values: &[&str]| values.iter().map(|v| (v.to_string(), label(tr, prefix, v))).collect::<Vec<_>>();
        let minutes = NEXT_UPDATE_MINUTES.iter().map(|m| (m.to_string(), tr.t1("major-next-update-in", "minutes", m)));
        let mut fields = vec![
            Field::new(tr, "audience", "select", "").required().options(choices("major-audience", &AUDIENCES), &[val("audience")]),
            Field::new(tr, "medium", "select", "").required().options(choices("major-medium", &MEDIA), &[val("medium")]),
            Field::new(tr, "summary", "textarea", val("summary")).required().help(tr.t("major-summary-help")),
            Field::new(tr, "next_update_minutes", "select", "").options(minutes, &[val("next_update_minutes")]),
        ];
        if let Some(e) = failed {
            errors.extend(attach_errors(tr, &mut fields, e));
        }
        SideForm {
            action: format!("/incidents/{}/communications", t.id),
            title: tr.t("major-communication-add"),
            submit: tr.t("major-action-record"),
            fields,
        }
    });
    Some(CommunicationPanel { entries, overdue: log.next_update_overdue, form })
}

pub async fn record(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> crate::ui::UiResult {
    let text = |k: &str| f.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let r = match text("next_update_minutes") {
        m if m.is_empty() => Ok(None),
        m => m
            .parse::<i64>()
            .ok()
            .filter(|m| NEXT_UPDATE_MINUTES.contains(m))
            .map(|m| Some(state.app.now() + m * 60_000))
            .ok_or_else(|| AppError::field("next_update_minutes", "invalid", "choose one of the offered intervals")),
    };
    let r = match r {
        Ok(next_update_due) => {
            let post = CommunicationPost {
                audience: text("audience"),
                medium: text("medium"),
                summary: text("summary"),
                sent_at: None,
                next_update_due,
            };
            state.app.record_major_communication(&who.principal, &id, post).await.map(|_| ())
        }
        Err(e) => Err(e),
    };
    after_post(&state, &tr, &who, &id, "communication", f, r).await
}
