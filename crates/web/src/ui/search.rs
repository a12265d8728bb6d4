//! The search page and the type-ahead of the search box (every process): one box in the
//! header of the agent pages and the portal, results with snippets and facets.

use super::{Ctx, OrPage, UiResult, render};
use crate::AppState;
use crate::api::search::{href_of, utc_offset_minutes};
use crate::auth::{UiUser, urlencode};
use crate::i18n::Tr;
use askama::Template;
use axum::extract::{Query, State};
use keel_app::search::{SearchInput, SearchPage};

#[derive(serde::Deserialize, Default)]
pub struct SearchParams {
    #[serde(default)]
    q: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    cursor: Option<String>,
}

pub struct HitView {
    pub href: String,
    pub kind: String,
    pub number: String,
    pub title: String,
    /// The title with the matched words in `<b>`, everything else escaped.
    pub title_html: String,
    pub status: String,
    pub snippet: String,
}

pub struct FacetView {
    pub label: String,
    pub count: usize,
    pub href: String,
    pub active: bool,
}

#[derive(Template)]
#[template(path = "search/results.html")]
pub struct SearchResultsPage {
    pub ctx: Ctx,
    pub title: String,
    pub q: String,
    pub summary: String,
    pub ready: bool,
    pub hits: Vec<HitView>,
    pub types: Vec<FacetView>,
    pub statuses: Vec<FacetView>,
    pub next_href: Option<String>,
}

#[derive(Template)]
#[template(path = "search/suggest.html")]
pub struct Suggestions {
    pub tr: Tr,
    pub q: String,
    pub hits: Vec<HitView>,
}

fn kind_label(tr: &Tr, kind: &str) -> String {
    let key = format!("search-type-{kind}");
    if tr.has(&key) { tr.t(&key) } else { kind.to_string() }
}

fn status_label(tr: &Tr, kind: &str, status: &str) -> String {
    let s = status.replace('_', "-");
    let keys = match kind {
        "ci" => vec![format!("ci-status-{s}")],
        "incident" | "request" => vec![format!("incident-status-{s}")],
        "problem" | "known_error" => vec![format!("problem-status-{s}")],
        "change" => vec![format!("change-status-{s}")],
        "release" => vec![format!("release-status-{s}")],
        _ => ["incident", "ci", "problem", "change", "release"].iter().map(|k| format!("{k}-status-{s}")).collect(),
    };
    keys.into_iter().find(|k| tr.has(k)).map(|k| tr.t(&k)).unwrap_or_else(|| status.to_string())
}

fn views(tr: &Tr, r: &SearchPage) -> Vec<HitView> {
    r.hits
        .iter()
        .map(|h| HitView {
            href: href_of(&h.source, &h.id),
            kind: kind_label(tr, &h.kind),
            number: h.number.clone().unwrap_or_default(),
            title: h.title.clone(),
            title_html: h.title_html.clone(),
            status: status_label(tr, &h.kind, &h.status),
            snippet: h.snippet.clone(),
        })
        .collect()
}

async fn run(
    state: &AppState,
    tr: &Tr,
    who: &crate::auth::Identity,
    p: &SearchParams,
    limit: usize,
    typing: bool,
) -> Result<SearchPage, super::UiError> {
    let input = SearchInput {
        q: p.q.clone(),
        kind: p.kind.clone().filter(|k| !k.is_empty()),
        cursor: p.cursor.clone(),
        limit,
        utc_offset_minutes: utc_offset_minutes(tr.tz),
        typing,
    };
    state.app.search_records(&who.principal, &input).await.or_page(tr)
}

pub async fn page(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(p): Query<SearchParams>) -> UiResult {
    let r = run(&state, &tr, &who, &p, 20, false).await?;
    let q = urlencode(&p.q);
    let kind = p.kind.clone().unwrap_or_default();
    let mut types = vec![FacetView {
        label: tr.t("search-all-types"),
        count: if kind.is_empty() { r.total } else { 0 },
        href: format!("/search?q={q}"),
        active: kind.is_empty(),
    }];
    types.extend(r.by_kind.iter().map(|(k, n)| FacetView {
        label: kind_label(&tr, k),
        count: *n,
        href: format!("/search?q={q}&type={}", urlencode(k)),
        active: *k == kind,
    }));
    let statuses = r
        .by_status
        .iter()
        .map(|(s, n)| FacetView {
            label: status_label(&tr, &kind, s),
            count: *n,
            href: format!("/search?q={}&type={}", urlencode(&format!("{} status:{s}", p.q.trim())), urlencode(&kind)),
            active: false,
        })
        .collect();
    let next_href = r.next_cursor.as_ref().map(|c| format!("/search?q={q}&type={}&cursor={}", urlencode(&kind), urlencode(c)));
    let ctx = Ctx::new(&tr, Some(&who), "/search", None);
    Ok(render(&SearchResultsPage {
        title: tr.t("search-title"),
        summary: tr.t1("search-found", "count", r.total),
        ready: r.ready,
        hits: views(&tr, &r),
        types,
        statuses,
        next_href,
        q: p.q,
        ctx,
    }))
}

/// Type-ahead under the search box (htmx fragment): the best few records for what is typed.
pub async fn suggest(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(p): Query<SearchParams>) -> UiResult {
    if p.q.trim().is_empty() {
        return Ok(render(&Suggestions { tr, q: String::new(), hits: vec![] }));
    }
    let r = run(&state, &tr, &who, &p, 8, true).await?;
    Ok(render(&Suggestions { hits: views(&tr, &r), q: p.q, tr }))
}
