//! Service desk ticket page (REQUIREMENTS §4): the forms for what was API-only — watchers,
//! parent ticket, merging a duplicate, links to problems/changes/CIs and the affected service.

use super::incidents::{Form, after_post};
use super::{Opt, UiResult};
use crate::AppState;
use crate::auth::{CsrfForm, UiUser};
use crate::i18n::Tr;
use axum::extract::{Path, State};
use keel_app::Principal;
use keel_app::desk::LINK_KINDS;
use keel_app::reference::Choices;
use keel_store::desk::WatcherRecord;
use keel_store::incidents::{LinkRecord, TicketRecord};

pub struct WatcherView {
    pub user_id: String,
    pub name: String,
    /// Whether the reader may take this watcher off (staff anyone, a contact themselves).
    pub removable: bool,
}

pub struct LinkView {
    pub id: String,
    pub label: String,
}

/// The panel's data; the forms post to `/incidents/{id}/…` and name their fields as the API does.
pub struct DeskPanel {
    pub watchers: Vec<WatcherView>,
    /// Whether the reader already follows the ticket.
    pub following: bool,
    pub staff_options: Vec<Opt>,
    pub parent: String,
    pub merge_into: String,
    pub link_kinds: Vec<Opt>,
    pub link_ref: String,
    pub links: Vec<LinkView>,
    pub service_options: Vec<Opt>,
    /// The ticket is closed: only watchers can change.
    pub closed: bool,
    pub read_only: bool,
}

fn opts(list: Vec<(String, String)>, selected: &str) -> Vec<Opt> {
    list.into_iter().map(|(value, label)| Opt { selected: value == selected, value, label }).collect()
}

/// The panel for the ticket page, from the ticket's watchers and links the page read; `failed`
/// holds the values of the form that failed, if any.
pub fn panel(
    tr: &Tr,
    p: &Principal,
    t: &TicketRecord,
    (watchers, links): (Vec<WatcherRecord>, Vec<LinkRecord>),
    choices: &Choices,
    failed: Option<(&str, &Form)>,
) -> DeskPanel {
    let typed = |form: &str, key: &str| failed.filter(|(f, _)| *f == form).and_then(|(_, v)| v.get(key).cloned());
    let following = watchers.iter().any(|w| w.user_id == p.user_id);
    let watchers = watchers
        .into_iter()
        .map(|w| WatcherView { removable: p.is_staff() || w.user_id == p.user_id, user_id: w.user_id, name: w.display_name })
        .collect();
    let (links, service_options) = if p.is_staff() {
        let links = links
            .into_iter()
            .map(|l| LinkView { id: l.id, label: format!("{} {}", tr.t(&format!("incident-link-{}", l.target_type)), l.target_id) })
            .collect();
        let service = typed("service", "service_id").unwrap_or_else(|| t.service_id.clone().unwrap_or_default());
        (links, opts(choices.services().unwrap_or_default().to_vec(), &service))
    } else {
        (vec![], vec![])
    };
    let kind = typed("link", "target_type").unwrap_or_default();
    DeskPanel {
        watchers,
        following,
        staff_options: opts(choices.staff().to_vec(), &typed("watcher", "user_id").unwrap_or_default()),
        parent: typed("parent", "parent").unwrap_or_else(|| t.parent_id.clone().unwrap_or_default()),
        merge_into: typed("merge", "into").unwrap_or_default(),
        link_kinds: opts(LINK_KINDS.iter().map(|k| (k.to_string(), tr.t(&format!("incident-link-{k}")))).collect(), &kind),
        link_ref: typed("link", "target_id").unwrap_or_default(),
        links,
        service_options,
        closed: t.status == "closed",
        read_only: p.is_read_only(),
    }
}

fn field(f: &Form, k: &str) -> String {
    f.get(k).map(|v| v.trim().to_string()).unwrap_or_default()
}

pub async fn add_watcher(
    State(s): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let r = s.app.add_watcher(&who.principal, &id, &field(&f, "user_id")).await;
    after_post(&s, &tr, &who, &id, "watcher", f, r).await
}

pub async fn remove_watcher(
    State(s): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let user = match field(&f, "user_id") {
        u if u.is_empty() => who.principal.user_id.clone(),
        u => u,
    };
    let r = s.app.remove_watcher(&who.principal, &id, &user).await;
    after_post(&s, &tr, &who, &id, "watcher", f, r).await
}

pub async fn set_parent(
    State(s): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let parent = Some(field(&f, "parent")).filter(|p| !p.is_empty());
    let r = s.app.set_parent(&who.principal, &id, parent.as_deref()).await.map(|_| ());
    after_post(&s, &tr, &who, &id, "parent", f, r).await
}

pub async fn merge(
    State(s): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let r = s.app.merge_ticket(&who.principal, &id, &field(&f, "into")).await.map(|_| ());
    after_post(&s, &tr, &who, &id, "merge", f, r).await
}

pub async fn link(State(s): State<AppState>, tr: Tr, UiUser(who): UiUser, Path(id): Path<String>, CsrfForm(f): CsrfForm<Form>) -> UiResult {
    let r = s.app.link_record(&who.principal, &id, &field(&f, "target_type"), &field(&f, "target_id")).await.map(|_| ());
    after_post(&s, &tr, &who, &id, "link", f, r).await
}

pub async fn unlink(
    State(s): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path((id, link_id)): Path<(String, String)>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let r = s.app.unlink_record(&who.principal, &id, &link_id).await;
    after_post(&s, &tr, &who, &id, "link", f, r).await
}

pub async fn set_service(
    State(s): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let service = Some(field(&f, "service_id")).filter(|p| !p.is_empty());
    let r = s.app.set_affected_service(&who.principal, &id, service.as_deref()).await.map(|_| ());
    after_post(&s, &tr, &who, &id, "service", f, r).await
}
