//! Release management pages (REQUIREMENTS §5, manual §5.1.4): the release list. Staff only.

use super::{Ctx, OrPage, Row, UiResult};
use crate::AppState;
use crate::api::releases::RELEASE_SORTS;
use crate::auth::UiUser;
use crate::i18n::Tr;
use axum::extract::{Query, State};
use keel_app::AppError;
use keel_store::page::{PageRequest, decode_cursor};
use keel_store::releases::ReleaseFilter;

#[derive(serde::Deserialize, Default)]
pub struct ReleaseListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    cursor: Option<String>,
    flash: Option<String>,
}

pub async fn list(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<ReleaseListQuery>) -> UiResult {
    if !who.principal.is_staff() {
        return Err(super::UiError(tr.clone(), AppError::NotFound));
    }
    let sort = RELEASE_SORTS[0];
    let page = PageRequest { sort, desc: true, after: q.cursor.as_deref().and_then(|c| decode_cursor(&sort, c)), limit: 50 };
    let f = ReleaseFilter {
        q: Some(q.q.clone()).filter(|s| !s.trim().is_empty()),
        statuses: Some(q.status.clone()).filter(|s| !s.is_empty()).into_iter().collect(),
        ..Default::default()
    };
    let list = state.app.list_releases(&who.principal, &f, &page).await.or_page(&tr)?;
    let columns = ["field-number", "field-title", "release-version", "field-status", "field-updated-at"].iter().map(|k| tr.t(k)).collect();
    let rows = list
        .items
        .iter()
        .map(|r| {
            let key = format!("release-status-{}", r.status.replace('_', "-"));
            Row {
                href: format!("/api/v1/releases/{}", r.id),
                cells: vec![
                    r.number.clone(),
                    r.title.clone(),
                    r.release_version.clone(),
                    if tr.has(&key) { tr.t(&key) } else { r.status.clone() },
                    tr.datetime(&r.updated_at),
                ],
            }
        })
        .collect();
    let ctx = Ctx::new(&tr, Some(&who), "/releases", q.flash.as_deref());
    let lq = super::ListQuery { q: q.q.clone(), cursor: None, flash: None };
    Ok(super::list_page(ctx, tr.t("release-list-title"), "/releases", &lq, None, (columns, rows), list.next_cursor))
}
