//! Service desk agent workspace through the HTTP surface: saved and shared views — their
//! audience, who may change them, counts, columns on the queue page, CSV export, and that no
//! view or export shows a contact another organisation's tickets.

use super::*;

impl Site {
    /// A ticket logged by the administrator in `project` for `reporter`; returns its number.
    async fn view_ticket(&self, project: &str, reporter: &str, title: &str) -> String {
        let body = json!({"project_id": project, "reporter_id": reporter, "title": title});
        let r = self.api(Method::POST, "/api/v1/incidents", Some(&self.admin_token), Some(body), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        r.json()["number"].as_str().unwrap().to_string()
    }

    async fn ticket_json(&self, number: &str) -> Value {
        self.api(Method::GET, &format!("/api/v1/incidents/{number}"), Some(&self.admin_token), None, &[]).await.json()
    }
}

#[tokio::test]
async fn views_reach_their_audience_only_and_exports_stay_within_the_readers_organisation() {
    for s in sites().await {
        let (admin, agent, contact) = (s.admin_token.as_str(), s.agent_token.as_str(), s.contact_a_token.as_str());
        let contact_a = s.api(Method::GET, "/api/v1/me", Some(contact), None, &[]).await.json()["id"].as_str().unwrap().to_string();
        let projects = s.api(Method::GET, "/api/v1/projects?q=A1", Some(admin), None, &[]).await.json();
        let project_a = projects["items"][0]["id"].as_str().unwrap().to_string();
        let beta = s
            .app
            .create_user(
                &s.admin,
                NewUser {
                    kind: AccountKind::Contact,
                    email: "views@beta.test".into(),
                    display_name: "Beta caller".into(),
                    organization_id: Some(s.org_b.clone()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let ours = s.view_ticket(&project_a, &contact_a, "Acme printer jam").await;
        let theirs = s.view_ticket(&s.project_b, &beta.id, "Beta printer secret").await;

        // an administrator's view for all staff, with chosen columns
        let body = json!({"name": "All printers", "audience": "everyone", "filters": {"q": "printer"}, "sort": "-created_at",
            "columns": ["number", "title", "organization"]});
        let r = s.api(Method::POST, "/api/v1/incident-views", Some(admin), Some(body), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let v = r.json();
        let id = v["id"].as_str().unwrap().to_string();
        assert_eq!((v["count"].as_i64(), v["editable"].as_bool()), (Some(2), Some(true)));

        // the agent sees it, counted within their own projects, and may not change it
        let list = s.api(Method::GET, "/api/v1/incident-views", Some(agent), None, &[]).await.json();
        assert_eq!(list[0]["count"].as_i64(), Some(1), "{list}");
        assert_eq!(list[0]["editable"].as_bool(), Some(false));
        let r = s
            .api(
                Method::PUT,
                &format!("/api/v1/incident-views/{id}"),
                Some(agent),
                Some(json!({"name": "mine now"})),
                &[("if-match", "\"1\"")],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        let r = s.api(Method::DELETE, &format!("/api/v1/incident-views/{id}"), Some(agent), None, &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let csv = s.api(Method::GET, &format!("/api/v1/incident-views/{id}/export"), Some(agent), None, &[]).await.text();
        assert!(csv.contains(&ours) && !csv.contains(&theirs), "{csv}");

        // a contact does not see staff views at all
        assert_eq!(s.api(Method::GET, "/api/v1/incident-views", Some(contact), None, &[]).await.json(), json!([]));
        for path in [
            format!("/api/v1/incident-views/{id}"),
            format!("/api/v1/incident-views/{id}/export"),
            format!("/api/v1/incident-views/{id}/incidents"),
        ] {
            assert_eq!(s.api(Method::GET, &path, Some(contact), None, &[]).await.status, StatusCode::NOT_FOUND, "{path}");
        }
        // nor can their own view reach another organisation, through the list or the export
        let body = json!({"name": "Beta's", "filters": {"organization_id": s.org_b}, "columns": ["number", "agent"]});
        let r = s.api(Method::POST, "/api/v1/incident-views", Some(contact), Some(body), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let snoop = r.json();
        assert_eq!((snoop["count"].as_i64(), snoop["columns"].clone()), (Some(0), json!(["number"])));
        let sid = snoop["id"].as_str().unwrap();
        let csv = s.api(Method::GET, &format!("/api/v1/incident-views/{sid}/export"), Some(contact), None, &[]).await.text();
        assert_eq!(csv.lines().count(), 1, "only the header: {csv}");
        let r = s.api(Method::POST, "/api/v1/incident-views", Some(contact), Some(json!({"name": "all of it"})), &[]).await;
        let all = r.json()["id"].as_str().unwrap().to_string();
        let items = s.api(Method::GET, &format!("/api/v1/incident-views/{all}/incidents"), Some(contact), None, &[]).await.json();
        let numbers: Vec<&str> = items["items"].as_array().unwrap().iter().map(|i| i["number"].as_str().unwrap()).collect();
        assert_eq!(numbers, vec![ours.as_str()]);
        let r =
            s.api(Method::POST, "/api/v1/incident-views", Some(contact), Some(json!({"name": "share", "audience": "everyone"})), &[]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

        // the owner changes it with If-Match; a stale version changes nothing
        let body = json!({"name": "Printers", "audience": "everyone", "filters": {"q": "printer"}, "columns": ["number", "title"]});
        let path = format!("/api/v1/incident-views/{id}");
        let r = s.api(Method::PUT, &path, Some(admin), Some(body.clone()), &[("if-match", "\"1\"")]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let r = s.api(Method::PUT, &path, Some(admin), Some(body), &[("if-match", "\"1\"")]).await;
        assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    }
}

#[tokio::test]
async fn the_queue_page_saves_views_shows_their_columns_and_counts_and_keeps_typed_values() {
    let s = site_on(TestDb::sqlite().await).await;
    let contact_a = s.api(Method::GET, "/api/v1/me", Some(&s.contact_a_token), None, &[]).await.json()["id"].as_str().unwrap().to_string();
    let projects = s.api(Method::GET, "/api/v1/projects?q=A1", Some(&s.admin_token), None, &[]).await.json();
    let project_a = projects["items"][0]["id"].as_str().unwrap().to_string();
    s.view_ticket(&project_a, &contact_a, "VPN 断开").await;
    let (cookie, csrf) = s.browser_login("agent@keel.test", "correct horse battery").await;

    // without the CSRF token nothing is saved
    let r = s.post_form(&cookie, "/incidents/views", "name=x&f_view=open").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // an unknown column: the form comes back with the error and what was typed
    let r = s.post_form(&cookie, "/incidents/views", &format!("_csrf={csrf}&name=Kept%20%E5%90%8D&f_view=open&columns=password")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.text().contains("value=\"Kept 名\""), "typed name lost");
    let form =
        format!("_csrf={csrf}&name=VPN%20open&f_view=open&f_q=VPN&sort=-updated_at&columns=number&columns=title&columns=organization");
    let r = s.post_form(&cookie, "/incidents/views", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let to = r.header(header::LOCATION);
    let page = s.page(&cookie, &to).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains("data-column=\"organization\"") && !html.contains("data-column=\"priority\""), "columns of the view");
    assert!(html.contains("VPN 断开") && html.contains("Acme"));
    assert!(html.contains(">VPN open</a> <span class=\"count\">1</span>"), "the sidebar counts the view");
    // every id on the page is unique
    let mut ids = std::collections::HashSet::new();
    for (i, _) in html.match_indices(" id=\"") {
        let rest = &html[i + 5..];
        assert!(ids.insert(&rest[..rest.find('"').unwrap()]), "duplicate id {}", &rest[..rest.find('"').unwrap()]);
    }
    // the owner deletes it from the page
    let id = to.split("saved=").nth(1).unwrap().split('&').next().unwrap().to_string();
    let r = s.post_form(&cookie, &format!("/incidents/views/{id}/delete"), &format!("_csrf={csrf}")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(s.page(&cookie, &format!("/incidents?saved={id}")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_queue_page_changes_ticked_tickets_each_on_its_own() {
    for s in sites().await {
        let contact_a =
            s.api(Method::GET, "/api/v1/me", Some(&s.contact_a_token), None, &[]).await.json()["id"].as_str().unwrap().to_string();
        let projects = s.api(Method::GET, "/api/v1/projects?q=A1", Some(&s.admin_token), None, &[]).await.json();
        let project_a = projects["items"][0]["id"].as_str().unwrap().to_string();
        let one = s.view_ticket(&project_a, &contact_a, "bulk one").await;
        let two = s.view_ticket(&project_a, &contact_a, "bulk two").await;
        let (a, b) = (s.ticket_json(&one).await, s.ticket_json(&two).await);
        let (ia, ib) = (a["id"].as_str().unwrap().to_string(), b["id"].as_str().unwrap().to_string());
        let (cookie, csrf) = s.browser_login("admin@keel.test", "correct horse battery").await;
        let page = s.page(&cookie, "/incidents?view=open").await.text();
        assert!(page.contains(&format!("name=\"ids\" value=\"{ia}\"")), "checkboxes on the queue");
        for step in ["pend", "resume", "reopen"] {
            assert!(page.contains(&format!("<option value=\"{step}\">")), "{step} offered");
        }
        assert!(page.contains("id=\"bulk-pending-reason\"") && page.contains("<label for=\"bulk-pending-reason\">"));
        let agent = s.api(Method::GET, "/api/v1/me", Some(&s.agent_token), None, &[]).await.json()["id"].as_str().unwrap().to_string();
        // without CSRF: refused
        let r = s.post_form(&cookie, "/incidents/bulk", &format!("ids={ia}&action=assign&agent_id={agent}")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        // resolving without a resolution code is refused by both, nothing changes, the ticks stay
        let back = urlenc("/incidents?view=open");
        let r = s.post_form(&cookie, "/incidents/bulk", &format!("_csrf={csrf}&ids={ia}&ids={ib}&action=resolve&back={back}")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        assert!(r.text().contains(&format!("value=\"{ib}\" aria-label")) && r.text().contains(" checked>"), "ticks kept");
        for n in [&one, &two] {
            assert!(r.text().contains(&format!("data-testid=\"bulk-refused\">{n}")), "each refusal names its ticket: {}", r.text());
        }
        let r = s
            .post_form(&cookie, "/incidents/bulk", &format!("_csrf={csrf}&ids={ia}&ids={ib}&action=assign&agent_id={agent}&back={back}"))
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        assert!(r.header(header::LOCATION).starts_with("/incidents?view=open"));
        for n in [&one, &two] {
            let t = s.ticket_json(n).await;
            assert_eq!((t["status"].as_str(), t["agent_id"].as_str()), (Some("assigned"), Some(agent.as_str())), "{n}");
        }
        // pending needs its reason, then puts both on hold with it
        let r = s.post_form(&cookie, "/incidents/bulk", &format!("_csrf={csrf}&ids={ia}&ids={ib}&action=pend&back={back}")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().contains(&format!("data-testid=\"bulk-refused\">{one} · Pending reason")), "{}", r.text());
        assert_eq!(s.ticket_json(&one).await["status"].as_str(), Some("assigned"));
        let pend =
            format!("_csrf={csrf}&ids={ia}&ids={ib}&action=pend&pending_reason=waiting_for_customer&note=asked+for+logs&back={back}");
        assert_eq!(s.post_form(&cookie, "/incidents/bulk", &pend).await.status, StatusCode::SEE_OTHER);
        for n in [&one, &two] {
            let t = s.ticket_json(n).await;
            assert_eq!((t["status"].as_str(), t["pending_reason"].as_str()), (Some("pending"), Some("waiting_for_customer")), "{n}");
        }
        // one ticket resumed alone; resuming both then changes the pending one and reports the other
        let r = s.post_form(&cookie, "/incidents/bulk", &format!("_csrf={csrf}&ids={ib}&action=resume&back={back}")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let r = s.post_form(&cookie, "/incidents/bulk", &format!("_csrf={csrf}&ids={ia}&ids={ib}&action=resume&back={back}")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        let html = r.text();
        assert!(html.contains("data-testid=\"bulk-applied\"") && html.contains("Changed 1 of the ticked tickets"), "{html}");
        assert!(html.contains(&format!("{two}: ")) && !html.contains(&format!("{one}: ")), "only the refusing ticket is named");
        assert!(
            html.contains(&format!("value=\"{ib}\" aria-label"))
                && !html.contains(&format!("value=\"{ia}\" aria-label=\"Select {one}\" checked"))
        );
        assert_eq!(s.ticket_json(&one).await["status"].as_str(), Some("in_progress"));
        assert_eq!(s.ticket_json(&two).await["status"].as_str(), Some("in_progress"));
        // reopening needs resolved tickets and a reason
        let resolve = format!("_csrf={csrf}&ids={ia}&action=resolve&resolution_code=solved&resolution_notes=done&back={back}");
        assert_eq!(s.post_form(&cookie, "/incidents/bulk", &resolve).await.status, StatusCode::SEE_OTHER);
        let reopen = format!("_csrf={csrf}&ids={ia}&ids={ib}&action=reopen&reason=still+broken&back={back}");
        let r = s.post_form(&cookie, "/incidents/bulk", &reopen).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().contains(&format!("{two}: ")));
        let t = s.ticket_json(&one).await;
        assert_eq!(t["status"].as_str(), Some("assigned"), "reopened: {t}");
        let zh = s.page(&format!("{cookie}; keel_lang=zh-CN"), "/incidents?view=open").await.text();
        assert!(zh.contains("挂起原因") || zh.contains("挂起"), "the form in Chinese");
        // a contact has no bulk form and cannot post one
        let (cc, ccsrf) = s.browser_login("contact@acme.test", "correct horse battery").await;
        assert!(!s.page(&cc, "/incidents").await.text().contains("bulk-form"));
        let r = s.post_form(&cc, "/incidents/bulk", &format!("_csrf={ccsrf}&ids={ia}&action=reassign&agent_id=")).await;
        assert_ne!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(s.ticket_json(&one).await["status"].as_str(), Some("assigned"));
    }
}

/// The ids of a page's elements and the targets of its labels, read tag by tag.
fn ids_and_label_targets(html: &str) -> (Vec<String>, Vec<String>) {
    let (mut ids, mut targets) = (vec![], vec![]);
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        let mut quote = None;
        let end = rest
            .char_indices()
            .find(|&(_, c)| match quote {
                Some(q) if c == q => {
                    quote = None;
                    false
                }
                Some(_) => false,
                None if c == '"' || c == '\'' => {
                    quote = Some(c);
                    false
                }
                None => c == '>',
            })
            .map_or(rest.len(), |(i, _)| i);
        let tag = &rest[..end];
        rest = &rest[end..];
        if tag.starts_with(['/', '!', '?']) {
            continue;
        }
        let name_end = tag.find(|c: char| c.is_whitespace()).unwrap_or(tag.len());
        let (name, mut attrs) = (&tag[..name_end], tag[name_end..].trim_start());
        while !attrs.is_empty() {
            let key_end = attrs.find(|c: char| c == '=' || c.is_whitespace()).unwrap_or(attrs.len());
            let key = &attrs[..key_end];
            attrs = attrs[key_end..].trim_start();
            let mut value = String::new();
            if let Some(v) = attrs.strip_prefix('=') {
                let v = v.trim_start();
                let (val, after) = match v.chars().next() {
                    Some(q @ ('"' | '\'')) => {
                        let close = v[1..].find(q).map_or(v.len(), |i| i + 1);
                        (&v[1..close], v.get(close + 1..).unwrap_or(""))
                    }
                    _ => v.split_at(v.find(char::is_whitespace).unwrap_or(v.len())),
                };
                value = val.to_string();
                attrs = after.trim_start();
            }
            match key {
                "id" => ids.push(value),
                "for" if name.eq_ignore_ascii_case("label") => targets.push(value),
                _ => {}
            }
        }
    }
    (ids, targets)
}

/// Fails on a duplicate id or a label pointing at no element.
fn assert_ids_unique(html: &str, what: &str) {
    let (ids, targets) = ids_and_label_targets(html);
    let mut seen = std::collections::HashSet::new();
    for id in &ids {
        assert!(seen.insert(id.as_str()), "{what}: duplicate id {id}");
    }
    for t in &targets {
        assert!(seen.contains(t.as_str()), "{what}: label for {t} names no element");
    }
}

#[test]
fn the_id_check_finds_duplicates_and_dangling_labels() {
    let (ids, targets) = ids_and_label_targets("<form id=\"a\"><label for='b'>x > y</label><input id=b data-x=\"<i id=c>\"></form>");
    assert_eq!((ids, targets), (vec!["a".to_string(), "b".to_string()], vec!["b".to_string()]));
    assert!(std::panic::catch_unwind(|| assert_ids_unique("<i id=\"a\"></i><b id=\"a\"></b>", "dup")).is_err());
    assert!(std::panic::catch_unwind(|| assert_ids_unique("<label for=\"z\">z</label>", "dangling")).is_err());
}

#[tokio::test]
async fn every_element_id_on_the_ticket_page_is_unique_in_every_state() {
    for s in sites().await {
        let contact_a =
            s.api(Method::GET, "/api/v1/me", Some(&s.contact_a_token), None, &[]).await.json()["id"].as_str().unwrap().to_string();
        let projects = s.api(Method::GET, "/api/v1/projects?q=A1", Some(&s.admin_token), None, &[]).await.json();
        let project_a = projects["items"][0]["id"].as_str().unwrap().to_string();
        let number = s.view_ticket(&project_a, &contact_a, "ids on the page").await;
        let agent = s.api(Method::GET, "/api/v1/me", Some(&s.agent_token), None, &[]).await.json()["id"].as_str().unwrap().to_string();
        let (cookie, _) = s.browser_login("admin@keel.test", "correct horse battery").await;
        let step = |action: &str| keel_app::incidents::TransitionInput { action: action.into(), ..Default::default() };
        let steps = [
            keel_app::incidents::TransitionInput { agent_id: Some(agent.clone()), ..step("assign") },
            step("start"),
            keel_app::incidents::TransitionInput { pending_reason: Some("waiting_for_customer".into()), ..step("pend") },
            step("resume"),
            keel_app::incidents::TransitionInput {
                resolution_code: Some("solved".into()),
                resolution_notes: Some("replaced".into()),
                ..step("resolve")
            },
        ];
        let mut seen_prefixed = false;
        for (i, next) in std::iter::once(None).chain(steps.into_iter().map(Some)).enumerate() {
            if let Some(input) = next {
                s.app.transition_ticket(&s.admin, &number, input, None).await.unwrap();
            }
            for lang in ["en", "zh-CN"] {
                let r = s.page(&format!("{cookie}; keel_lang={lang}"), &format!("/incidents/{number}")).await;
                assert_eq!(r.status, StatusCode::OK);
                let html = r.text();
                assert_ids_unique(&html, &format!("step {i}, {lang}"));
                seen_prefixed |= html.contains("id=\"f-reassign-team_id\"") && html.contains("<label for=\"f-reassign-team_id\">");
            }
        }
        assert!(seen_prefixed, "each lifecycle form has its own field ids");
    }
}

#[tokio::test]
async fn the_ticket_page_manages_watchers_links_parent_service_and_merge() {
    for s in sites().await {
        let contact_a =
            s.api(Method::GET, "/api/v1/me", Some(&s.contact_a_token), None, &[]).await.json()["id"].as_str().unwrap().to_string();
        let projects = s.api(Method::GET, "/api/v1/projects?q=A1", Some(&s.admin_token), None, &[]).await.json();
        let project_a = projects["items"][0]["id"].as_str().unwrap().to_string();
        let parent = s.view_ticket(&project_a, &contact_a, "parent outage").await;
        let child = s.view_ticket(&project_a, &contact_a, "child outage").await;
        let dup = s.view_ticket(&project_a, &contact_a, "same outage again").await;
        let cid = s.ticket_json(&child).await["id"].as_str().unwrap().to_string();
        let agent = s.api(Method::GET, "/api/v1/me", Some(&s.agent_token), None, &[]).await.json()["id"].as_str().unwrap().to_string();
        let (cookie, csrf) = s.browser_login("admin@keel.test", "correct horse battery").await;
        let page = s.page(&cookie, &format!("/incidents/{cid}")).await.text();
        for testid in ["add-watcher", "add-link", "set-parent", "merge", "set-service", "follow"] {
            assert!(page.contains(&format!("data-testid=\"{testid}\"")), "{testid} form missing");
        }
        let mut ids = std::collections::HashSet::new();
        for (i, _) in page.match_indices(" id=\"desk-") {
            let rest = &page[i + 5..];
            assert!(ids.insert(&rest[..rest.find('"').unwrap()]), "duplicate id");
        }
        let post = |path: String, form: String| {
            let (s, cookie) = (&s, cookie.clone());
            async move { s.post_form(&cookie, &path, &form).await }
        };
        // without CSRF nothing changes
        assert_eq!(post(format!("/incidents/{cid}/watchers"), format!("user_id={agent}")).await.status, StatusCode::FORBIDDEN);
        let r = post(format!("/incidents/{cid}/watchers"), format!("_csrf={csrf}&user_id={agent}")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let r = post(format!("/incidents/{cid}/links"), format!("_csrf={csrf}&target_type=change&target_id=CHG-42")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let r = post(format!("/incidents/{cid}/parent"), format!("_csrf={csrf}&parent={parent}")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let t = s.app.get_ticket(&s.admin, &cid).await.unwrap();
        assert_eq!(t.parent_id.as_deref(), s.ticket_json(&parent).await["id"].as_str());
        let watchers = s.api(Method::GET, &format!("/api/v1/incidents/{cid}/watchers"), Some(&s.admin_token), None, &[]).await.json();
        assert!(watchers.to_string().contains(&agent), "{watchers}");
        // a bad reference comes back with the error and the typed value
        let r = post(format!("/incidents/{cid}/links"), format!("_csrf={csrf}&target_type=ci&target_id=no-such-ci")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().contains("value=\"no-such-ci\""), "typed reference lost");
        let r = post(format!("/incidents/{cid}/watchers/remove"), format!("_csrf={csrf}&user_id={agent}")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert!(
            !s.api(Method::GET, &format!("/api/v1/incidents/{cid}/watchers"), Some(&s.admin_token), None, &[])
                .await
                .text()
                .contains(&agent)
        );
        // merge the duplicate into the child
        let did = s.ticket_json(&dup).await["id"].as_str().unwrap().to_string();
        let r = post(format!("/incidents/{did}/merge"), format!("_csrf={csrf}&into={child}")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let d = s.ticket_json(&dup).await;
        assert_eq!((d["status"].as_str(), d["duplicate_of_number"].as_str()), (Some("closed"), Some(child.as_str())));

        // a contact follows their own organisation's ticket, and cannot touch another's
        let (cc, ccsrf) = s.browser_login("contact@acme.test", "correct horse battery").await;
        let page = s.page(&cc, &format!("/incidents/{cid}")).await.text();
        assert!(page.contains("data-testid=\"desk-panel\"") && !page.contains("data-testid=\"add-link\""));
        let r = s.post_form(&cc, &format!("/incidents/{cid}/watchers/remove"), &format!("_csrf={ccsrf}")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        assert!(s.page(&cc, &format!("/incidents/{cid}")).await.text().contains("data-testid=\"follow\""));
        let r = s.post_form(&cc, &format!("/incidents/{cid}/watchers"), &format!("_csrf={ccsrf}")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let r = s.post_form(&cc, &format!("/incidents/{cid}/links"), &format!("_csrf={ccsrf}&target_type=change&target_id=X")).await;
        assert_ne!(r.status, StatusCode::SEE_OTHER);
        let beta = s
            .view_ticket(
                &s.project_b,
                &s.app
                    .create_user(
                        &s.admin,
                        NewUser {
                            kind: AccountKind::Contact,
                            email: "w@beta.test".into(),
                            display_name: "W".into(),
                            organization_id: Some(s.org_b.clone()),
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap()
                    .id,
                "beta only",
            )
            .await;
        let bid = s.ticket_json(&beta).await["id"].as_str().unwrap().to_string();
        let r = s.post_form(&cc, &format!("/incidents/{bid}/watchers"), &format!("_csrf={ccsrf}")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let w = s.api(Method::GET, &format!("/api/v1/incidents/{bid}/watchers"), Some(&s.admin_token), None, &[]).await.text();
        assert!(!w.contains(&contact_a), "{w}");
    }
}

#[tokio::test]
async fn the_create_form_narrows_contacts_and_categories_as_you_type_and_keeps_what_was_typed() {
    let s = site_on(TestDb::sqlite().await).await;
    let (cookie, csrf) = s.browser_login("agent@keel.test", "correct horse battery").await;
    let page = s.page(&cookie, "/incidents/new").await.text();
    for (field, source) in [("reporter_id", "contacts"), ("category_id", "categories")] {
        assert!(page.contains(&format!("name=\"{field}_find\"")) && page.contains(&format!("hx-get=\"/typeahead/{source}\"")), "{field}");
        assert!(page.contains(&format!("hx-target=\"#f-{field}\"")));
    }
    // the search box's own name is understood by the endpoint
    let r = s.page(&cookie, "/typeahead/contacts?reporter_id_find=contact%40acme").await;
    assert!(r.text().contains("contact@acme.test") && !r.text().contains("agent@keel.test"), "{}", r.text());
    // an organisation chosen on the form narrows the callers to its contacts
    assert!(page.contains("name=\"organization_id_find\"") && page.contains("hx-include=\"#f-organization_id\""));
    let theirs = s.page(&cookie, &format!("/typeahead/contacts?reporter_id_find=&organization_id={}", s.org_b)).await.text();
    assert!(!theirs.contains("contact@acme.test"), "{theirs}");
    let ours = s.page(&cookie, &format!("/typeahead/contacts?reporter_id_find=&organization_id={}", s.org_a)).await.text();
    assert!(ours.contains("contact@acme.test"), "{ours}");
    // a refused form keeps the search text
    let r = s.post_form(&cookie, "/incidents", &format!("_csrf={csrf}&title=&reporter_id_find=%E6%9D%8E&category_id_find=net")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.text().contains("value=\"李\"") && r.text().contains("value=\"net\""), "typed search text lost");
}

#[tokio::test]
async fn administrators_define_catalogue_items_and_their_questions_in_pages() {
    let s = site_on(TestDb::sqlite().await).await;
    let admin = Some(s.admin_token.as_str());
    let r = s.api(Method::POST, "/api/v1/calendars/china-mainland", admin, Some(json!({"name": "中国大陆"})), &[]).await;
    let cal = r.json()["id"].as_str().unwrap().to_string();
    let body =
        json!({"code": "workplace", "name": "Workplace", "service_line": "operations_maintenance", "calendar_id": cal, "status": "live"});
    let service = s.api(Method::POST, "/api/v1/services", admin, Some(body), &[]).await.json()["id"].as_str().unwrap().to_string();
    let (cookie, csrf) = s.browser_login("admin@keel.test", "correct horse battery").await;
    assert_eq!(s.page(&cookie, "/admin/catalogue-items/new").await.status, StatusCode::OK);
    // a question line in the wrong shape comes back with the typed text and the error
    let bad = urlenc("laptop | Laptop model | colour | required");
    let r = s
        .post_form(
            &cookie,
            "/admin/catalogue-items",
            &format!("_csrf={csrf}&service_id={service}&code=laptop&name=New%20laptop&form={bad}&active=true"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.text().contains("Laptop model | colour") && r.text().contains("data-field=\"form\""));
    let good = urlenc("model | Laptop model | choice | required | ThinkPad, MacBook\nneeded_by | Needed by | date | optional");
    let r = s
        .post_form(
            &cookie,
            "/admin/catalogue-items",
            &format!("_csrf={csrf}&service_id={service}&code=laptop&name=New%20laptop&form={good}&active=true"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let items = s.api(Method::GET, "/api/v1/catalogue-items", admin, None, &[]).await.json();
    let item = &items[0];
    assert_eq!(item["fields"][0]["choices"], json!(["ThinkPad", "MacBook"]), "{item}");
    assert_eq!((item["fields"][0]["required"].as_bool(), item["fields"][1]["kind"].as_str()), (Some(true), Some("date")));
    let page = s.page(&cookie, r.header(header::LOCATION).as_str()).await.text();
    assert!(page.contains("model | Laptop model | choice | required | ThinkPad, MacBook"), "questions shown as written");
    assert!(s.page(&cookie, "/admin/catalogue-items").await.text().contains("New laptop"));
    // an agent may look but not define; a contact does not see the pages
    let (ac, acsrf) = s.browser_login("agent@keel.test", "correct horse battery").await;
    let r = s.post_form(&ac, "/admin/catalogue-items", &format!("_csrf={acsrf}&service_id={service}&code=x&name=x&active=true")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let (cc, _) = s.browser_login("contact@acme.test", "correct horse battery").await;
    assert_eq!(s.page(&cc, "/admin/catalogue-items").await.status, StatusCode::NOT_FOUND);
}
