//! A record's history shows what a reader can read: a change's planned window as dates in the
//! reader's format and zone, its approval steps as sentences, its statuses translated — in
//! both languages, never the stored JSON or Unix milliseconds.

use super::*;

/// 2027-03-01 02:00 and 06:30 UTC, then 2027-03-02 02:00 UTC (the test readers' zone is UTC).
const START: i64 = 1_803_866_400_000;
const END: i64 = 1_803_882_600_000;
const LATER: i64 = 1_803_952_800_000;

#[tokio::test]
async fn the_change_history_shows_dates_approval_steps_and_statuses_readably() {
    for s in sites().await {
        let admin = Some(s.admin_token.as_str());
        let agent = Some(s.agent_token.as_str());
        let label = s._db.label;
        let project_a =
            s.api(Method::GET, "/api/v1/projects?q=A1", admin, None, &[]).await.json()["items"][0]["id"].as_str().unwrap().to_string();
        let mut approvers = vec![];
        for token in [admin, agent] {
            approvers.push(s.api(Method::GET, "/api/v1/me", token, None, &[]).await.json()["id"].as_str().unwrap().to_string());
        }
        let third = s
            .app
            .create_user(
                &s.admin,
                NewUser { email: "cab@keel.test".into(), display_name: "cab".into(), roles: vec![Role::CabMember], ..Default::default() },
            )
            .await
            .unwrap();
        approvers.push(third.id);
        let body = json!({
            "project_id": project_a, "change_type": "normal", "title": "Move the mail server",
            "implementation_plan": "move", "back_out_plan": "move back", "planned_start": START, "planned_end": END,
            "approval_steps": [{"name": "CAB", "quorum": "at_least", "quorum_n": 2,
                "approvers": approvers.iter().map(|a| json!({"kind": "user", "id": a})).collect::<Vec<_>>()}]
        });
        let r = s.api(Method::POST, "/api/v1/changes", agent, Some(body), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_string();
        let path = format!("/api/v1/changes/{id}");
        let etag = s.api(Method::GET, &path, agent, None, &[]).await.header(header::ETAG);
        let r =
            s.api(Method::PATCH, &path, agent, Some(json!({"planned_start": START, "planned_end": LATER})), &[("if-match", &etag)]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let r = s.api(Method::POST, &format!("{path}/transitions"), agent, Some(json!({"to": "submitted"})), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());

        let (cookie, _) = s.browser_login("agent@keel.test", "correct horse battery").await;
        let page = s.page(&cookie, &format!("/changes/{id}")).await;
        assert_eq!(page.status, StatusCode::OK);
        let html = page.text();
        let history = &html[html.find("class=\"grid history\"").expect("a history table")..];
        for shown in
            ["1 Mar 2027 02:00", "1 Mar 2027 06:30", "2 Mar 2027 02:00", "Step 1: CAB — 2 of 3", "Draft → Submitted", "Approval steps"]
        {
            assert!(history.contains(shown), "{label}: {shown} in {history}");
        }
        for raw in [START.to_string(), END.to_string(), LATER.to_string(), "quorum_rule".into(), "draft_to_submitted".into()] {
            assert!(!history.contains(&raw), "{label}: {raw} in {history}");
        }
        let zh = s.page(&format!("{cookie}; keel_lang=zh-CN"), &format!("/changes/{id}")).await.text();
        let history = &zh[zh.find("class=\"grid history\"").unwrap()..];
        for shown in ["2027年3月1日 02:00", "2027年3月2日 02:00", "第 1 步：CAB — 3 人中 2 人", "审批步骤"] {
            assert!(history.contains(shown), "{label}: {shown} in {history}");
        }
    }
}

/// The part of a page that is its history table.
fn history_table(html: &str) -> &str {
    let from = html.find("class=\"grid history\"").expect("a history table");
    &html[from..from + html[from..].find("</table>").unwrap()]
}

#[tokio::test]
async fn a_ticket_history_names_its_team_agent_and_category_never_their_ids() {
    use keel_app::directory::TeamInput;
    use keel_app::history_names::{RefKind, RefName};
    use keel_app::incidents::{CategoryInput, NewTicket, TransitionInput};
    use keel_domain::incident::TicketPatch;
    for s in sites().await {
        let label = s._db.label;
        let admin = Some(s.admin_token.as_str());
        let project_a =
            s.api(Method::GET, "/api/v1/projects?q=A1", admin, None, &[]).await.json()["items"][0]["id"].as_str().unwrap().to_string();
        let contact_id =
            s.api(Method::GET, "/api/v1/me", Some(&s.contact_a_token), None, &[]).await.json()["id"].as_str().unwrap().to_string();
        let wang = s
            .app
            .create_user(
                &s.admin,
                NewUser {
                    email: "wang@keel.test".into(),
                    display_name: "Wang Wei 王伟".into(),
                    roles: vec![Role::ServiceManager],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let team = s
            .app
            .create_team(&s.admin, TeamInput { name: "Network crew".into(), member_ids: vec![wang.id.clone()], ..Default::default() })
            .await
            .unwrap();
        let category = s
            .app
            .create_category(
                &s.admin,
                CategoryInput { code: "PRN".into(), name: "Printers 打印机".into(), active: Some(true), ..Default::default() },
            )
            .await
            .unwrap();
        let t = s
            .app
            .create_ticket(
                &s.admin,
                NewTicket {
                    project_id: project_a.clone(),
                    reporter_id: Some(contact_id.clone()),
                    title: "Printer jam".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let assign = TransitionInput {
            action: "assign".into(),
            team_id: Some(team.id.clone()),
            agent_id: Some(wang.id.clone()),
            ..Default::default()
        };
        s.app.transition_ticket(&s.admin, &t.id, assign, None).await.unwrap();
        let patch = TicketPatch { category_id: Some(category.id.clone()), ..Default::default() };
        s.app.update_ticket(&s.admin, &t.id, patch, None).await.unwrap();

        // staff read names, in English and in Chinese
        let (cookie, _) = s.browser_login("agent@keel.test", "correct horse battery").await;
        let ids = [team.id.as_str(), wang.id.as_str(), category.id.as_str(), contact_id.as_str(), project_a.as_str(), s.org_a.as_str()];
        for (lang, fields) in [("en", ["Resolver group", "Agent", "Category"]), ("zh-CN", ["职能小组", "处理人", "分类"])] {
            let page = s.page(&format!("{cookie}; keel_lang={lang}"), &format!("/incidents/{}", t.id)).await;
            assert_eq!(page.status, StatusCode::OK, "{label}");
            let html = page.text();
            let history = history_table(&html);
            for shown in ["Network crew", "Wang Wei 王伟", "Printers 打印机", "contact", "A1 · A one", "Acme"] {
                assert!(history.contains(shown), "{label} {lang}: {shown} in {history}");
            }
            for field in fields {
                assert!(history.contains(&format!("<strong>{field}</strong>")), "{label} {lang}: {field} in {history}");
            }
            for id in ids {
                assert!(!history.contains(id), "{label} {lang}: id {id} in {history}");
            }
        }

        // a record the reader may not see, or that does not exist, has no name
        let agent_id = s.api(Method::GET, "/api/v1/me", Some(&s.agent_token), None, &[]).await.json()["id"].as_str().unwrap().to_string();
        let agent = principal(&s.app, &agent_id).await;
        let names = s
            .app
            .reference_names(
                &agent,
                &[(RefKind::Project, s.project_b.clone()), (RefKind::Project, project_a.clone()), (RefKind::Team, "gone".into())],
            )
            .await
            .unwrap();
        assert_eq!(names.get(RefKind::Project, &s.project_b), RefName::Unavailable, "{label}: another customer's project");
        assert_eq!(names.get(RefKind::Project, &project_a), RefName::Name { en: "A1 · A one", zh: None }, "{label}");
        assert_eq!(names.get(RefKind::Team, "gone"), RefName::Unavailable, "{label}");

        // a customer contact sees no history, and no internal team or agent by name
        let contact = principal(&s.app, &contact_id).await;
        let history = s.app.history("ticket", &t.id).await.unwrap();
        let names = s.app.history_names(&contact, &history).await.unwrap();
        assert_eq!(names.get(RefKind::Team, &team.id), RefName::Unavailable, "{label}");
        assert_eq!(names.get(RefKind::User, &wang.id), RefName::Unavailable, "{label}");
        assert_eq!(names.get(RefKind::User, &contact_id), RefName::Name { en: "contact", zh: None }, "{label}: themselves");
        assert_eq!(names.get(RefKind::Category, &category.id), RefName::Name { en: "Printers 打印机", zh: None }, "{label}");
        let (cookie, _) = s.browser_login("contact@acme.test", "correct horse battery").await;
        let page = s.page(&cookie, &format!("/incidents/{}", t.id)).await;
        assert_eq!(page.status, StatusCode::OK, "{label}");
        let html = page.text();
        assert!(!html.contains("class=\"grid history\""), "{label}: the portal shows no history");
        for hidden in ["Network crew", "Wang Wei"] {
            assert!(!html.contains(hidden), "{label}: {hidden} on the portal");
        }
    }
}

#[tokio::test]
async fn a_ci_history_names_the_cis_its_reference_attributes_point_at_as_the_reader_may_see_them() {
    use keel_app::cmdb::CiInput;
    for s in sites().await {
        let label = s._db.label;
        s.app.seed_cmdb_classes().await.unwrap();
        // Li works for a project of customer B besides the shared CMDB; the agent does not
        let (li_id, li, _) = super::release_forms::staff_member(&s, "li@keel.test", vec![Role::ServiceDeskAgent]).await;
        let project_c = s
            .app
            .create_project(
                &s.admin,
                ProjectInput {
                    code: "C1".into(),
                    name: "C one".into(),
                    organization_id: s.org_b.clone(),
                    member_ids: vec![li_id],
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .id;
        let server = |name: &str, project_id: Option<String>| CiInput {
            class_key: "server".into(),
            name: name.into(),
            project_id,
            attributes: json!({ "hostname": name }),
            ..Default::default()
        };
        let a = s.app.create_ci(&s.admin, server("srv-alpha", None)).await.unwrap();
        let b = s.app.create_ci(&s.admin, server("srv-bravo", Some(project_c))).await.unwrap();
        let vm = |host: &str| CiInput {
            class_key: "virtual_machine".into(),
            name: "vm-one".into(),
            attributes: json!({ "hostname": "vm-one", "host": host }),
            ..Default::default()
        };
        let v = s.app.create_ci(&s.admin, vm(&a.id)).await.unwrap();
        s.app.update_ci(&s.admin, &v.id, vm(&b.id), None).await.unwrap();
        let relation = keel_app::cmdb::RelationInput { kind: "depends_on".into(), source_id: v.id.clone(), target_id: b.id.clone() };
        s.app.add_relation(&s.admin, relation).await.unwrap();

        let (agent, _) = s.browser_login("agent@keel.test", "correct horse battery").await;
        for (lang, host, not_available) in [("en", "Host", "(not available)"), ("zh-CN", "宿主机", "（不可用）")] {
            for (reader, moved) in [
                (&li, "<del>srv-alpha</del> → <ins>srv-bravo</ins>"),
                (&agent, &*format!("<del>srv-alpha</del> → <ins>{not_available}</ins>")),
            ] {
                let page = s.page(&format!("{reader}; keel_lang={lang}"), &format!("/cmdb/{}", v.id)).await;
                assert_eq!(page.status, StatusCode::OK, "{label} {lang}");
                let html = page.text();
                let history = history_table(&html);
                for shown in [format!("<strong>{host}</strong>: <ins>srv-alpha</ins>"), format!("<strong>{host}</strong>: {moved}")] {
                    assert!(history.contains(&shown), "{label} {lang}: {shown} in {history}");
                }
                // a relationship names both ends as this reader may see them
                let (depends, added) = if lang == "en" { ("depends on", "Relationship added") } else { ("依赖于", "新增关系") };
                let other = if reader == &li { "srv-bravo" } else { not_available };
                let sentence = format!("<strong>{added}</strong>: <ins>vm-one {depends} {other}</ins>");
                assert!(history.contains(&sentence), "{label} {lang}: {sentence} in {history}");
                for raw in [a.id.as_str(), b.id.as_str(), "attributes.host"] {
                    assert!(!history.contains(raw), "{label} {lang}: {raw} in {history}");
                }
            }
        }
        let html = s.page(&agent, &format!("/cmdb/{}", v.id)).await.text();
        assert!(!html.contains("srv-bravo"), "{label}: a CI of another customer's project named on the page");
        // the edit form keeps the host the agent may not see chosen, under a neutral name
        let at = html.find(&format!("value=\"{}\"", b.id)).unwrap_or_else(|| panic!("{label}: the current host is not offered"));
        assert!(
            html[at..at + 120].contains("selected") && html[at..at + 120].contains("(not available)"),
            "{label}: {}",
            &html[at..at + 120]
        );
        // and saving other fields keeps it, while choosing it anew is refused
        let agent_id =
            keel_store::accounts::get_user_by_email(&mut s.app.read().await.unwrap(), "agent@keel.test").await.unwrap().unwrap().id;
        let who = super::principal(&s.app, &agent_id).await;
        let mut edit = vm(&b.id);
        edit.description = Some("patched".into());
        let kept = s.app.update_ci(&who, &v.id, edit, None).await.unwrap();
        assert_eq!(kept.attributes["host"], json!(b.id), "{label}");
        s.app.update_ci(&who, &v.id, vm(&a.id), None).await.unwrap();
        assert!(s.app.update_ci(&who, &v.id, vm(&b.id), None).await.is_err(), "{label}: a CI the editor may not see chosen anew");
    }
}
