use super::*;

struct Staff;
impl Permission for Staff {
    fn allows(&self, _: &Access) -> bool {
        true
    }
    fn sees_internal(&self) -> bool {
        true
    }
}

/// A customer contact of one organisation.
struct Contact(&'static str);
impl Permission for Contact {
    fn allows(&self, a: &Access) -> bool {
        a.organization_id == self.0
    }
    fn sees_internal(&self) -> bool {
        false
    }
}

fn ticket(id: &str, number: &str, title: &str, body: &str, org: &str) -> Document {
    Document {
        source: "ticket".into(),
        id: id.into(),
        kind: "incident".into(),
        number: Some(number.into()),
        title: title.into(),
        body: body.into(),
        status: "open".into(),
        priority: "p3".into(),
        team: "网络组".into(),
        project: "DESK".into(),
        project_id: "p1".into(),
        organization_id: org.into(),
        created_at: 1_767_225_600_000, // 2026-01-01T00:00:00Z
        ..Default::default()
    }
}

fn index() -> SearchIndex {
    let ix = SearchIndex::in_memory().unwrap();
    let mut printer = ticket("1", "INC-000042", "打印机无法打印", "The printer on floor 3 jams. Mail zhang.san@example.com", "acme");
    printer.internal = vec!["内部备注 secretword 客户很难缠".into()];
    printer.comments = vec!["Please restart the spooler".into()];
    let mut vpn = ticket("2", "INC-000043", "VPN 连接失败", "cannot reach 10.0.12.7 or srv-db01.corp.local", "globex");
    vpn.status = "resolved".into();
    vpn.created_at = 1_769_904_000_000; // 2026-02-01
    let mut svc = Document {
        source: "service".into(),
        id: "s1".into(),
        kind: "service".into(),
        title: "Printing service".into(),
        status: "active".into(),
        ..Default::default()
    };
    svc.body = "打印 and scanning for every office".into();
    ix.apply(&[Change::Upsert(Box::new(printer)), Change::Upsert(Box::new(vpn)), Change::Upsert(Box::new(svc))], "p-1").unwrap();
    ix
}

fn ids(r: &Results) -> Vec<String> {
    let mut v: Vec<_> = r.hits.iter().map(|h| h.id.clone()).collect();
    v.sort();
    v
}

fn find(ix: &SearchIndex, q: &str) -> Results {
    ix.search(&SearchRequest { query: q.into(), limit: 20, snippets: true, ..Default::default() }, Arc::new(Staff)).unwrap()
}

#[test]
fn chinese_words_and_their_parts_are_found() {
    let ix = index();
    assert_eq!(ids(&find(&ix, "打印机")), vec!["1"]);
    assert_eq!(ids(&find(&ix, "打印")), vec!["1", "s1"]);
    assert_eq!(ids(&find(&ix, "连接")), vec!["2"]);
    assert_eq!(ids(&find(&ix, "\"连接失败\"")), vec!["2"]);
}

#[test]
fn english_is_stemmed() {
    let ix = index();
    assert_eq!(ids(&find(&ix, "printers")), vec!["1"]);
    assert_eq!(ids(&find(&ix, "prints")), vec!["s1"]);
    assert_eq!(ids(&find(&ix, "jammed")), vec!["1"]);
}

#[test]
fn numbers_addresses_and_hosts_are_found_exactly() {
    let ix = index();
    assert_eq!(ids(&find(&ix, "INC-000042")), vec!["1"]);
    assert_eq!(ids(&find(&ix, "inc-000043")), vec!["2"]);
    assert!(find(&ix, "INC-000044").hits.is_empty());
    assert_eq!(ids(&find(&ix, "zhang.san@example.com")), vec!["1"]);
    assert_eq!(ids(&find(&ix, "10.0.12.7")), vec!["2"]);
    assert!(find(&ix, "10.0.12.8").hits.is_empty());
    assert_eq!(ids(&find(&ix, "srv-db01.corp.local")), vec!["2"]);
    assert_eq!(ids(&find(&ix, "srv-db01")), vec!["2"]);
    assert_eq!(ids(&find(&ix, "example.com")), vec!["1"]);
}

#[test]
fn phrases_exclusions_filters_and_dates() {
    let ix = index();
    assert_eq!(ids(&find(&ix, "\"floor 3\"")), vec!["1"]);
    assert!(find(&ix, "\"3 floor\"").hits.is_empty());
    assert_eq!(ids(&find(&ix, "打印 -printing")), vec!["1"]);
    assert_eq!(ids(&find(&ix, "打印 -type:service")), vec!["1"]);
    assert_eq!(ids(&find(&ix, "status:resolved")), vec!["2"]);
    assert_eq!(ids(&find(&ix, "team:网络组 -status:resolved")), vec!["1"]);
    assert_eq!(ids(&find(&ix, "type:incident project:desk")), vec!["1", "2"]);
    assert_eq!(ids(&find(&ix, "created:2026-01-15..2026-03-01")), vec!["2"]);
    assert_eq!(ids(&find(&ix, "created:..2026-01-15 type:incident")), vec!["1"]);
    let r = ix
        .search(&SearchRequest { query: "打印".into(), kind: Some("service".into()), limit: 10, ..Default::default() }, Arc::new(Staff))
        .unwrap();
    assert_eq!(ids(&r), vec!["s1"]);
}

#[test]
fn facets_count_by_kind_and_status_and_snippets_highlight() {
    let ix = index();
    let r = find(&ix, "打印");
    assert_eq!(r.total, 2);
    assert_eq!(r.by_kind, vec![("incident".to_string(), 1), ("service".to_string(), 1)]);
    assert_eq!(r.by_status, vec![("active".to_string(), 1), ("open".to_string(), 1)]);
    let r = find(&ix, "spooler");
    assert!(r.hits[0].snippet.contains("<b>spooler</b>"), "{}", r.hits[0].snippet);
    assert_eq!(r.hits[0].number.as_deref(), Some("INC-000042"));
    assert_eq!(r.hits[0].title, "打印机无法打印");
    assert_eq!(r.hits[0].title_html, "打印机无法打印", "no title word matched");
    let r = find(&ix, "打印机");
    let incident = r.hits.iter().find(|h| h.id == "1").unwrap();
    assert!(incident.title_html.starts_with("<b>打印机</b>"), "{}", incident.title_html);
    assert!(!incident.title_html.contains("INC-000042"), "the number is shown apart: {}", incident.title_html);
}

#[test]
fn a_contact_never_matches_internal_notes_nor_other_organisations() {
    let ix = index();
    assert_eq!(ids(&find(&ix, "secretword")), vec!["1"]);
    assert!(find(&ix, "secretword").hits[0].snippet.contains("secretword"));
    let contact = |q: &str, org: &'static str| {
        ix.search(&SearchRequest { query: q.into(), limit: 10, snippets: true, ..Default::default() }, Arc::new(Contact(org))).unwrap()
    };
    let r = contact("secretword", "acme");
    assert_eq!((r.total, r.hits.len(), r.by_kind.len()), (0, 0, 0));
    let r = contact("打印机", "acme");
    assert_eq!(ids(&r), vec!["1"]);
    assert!(!r.hits[0].snippet.contains("内部"), "{}", r.hits[0].snippet);
    let r = contact("vpn", "acme");
    assert_eq!((r.total, r.hits.len()), (0, 0));
    let r = contact("type:incident", "acme");
    assert_eq!((r.total, r.by_status.clone()), (1, vec![("open".to_string(), 1)]));
}

