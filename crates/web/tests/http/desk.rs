//! Service desk, second part, through the HTTP surface: attachments never reach another
//! organisation nor a customer when they belong to an internal note, are served with a safe
//! content type and `Content-Disposition`, respect the size limit; merging duplicates.

use super::*;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR fake image bytes";

/// A `multipart/form-data` body: text fields, then an optional file part.
fn multipart(fields: &[(&str, &str)], file: Option<(&str, &str, &[u8])>) -> (String, Vec<u8>) {
    let boundary = "keel-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes());
    }
    if let Some((name, ty, bytes)) = file {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {ty}\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

impl Site {
    pub(crate) async fn upload(&self, token: &str, ticket: &str, fields: &[(&str, &str)], file: Option<(&str, &str, &[u8])>) -> Resp {
        let (ct, body) = multipart(fields, file);
        self.raw(Method::POST, &format!("/api/v1/incidents/{ticket}/attachments"), token, Some(&ct), body).await
    }

    async fn contact_b_token(&self) -> String {
        let b = self
            .app
            .create_user(
                &self.admin,
                NewUser {
                    kind: AccountKind::Contact,
                    email: "contact@beta.test".into(),
                    display_name: "Beta contact".into(),
                    organization_id: Some(self.org_b.clone()),
                    password: Some("correct horse battery".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let p = principal(&self.app, &b.id).await;
        self.app.create_api_token(&p, "t", None).await.unwrap().0
    }

    /// A ticket of project A reported by contact A; returns its id.
    pub(crate) async fn ticket_a(&self, title: &str) -> String {
        let me = self.api(Method::GET, "/api/v1/me", Some(&self.contact_a_token), None, &[]).await.json();
        let projects = self.api(Method::GET, "/api/v1/projects?q=A1", Some(&self.admin_token), None, &[]).await.json();
        let project_a = projects["items"][0]["id"].as_str().unwrap().to_string();
        let r = self
            .api(
                Method::POST,
                "/api/v1/incidents",
                Some(&self.admin_token),
                Some(json!({"project_id": project_a, "reporter_id": me["id"], "title": title})),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        r.json()["id"].as_str().unwrap().to_string()
    }
}

#[tokio::test]
async fn attachments_reach_only_those_who_may_see_them_and_are_served_safely() {
    for s in sites().await {
        let id = s.ticket_a("Screen flickers").await;
        let admin = s.admin_token.as_str();
        // a public screenshot, and an internal note with an HTML file
        let r = s.upload(admin, &id, &[], Some(("screen shot.png", "image/png", PNG))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let public = r.json();
        assert_eq!(public["content_type"], "image/png");
        assert_eq!(public["visibility"], "public");
        let public_id = public["id"].as_str().unwrap().to_string();
        let r = s
            .upload(
                admin,
                &id,
                &[("visibility", "internal"), ("body", "SECRET vendor dump attached")],
                Some(("../../报告<script>.html", "text/html", b"<html><script>alert(1)</script></html>")),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let internal = r.json();
        assert_eq!(internal["visibility"], "internal");
        assert!(internal["comment_id"].is_string(), "the reply was written with the file");
        assert_eq!(internal["content_type"], "application/octet-stream", "HTML is never served as HTML");
        assert_eq!(internal["file_name"], "报告script.html");
        let internal_id = internal["id"].as_str().unwrap().to_string();

        // staff download: HTML as a download with RFC 6266 filename*, the image inline
        let r = s.api(Method::GET, &format!("/api/v1/attachments/{internal_id}"), Some(admin), None, &[]).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header(header::CONTENT_TYPE), "application/octet-stream");
        assert_eq!(r.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        let cd = r.header(header::CONTENT_DISPOSITION);
        assert!(cd.starts_with("attachment; filename=\""), "{cd}");
        assert!(cd.contains("filename*=UTF-8''%E6%8A%A5%E5%91%8Ascript.html"), "{cd}");
        assert_eq!(r.body, b"<html><script>alert(1)</script></html>");
        let r = s.api(Method::GET, &format!("/api/v1/attachments/{public_id}"), Some(admin), None, &[]).await;
        assert_eq!(r.header(header::CONTENT_TYPE), "image/png");
        assert!(r.header(header::CONTENT_DISPOSITION).starts_with("inline; filename=\"screen shot.png\""));
        assert_eq!(r.body, PNG);

        // the reporter's organisation: the public file only
        let contact_a = s.contact_a_token.as_str();
        let list = s.api(Method::GET, &format!("/api/v1/incidents/{id}/attachments"), Some(contact_a), None, &[]).await;
        assert_eq!(list.status, StatusCode::OK);
        assert!(list.text().contains(&public_id) && !list.text().contains(&internal_id), "{}", list.text());
        assert_eq!(
            s.api(Method::GET, &format!("/api/v1/attachments/{public_id}"), Some(contact_a), None, &[]).await.status,
            StatusCode::OK
        );
        let r = s.api(Method::GET, &format!("/api/v1/attachments/{internal_id}"), Some(contact_a), None, &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}: a contact downloaded an internal note's file", s._db.label);
        let r = s.upload(contact_a, &id, &[("visibility", "internal")], Some(("x.txt", "text/plain", b"x"))).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "contacts cannot add internal files");

        // the portal page links the public file only, and the link obeys the same rule
        let (cookie, _) = s.browser_login("contact@acme.test", "correct horse battery").await;
        let page = s.page(&cookie, &format!("/incidents/{id}")).await.text();
        assert!(page.contains(&format!("/attachments/{public_id}")), "the page links the file");
        assert!(!page.contains(&internal_id) && !page.contains("SECRET"), "{}: internal file on the portal page", s._db.label);
        assert_eq!(s.page(&cookie, &format!("/attachments/{public_id}")).await.status, StatusCode::OK);
        assert_eq!(s.page(&cookie, &format!("/attachments/{internal_id}")).await.status, StatusCode::NOT_FOUND);

        // another organisation: nothing at all
        let b = s.contact_b_token().await;
        for path in [format!("/api/v1/attachments/{public_id}"), format!("/api/v1/incidents/{id}/attachments")] {
            assert_eq!(s.api(Method::GET, &path, Some(&b), None, &[]).await.status, StatusCode::NOT_FOUND, "{path}");
        }
        let r = s.upload(&b, &id, &[], Some(("x.png", "image/png", PNG))).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let (cookie_b, _) = s.browser_login("contact@beta.test", "correct horse battery").await;
        assert_eq!(s.page(&cookie_b, &format!("/attachments/{public_id}")).await.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn oversized_or_missing_files_are_refused_clearly_and_leave_nothing() {
    for s in sites().await {
        let id = s.ticket_a("Big log").await;
        let admin = s.admin_token.as_str();
        let big = vec![b'a'; 20 * 1024];
        let r = s.upload(admin, &id, &[("body", "here is the log")], Some(("big.log", "text/plain", &big))).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        let e = r.json();
        assert_eq!(e["details"][0]["field"], "file");
        assert_eq!(e["details"][0]["code"], "too_large");
        let r = s.upload(admin, &id, &[], None).await;
        assert_eq!((r.status, r.json()["details"][0]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("required")));
        let r = s.upload(admin, &id, &[], Some(("empty.txt", "text/plain", b""))).await;
        assert_eq!(r.json()["details"][0]["code"], "empty_file");
        let r = s.raw(Method::POST, &format!("/api/v1/incidents/{id}/attachments"), admin, Some("application/json"), b"{}".to_vec()).await;
        assert_eq!((r.status, r.json()["code"].as_str()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type")));
        // nothing half-written: no row, no reply, no stray temporary file
        let list = s.api(Method::GET, &format!("/api/v1/incidents/{id}/attachments"), Some(admin), None, &[]).await.json();
        assert_eq!(list.as_array().unwrap().len(), 0);
        let comments = s.api(Method::GET, &format!("/api/v1/incidents/{id}/comments"), Some(admin), None, &[]).await.json();
        assert_eq!(comments.as_array().unwrap().len(), 0, "the reply of a refused upload is not kept");
        let tmp = s.app.files.dir.join("tmp");
        let left = std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "temporary files left in {}", tmp.display());
    }
}

#[tokio::test]
async fn the_portal_form_uploads_with_its_csrf_token_only() {
    for s in sites().await {
        let id = s.ticket_a("Portal upload").await;
        let (cookie, csrf) = s.browser_login("contact@acme.test", "correct horse battery").await;
        let post = |fields: Vec<(&'static str, String)>| {
            let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (ct, body) = multipart(&f, Some(("photo.png", "image/png", PNG)));
            Request::post(format!("/incidents/{id}/attachments"))
                .header(header::COOKIE, &cookie)
                .header(header::CONTENT_TYPE, ct)
                .body(Body::from(body))
                .unwrap()
        };
        let r = s.send(post(vec![("_csrf", "forged".into())])).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = s.send(post(vec![("_csrf", csrf.clone()), ("body", "photo of the error".into())])).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let list = s.api(Method::GET, &format!("/api/v1/incidents/{id}/attachments"), Some(&s.admin_token), None, &[]).await.json();
        assert_eq!(list.as_array().unwrap().len(), 1, "only the upload with the right token is kept");
        assert!(list[0]["comment_id"].is_string());
    }
}

#[tokio::test]
async fn merging_closes_the_duplicate_and_keeps_its_conversation() {
    for s in sites().await {
        let keep = s.ticket_a("Mail down").await;
        let dup = s.ticket_a("Cannot send email").await;
        let admin = Some(s.admin_token.as_str());
        let r = s.api(Method::POST, &format!("/api/v1/incidents/{dup}/comments"), admin, Some(json!({"body": "since 9:00"})), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED);
        let number = s.api(Method::GET, &format!("/api/v1/incidents/{keep}"), admin, None, &[]).await.json()["number"].clone();
        let r = s.api(Method::POST, &format!("/api/v1/incidents/{dup}/merge"), admin, Some(json!({"into": number})), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let d = r.json();
        assert_eq!((d["status"].as_str(), d["closure_kind"].as_str()), (Some("closed"), Some("duplicate")));
        assert_eq!(d["duplicate_of_id"], keep.as_str());
        let conv = s.api(Method::GET, &format!("/api/v1/incidents/{dup}/comments"), admin, None, &[]).await.text();
        assert!(conv.contains("since 9:00"), "the duplicate's conversation is kept");
        let (cookie, _) = s.browser_login("admin@keel.test", "correct horse battery").await;
        let page = s.page(&cookie, &format!("/incidents/{keep}")).await.text();
        let dup_number = d["number"].as_str().unwrap();
        assert!(page.contains(dup_number), "the target points to the merged duplicate");
        // merging into itself or into another organisation's ticket is refused
        let r = s.api(Method::POST, &format!("/api/v1/incidents/{keep}/merge"), admin, Some(json!({"into": keep})), &[]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    }
}

#[tokio::test]
async fn watchers_and_links_follow_the_same_tenancy() {
    for s in sites().await {
        let id = s.ticket_a("VPN slow").await;
        let contact_a = Some(s.contact_a_token.as_str());
        let admin = Some(s.admin_token.as_str());
        let w = format!("/api/v1/incidents/{id}/watchers");
        assert_eq!(s.api(Method::GET, &w, contact_a, None, &[]).await.json().as_array().unwrap().len(), 1, "the reporter watches");
        let agent_id = s.api(Method::GET, "/api/v1/me", Some(&s.agent_token), None, &[]).await.json()["id"].as_str().unwrap().to_string();
        let r = s.api(Method::POST, &w, admin, Some(json!({"user_id": agent_id})), &[]).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
        let b = s.contact_b_token().await;
        let b_id = s.api(Method::GET, "/api/v1/me", Some(&b), None, &[]).await.json()["id"].as_str().unwrap().to_string();
        let r = s.api(Method::POST, &w, admin, Some(json!({"user_id": b_id})), &[]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "another organisation's contact cannot watch");
        assert_eq!(s.api(Method::GET, &w, Some(&b), None, &[]).await.status, StatusCode::NOT_FOUND);
        let r = s.api(Method::DELETE, &format!("{w}/{agent_id}"), contact_a, None, &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "a contact removes only themselves");
        assert_eq!(s.api(Method::DELETE, &format!("{w}/{agent_id}"), admin, None, &[]).await.status, StatusCode::NO_CONTENT);

        let l = format!("/api/v1/incidents/{id}/links");
        let r = s.api(Method::POST, &l, admin, Some(json!({"target_type": "problem", "target_id": "PRB-000007"})), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let r = s.api(Method::POST, &l, admin, Some(json!({"target_type": "ci", "target_id": "no-such-ci"})), &[]).await;
        assert_eq!(r.json()["details"][0]["code"], "unknown_reference");
        assert_eq!(
            s.api(Method::POST, &l, contact_a, Some(json!({"target_type": "change", "target_id": "x"})), &[]).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(s.api(Method::GET, &l, contact_a, None, &[]).await.json().as_array().unwrap().len(), 0);
        let (cookie, _) = s.browser_login("admin@keel.test", "correct horse battery").await;
        let page = s.page(&cookie, &format!("/incidents/{id}")).await.text();
        assert!(page.contains("PRB-000007"), "the ticket page shows its related records");
        let (contact, _) = s.browser_login("contact@acme.test", "correct horse battery").await;
        assert!(!s.page(&contact, &format!("/incidents/{id}")).await.text().contains("PRB-000007"), "links are internal");
    }
}

#[tokio::test]
async fn service_requests_validate_their_form_and_show_contacts_only_their_items() {
    for s in sites().await {
        let admin = Some(s.admin_token.as_str());
        let contact_a = Some(s.contact_a_token.as_str());
        let r = s.api(Method::POST, "/api/v1/calendars/china-mainland", admin, Some(json!({"name": "中国大陆"})), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let cal = r.json()["id"].as_str().unwrap().to_string();
        let projects = s.api(Method::GET, "/api/v1/projects?q=A1", admin, None, &[]).await.json();
        let project_a = projects["items"][0]["id"].as_str().unwrap().to_string();
        let mut services = Vec::new();
        for (code, project) in [("workplace", project_a.clone()), ("banking", s.project_b.clone())] {
            let body = json!({"code": code, "name": code, "service_line": "operations_maintenance", "calendar_id": cal, "status": "live"});
            let r = s.api(Method::POST, "/api/v1/services", admin, Some(body), &[]).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
            let service = r.json()["id"].as_str().unwrap().to_string();
            let sla = json!({"name": format!("{code} SLA"), "project_id": project, "calendar_id": cal, "service_ids": [service]});
            let r = s.api(Method::POST, "/api/v1/slas", admin, Some(sla), &[]).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
            services.push(service);
        }
        let form = json!([
            {"key": "model", "label": "型号", "kind": "choice", "required": true, "choices": ["ThinkPad", "MacBook"]},
            {"key": "quantity", "label": "Quantity", "kind": "number", "required": true},
            {"key": "needed_by", "label": "Needed by", "kind": "date"}
        ]);
        let bad = json!({"service_id": services[0], "code": "laptop", "name": "New laptop", "fields": [{"key": "model", "label": "Model", "kind": "choice"}]});
        let r = s.api(Method::POST, "/api/v1/catalogue-items", admin, Some(bad), &[]).await;
        assert_eq!((r.status, r.json()["details"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("fields[0].choices")));
        let r = s
            .api(
                Method::POST,
                "/api/v1/catalogue-items",
                contact_a,
                Some(json!({"service_id": services[0], "code": "x", "name": "x"})),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = s
            .api(
                Method::POST,
                "/api/v1/catalogue-items",
                admin,
                Some(json!({"service_id": services[0], "code": "laptop", "name": "New laptop", "fields": form})),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let laptop = r.json()["id"].as_str().unwrap().to_string();
        let r = s
            .api(
                Method::POST,
                "/api/v1/catalogue-items",
                admin,
                Some(json!({"service_id": services[1], "code": "token", "name": "Bank token"})),
                &[],
            )
            .await;
        let token = r.json()["id"].as_str().unwrap().to_string();

        // the contact sees the items of services their organisation's SLAs cover
        let items = s.api(Method::GET, "/api/v1/catalogue-items", contact_a, None, &[]).await.text();
        assert!(items.contains(&laptop) && !items.contains(&token), "{items}");
        assert_eq!(
            s.api(Method::GET, &format!("/api/v1/catalogue-items/{token}"), contact_a, None, &[]).await.status,
            StatusCode::NOT_FOUND
        );

        // every bad answer is named and nothing is opened
        let before = s.api(Method::GET, "/api/v1/incidents", admin, None, &[]).await.json()["items"].as_array().unwrap().len();
        let req = |answers: Value| json!({"catalogue_item_id": laptop, "project_id": project_a, "answers": answers});
        let r = s
            .api(
                Method::POST,
                "/api/v1/service-requests",
                contact_a,
                Some(req(json!({"model": "Toaster", "quantity": "two", "colour": "red"}))),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        let fields: Vec<String> =
            r.json()["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap().to_string()).collect();
        assert_eq!(fields, ["answers.colour", "answers.model", "answers.quantity"]);
        let r = s.api(Method::POST, "/api/v1/service-requests", contact_a, Some(req(json!({}))), &[]).await;
        assert_eq!(r.json()["details"].as_array().unwrap().len(), 2, "both required answers are missing");
        let r = s
            .api(
                Method::POST,
                "/api/v1/service-requests",
                contact_a,
                Some(json!({"catalogue_item_id": token, "project_id": project_a})),
                &[],
            )
            .await;
        assert_eq!(r.json()["details"][0]["field"], "catalogue_item_id", "another organisation's item");
        let after = s.api(Method::GET, "/api/v1/incidents", admin, None, &[]).await.json()["items"].as_array().unwrap().len();
        assert_eq!(before, after, "{}: a refused request opened a ticket", s._db.label);

        // a good request opens REQ-… with its answers
        let r = s
            .api(
                Method::POST,
                "/api/v1/service-requests",
                contact_a,
                Some(req(json!({"model": "MacBook", "quantity": 2, "needed_by": "2026-12-01"}))),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let t = r.json();
        assert!(t["number"].as_str().unwrap().starts_with("REQ-"), "{t}");
        assert_eq!(
            (t["kind"].as_str(), t["title"].as_str(), t["channel"].as_str()),
            (Some("service_request"), Some("New laptop"), Some("portal"))
        );
        let answers =
            s.api(Method::GET, &format!("/api/v1/incidents/{}/answers", t["id"].as_str().unwrap()), contact_a, None, &[]).await.json();
        assert_eq!(answers, json!({"model": "MacBook", "quantity": 2.0, "needed_by": "2026-12-01"}));

        // the portal: the contact's items only, errors in place with the typed values kept
        let (cookie, csrf) = s.browser_login("contact@acme.test", "correct horse battery").await;
        let list = s.page(&cookie, "/requests").await.text();
        assert!(list.contains("New laptop") && !list.contains("Bank token"), "{list}");
        assert_eq!(s.page(&cookie, &format!("/requests/{token}")).await.status, StatusCode::NOT_FOUND);
        let form = s.page(&cookie, &format!("/requests/{laptop}")).await.text();
        assert!(form.contains("型号") && form.contains("name=\"a_quantity\""), "{form}");
        let body = format!("_csrf={csrf}&project_id={project_a}&a_model=MacBook&a_quantity=lots&title=");
        let r = s.post_form(&cookie, &format!("/requests/{laptop}"), &body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().contains("data-field=\"a_quantity\"") && r.text().contains("value=\"lots\""), "{}", r.text());
        let body = format!("_csrf={csrf}&project_id={project_a}&a_model=ThinkPad&a_quantity=1");
        let r = s.post_form(&cookie, &format!("/requests/{laptop}"), &body).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    }
}

#[tokio::test]
async fn bulk_changes_are_all_or_nothing_and_name_each_refusing_ticket() {
    for s in sites().await {
        let admin = Some(s.admin_token.as_str());
        let a = s.ticket_a("One").await;
        let b = s.ticket_a("Two").await;
        let agent_id = s.api(Method::GET, "/api/v1/me", Some(&s.agent_token), None, &[]).await.json()["id"].as_str().unwrap().to_string();
        // b is resolved already: assigning it is refused, so a must stay new too
        let r = s
            .api(Method::POST, "/api/v1/incidents/bulk", admin, Some(json!({"ids": [b], "action": "assign", "agent_id": agent_id})), &[])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let resolve = json!({"ids": [b], "action": "resolve", "resolution_code": "solved", "resolution_notes": "done"});
        assert_eq!(s.api(Method::POST, "/api/v1/incidents/bulk", admin, Some(resolve), &[]).await.status, StatusCode::OK);
        let r = s
            .api(
                Method::POST,
                "/api/v1/incidents/bulk",
                admin,
                Some(json!({"ids": [a, b, "INC-999999"], "action": "assign", "agent_id": agent_id})),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        let details = r.json()["details"].clone();
        let named: Vec<&str> = details.as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
        assert_eq!(named, [b.as_str(), "INC-999999"], "{details}");
        assert_eq!(details[0]["code"], "invalid_transition");
        assert_eq!(details[1]["code"], "not_found");
        let one = s.api(Method::GET, &format!("/api/v1/incidents/{a}"), admin, None, &[]).await.json();
        assert_eq!(one["status"], "new", "{}: a ticket changed although the bulk change was refused", s._db.label);
        let r = s
            .api(Method::POST, "/api/v1/incidents/bulk", admin, Some(json!({"ids": [a], "action": "assign", "agent_id": agent_id})), &[])
            .await;
        assert_eq!(r.json()["items"][0]["status"], "assigned");
        // a contact cannot assign
        let r = s
            .api(Method::POST, "/api/v1/incidents/bulk", Some(&s.contact_a_token), Some(json!({"ids": [a], "action": "start"})), &[])
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}

#[tokio::test]
async fn csv_export_follows_the_view_and_the_readers_scope() {
    for s in sites().await {
        let admin = Some(s.admin_token.as_str());
        s.ticket_a("Printer, \"jammed\"").await;
        s.ticket_a("=HYPERLINK(\"http://evil\")").await;
        let r = s
            .api(
                Method::POST,
                "/api/v1/incidents",
                admin,
                Some(json!({"project_id": s.project_b, "reporter_id": s.admin.user_id, "title": "Beta vault"})),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let all = s.api(Method::GET, "/api/v1/incidents/export", admin, None, &[]).await;
        assert_eq!(all.status, StatusCode::OK);
        assert!(all.header(header::CONTENT_TYPE).starts_with("text/csv"));
        let text = all.text();
        assert!(text.starts_with("number,kind,title,status"), "{text}");
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text.contains("\"Printer, \"\"jammed\"\"\""), "quoting: {text}");
        assert!(text.contains("'=HYPERLINK"), "formula neutralised: {text}");
        assert!(text.contains("Beta vault"));
        let contact = s.api(Method::GET, "/api/v1/incidents/export", Some(&s.contact_a_token), None, &[]).await.text();
        assert_eq!(contact.lines().count(), 3, "{contact}");
        assert!(!contact.contains("Beta vault"), "{}: another organisation's ticket in a contact's export", s._db.label);
        let filtered = s.api(Method::GET, "/api/v1/incidents/export?q=Printer", admin, None, &[]).await.text();
        assert_eq!(filtered.lines().count(), 2, "{filtered}");
        let r = s.api(Method::GET, "/api/v1/incidents/export?view=nonsense", admin, None, &[]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        // the queue page links the CSV of the view it shows, in the reader's scope
        let (cookie, _) = s.browser_login("contact@acme.test", "correct horse battery").await;
        let page = s.page(&cookie, "/incidents?q=Printer").await.text();
        let i = page.find("data-testid=\"export\"").expect("export link");
        let start = page[..i].rfind("href=\"").unwrap() + 6;
        let href = page[start..start + page[start..].find('"').unwrap()].replace("&amp;", "&").replace("&#38;", "&");
        assert!(href.starts_with("/api/v1/incidents/export?") && href.contains("q=Printer"), "{href}");
        let csv = s.page(&cookie, &href).await;
        assert_eq!(csv.status, StatusCode::OK, "{}", csv.text());
        assert_eq!(csv.text().lines().count(), 2, "{}", csv.text());
    }
}

#[tokio::test]
async fn administrators_keep_the_category_tree_and_the_priority_matrix_in_pages() {
    for s in sites().await {
        let (cookie, csrf) = s.browser_login("admin@keel.test", "correct horse battery").await;
        let r = s.post_form(&cookie, "/admin/categories", &format!("_csrf={csrf}&code=HW&name=Hardware&active=1")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let hw = r.header(header::LOCATION).split('?').next().unwrap().to_string();
        let hw_id = hw.rsplit('/').next().unwrap().to_string();
        let r = s.post_form(&cookie, "/admin/categories", &format!("_csrf={csrf}&code=bad code&name=&parent_id={hw_id}")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().contains("data-field=\"code\"") && r.text().contains("value=\"bad code\""), "errors in place");
        let r = s.post_form(&cookie, "/admin/categories", &format!("_csrf={csrf}&code=PRN&name=打印机&parent_id={hw_id}&active=1")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let list = s.page(&cookie, "/admin/categories").await.text();
        assert!(list.contains("打印机") && list.contains("Hardware"), "{list}");
        // a category cannot be moved under its own child
        let prn_id = s.app.list_categories(&s.admin).await.unwrap().into_iter().find(|c| c.code == "PRN").unwrap().id;
        let r = s.post_form(&cookie, &hw, &format!("_csrf={csrf}&_version=1&code=HW&name=Hardware&parent_id={prn_id}&active=1")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());

        let page = s.page(&cookie, "/admin/priority-matrix").await;
        assert_eq!(page.status, StatusCode::OK);
        let mut form = format!("_csrf={csrf}");
        for cell in
            ["high_high", "high_medium", "high_low", "medium_high", "medium_medium", "medium_low", "low_high", "low_medium", "low_low"]
        {
            form.push_str(&format!("&{cell}={}", if cell == "low_low" { "p3" } else { "p1" }));
        }
        let r = s.post_form(&cookie, "/admin/priority-matrix", &form).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let m = s.app.priority_matrix().await.unwrap();
        use keel_domain::incident::{Impact, Priority, Urgency};
        assert_eq!((m.priority(Impact::Low, Urgency::Low), m.priority(Impact::Low, Urgency::High)), (Priority::P3, Priority::P1));
        let r = s.post_form(&cookie, "/admin/priority-matrix", &format!("_csrf={csrf}&high_high=p9")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        // agents cannot change either
        s.app
            .create_user(
                &s.admin,
                NewUser {
                    email: "agent2@keel.test".into(),
                    display_name: "Agent two".into(),
                    roles: vec![Role::ServiceDeskAgent],
                    password: Some("correct horse battery".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let (c2, csrf2) = s.browser_login("agent2@keel.test", "correct horse battery").await;
        let r = s.post_form(&c2, "/admin/categories", &format!("_csrf={csrf2}&code=X&name=X")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn typeahead_answers_within_scope_and_pages_offer_shortcuts() {
    for s in sites().await {
        s.app
            .create_user(
                &s.admin,
                NewUser {
                    email: "lookup@keel.test".into(),
                    display_name: "Lookup".into(),
                    roles: vec![Role::Administrator],
                    password: Some("correct horse battery".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let (cookie, _) = s.browser_login("lookup@keel.test", "correct horse battery").await;
        let r = s.page(&cookie, "/typeahead/contacts?q=contact").await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.text().contains("<option value=") && r.text().contains("contact@acme.test"), "{}", r.text());
        assert!(s.page(&cookie, "/typeahead/organizations?q=Bet").await.text().contains("Beta"));
        assert_eq!(s.page(&cookie, "/typeahead/nonsense?q=x").await.status, StatusCode::NOT_FOUND);
        let (contact, _) = s.browser_login("contact@acme.test", "correct horse battery").await;
        assert_eq!(s.page(&contact, "/typeahead/contacts?q=a").await.status, StatusCode::NOT_FOUND, "contacts do not look up people");
        assert_eq!(s.page(&contact, "/typeahead/categories?q=").await.status, StatusCode::OK);
        let queue = s.page(&cookie, "/incidents").await.text();
        assert!(queue.contains("/static/desk.js") && queue.contains("id=\"shortcuts\""), "the help overlay is on the queue");
        let js = s.send(Request::get("/static/desk.js").body(Body::empty()).unwrap()).await;
        assert_eq!(js.status, StatusCode::OK);
        assert!(js.header(header::CONTENT_TYPE).starts_with("text/javascript"));
    }
}

/// The option lists of the ticket and queue pages come from each process's copy, labelled with
/// the `desk_reference` counter: a change made through one instance shows on the next page
/// another instance renders, and a contact's page never lists the desk's teams or agents.
#[tokio::test]
async fn page_option_lists_follow_changes_made_through_another_instance() {
    for s in sites().await {
        let other = AppState {
            app: App::new(s.app.db.clone(), SecurityConfig::default()),
            cfg: Arc::new(WebConfig { max_body_bytes: 64 * 1024, ..Default::default() }),
            metrics: Some(metrics_handle()),
        };
        let two = keel_web::router(other);
        let page = |token: &str, path: &str| {
            let (two, token, path) = (two.clone(), token.to_string(), path.to_string());
            async move {
                let mut req =
                    Request::get(path.as_str()).header(header::AUTHORIZATION, format!("Bearer {token}")).body(Body::empty()).unwrap();
                req.extensions_mut().insert(ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 40000))));
                let res = two.oneshot(req).await.unwrap();
                assert_eq!(res.status(), StatusCode::OK, "{path}");
                String::from_utf8_lossy(&res.into_body().collect().await.unwrap().to_bytes()).into_owned()
            }
        };
        let admin = Some(s.admin_token.as_str());
        let ticket = s.ticket_a("Printer jams");
        let ticket = format!("/incidents/{}", ticket.await);
        let r = s.api(Method::POST, "/api/v1/teams", admin, Some(json!({ "name": "Night shift" })), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let team = r.json()["id"].as_str().unwrap().to_string();
        // the second instance has not read the lists yet, then holds them
        assert!(page(&s.agent_token, &ticket).await.contains("Night shift"));
        assert!(page(&s.agent_token, "/incidents").await.contains("Night shift"));
        // the team is renamed and an agent added through the first instance
        let r = s
            .api(Method::PATCH, &format!("/api/v1/teams/{team}"), admin, Some(json!({ "name": "Late shift" })), &[("if-match", "\"1\"")])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let zed = json!({ "email": "zed@keel.test", "display_name": "Zed Agent", "roles": ["service_desk_agent"] });
        let r = s.api(Method::POST, "/api/v1/users", admin, Some(zed), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        for path in [ticket.as_str(), "/incidents"] {
            let html = page(&s.agent_token, path).await;
            assert!(html.contains("Late shift") && !html.contains("Night shift"), "{path}: old team name");
            assert!(html.contains("Zed Agent"), "{path}: new agent missing");
        }
        // the customer's view of the same ticket lists no team nor agent
        let html = page(&s.contact_a_token, &ticket).await;
        assert!(!html.contains("Late shift") && !html.contains("Zed Agent"));
    }
}