#[test]
fn changes_replace_and_delete_and_the_position_commits_with_them() {
    let dir = std::env::temp_dir().join(format!("keel-search-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    {
        let ix = SearchIndex::open(&dir).unwrap();
        assert_eq!(ix.position().unwrap(), None);
        ix.apply(&[Change::Upsert(Box::new(ticket("1", "INC-000001", "old title", "", "a")))], "pos-1").unwrap();
        ix.apply(&[Change::Upsert(Box::new(ticket("1", "INC-000001", "new title", "", "a")))], "pos-2").unwrap();
        assert_eq!(ids(&find(&ix, "new")), vec!["1"]);
        assert!(find(&ix, "old").hits.is_empty());
        ix.apply(&[Change::Delete { source: "ticket".into(), id: "1".into() }], "pos-3").unwrap();
        assert!(find(&ix, "new").hits.is_empty());
        ix.apply(&[Change::Upsert(Box::new(ticket("2", "INC-000002", "kept", "", "a")))], "pos-4").unwrap();
        // Added but never committed: lost with the position it would have carried.
        ix.add(&[ticket("3", "INC-000003", "uncommitted", "", "a")]).unwrap();
    }
    let ix = SearchIndex::open(&dir).unwrap();
    assert_eq!(ix.position().unwrap().as_deref(), Some("pos-4"));
    assert_eq!(ids(&find(&ix, "kept")), vec!["2"]);
    assert!(find(&ix, "uncommitted").hits.is_empty());
    drop(ix);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn paging_with_offset() {
    let ix = SearchIndex::in_memory().unwrap();
    let docs: Vec<_> =
        (0..30).map(|i| Change::Upsert(Box::new(ticket(&i.to_string(), &format!("INC-{i:06}"), "network outage", "", "a")))).collect();
    ix.apply(&docs, "x").unwrap();
    let page =
        |offset| ix.search(&SearchRequest { query: "outage".into(), offset, limit: 20, ..Default::default() }, Arc::new(Staff)).unwrap();
    let (a, b) = (page(0), page(20));
    assert_eq!((a.total, a.hits.len(), b.hits.len()), (30, 20, 10));
    assert!(a.hits.iter().all(|h| !b.hits.iter().any(|x| x.id == h.id)));
}

#[test]
fn type_ahead_completes_the_last_word_of_titles() {
    let ix = index();
    let typing = |q: &str| {
        let r = ix.search(&SearchRequest { query: q.into(), limit: 8, prefix_last: true, ..Default::default() }, Arc::new(Staff)).unwrap();
        ids(&r)
    };
    assert_eq!(typing("prin"), vec!["s1"]);
    assert_eq!(typing("打"), vec!["1"]);
    assert_eq!(typing("VPN 连"), vec!["2"]);
    assert_eq!(typing("INC-00004"), vec!["1", "2"]);
    assert!(find(&ix, "prin").hits.is_empty(), "whole words only outside type-ahead");
}

#[test]
fn snippets_survive_overlapping_and_out_of_fragment_ranges() {
    let f = "服务器缓慢 <b>";
    assert_eq!(
        snippet_html(f, &[0..9, 0..6, std::ops::Range { start: usize::MAX - 2, end: 3 }, 9..15]),
        "<b>服务器</b><b>缓慢</b> &lt;b&gt;"
    );
    assert_eq!(snippet_html(f, &[]), "服务器缓慢 &lt;b&gt;");
}
