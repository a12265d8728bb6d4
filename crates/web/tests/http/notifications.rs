//! Notifications over HTTP: administrators see the delivery log, edit templates (broken ones are
//! refused with their line, never saved) with a preview, and configure chat webhooks whose
//! secrets never come back; other staff are refused.

use super::*;

#[tokio::test]
async fn administrators_manage_templates_webhooks_and_deliveries() {
    for s in sites().await {
        let admin = Some(s.admin_token.as_str());
        let agent = Some(s.agent_token.as_str());
        assert_eq!(s.api(Method::GET, "/api/v1/notifications/deliveries", agent, None, &[]).await.status, StatusCode::FORBIDDEN);
        assert_eq!(s.api(Method::GET, "/api/v1/notifications/templates", agent, None, &[]).await.status, StatusCode::FORBIDDEN);
        let r = s.api(Method::GET, "/api/v1/notifications/deliveries?status=lost", admin, None, &[]).await;
        assert_eq!((r.status, r.json()["details"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("status")));

        // templates: the shipped default, a broken edit refused with its line, a good one saved
        let path = "/api/v1/notifications/templates/incident.resolved/zh-CN";
        let r = s.api(Method::GET, path, admin, None, &[]).await;
        assert_eq!((r.status, r.header(header::ETAG)), (StatusCode::OK, "\"0\"".to_string()));
        assert!(r.json()["subject"].as_str().unwrap().starts_with("已解决"));
        let broken = json!({"subject": "已解决 {{ number }}", "body_text": "第一行\n{{ title", "body_html": "<p>{{ title }}</p>"});
        let r = s.api(Method::PUT, path, admin, Some(broken.clone()), &[("If-Match", "\"0\"")]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        let d = &r.json()["details"][0];
        assert_eq!((d["field"].as_str(), d["code"].as_str()), (Some("body_text"), Some("template_error")));
        assert!(d["message"].as_str().unwrap().starts_with("line 2"), "{d}");
        assert_eq!(s.api(Method::GET, path, admin, None, &[]).await.json()["overridden"], false, "nothing saved");
        let good =
            json!({"subject": "已解决 {{ title }}", "body_text": "{{ recipient }}：{{ number }}", "body_html": "<p>{{ reply }}</p>"});
        assert_eq!(s.api(Method::PUT, path, admin, Some(good.clone()), &[]).await.status, StatusCode::PRECONDITION_REQUIRED);
        let r = s.api(Method::PUT, path, admin, Some(good.clone()), &[("If-Match", "\"0\"")]).await;
        assert_eq!((r.status, r.header(header::ETAG)), (StatusCode::OK, "\"1\"".to_string()), "{}", r.text());
        assert_eq!(
            s.api(Method::PUT, path, admin, Some(good.clone()), &[("If-Match", "\"0\"")]).await.status,
            StatusCode::PRECONDITION_FAILED
        );
        let r = s.api(Method::POST, "/api/v1/notifications/templates/preview", admin, Some(good), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["body_text"], "Li Lei：INC-000042");
        assert!(r.json()["body_html"].as_str().unwrap().contains("&lt;b&gt;"), "HTML is escaped");
        assert_eq!(
            s.api(Method::GET, "/api/v1/notifications/templates/incident.unknown/en", admin, None, &[]).await.status,
            StatusCode::NOT_FOUND
        );

        // webhooks: secrets are stored, never shown; bad input names its fields
        let r =
            s.api(Method::POST, "/api/v1/notifications/webhooks", admin, Some(json!({"name": "", "kind": "fax", "url": "x"})), &[]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let r = s
            .api(
                Method::POST,
                "/api/v1/notifications/webhooks",
                admin,
                Some(json!({"name": "运维群", "kind": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send?access_token=x", "secret": "SECabc", "event_kinds": ["incident.created"]})),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let hook = r.json();
        assert!(hook.get("secret").is_none() && hook["has_secret"] == true && !r.text().contains("SECabc"));
        let url = format!("/api/v1/notifications/webhooks/{}", hook["id"].as_str().unwrap());
        let r = s.api(Method::PATCH, &url, admin, Some(json!({"active": false})), &[("If-Match", "\"1\"")]).await;
        assert_eq!((r.status, r.json()["active"].as_bool(), r.json()["has_secret"].as_bool()), (StatusCode::OK, Some(false), Some(true)));
        assert_eq!(s.api(Method::GET, &url, agent, None, &[]).await.status, StatusCode::FORBIDDEN);

        // a project's own From address
        let projects = s.api(Method::GET, "/api/v1/projects?q=A1", admin, None, &[]).await.json();
        let sender = format!("/api/v1/notifications/projects/{}/sender", projects["items"][0]["id"].as_str().unwrap());
        assert_eq!(s.api(Method::GET, &sender, admin, None, &[]).await.json()["from"], Value::Null);
        let r = s.api(Method::PUT, &sender, admin, Some(json!({"from": "A1 Desk <a1@desk.example>"})), &[]).await;
        assert_eq!((r.status, r.json()["from"].as_str()), (StatusCode::OK, Some("A1 Desk <a1@desk.example>")));
        assert_eq!(s.api(Method::PUT, &sender, admin, Some(json!({"from": "nope"})), &[]).await.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(s.api(Method::PUT, &sender, agent, Some(json!({"from": null})), &[]).await.status, StatusCode::FORBIDDEN);

        // pages: the delivery log and a template edit that keeps the typed text and shows the error in place
        let (cookie, csrf) = s.browser_login("admin@keel.test", "correct horse battery").await;
        assert_eq!(s.page(&cookie, "/admin/notifications").await.status, StatusCode::OK);
        assert_eq!(s.page(&cookie, "/admin/notifications/webhooks").await.status, StatusCode::OK);
        assert_eq!(s.page(&cookie, &url.replace("/api/v1", "/admin")).await.status, StatusCode::OK);
        let form = format!(
            "_csrf={csrf}&name={}&kind=wecom&url={}&language=en&event_kinds=incident.closed&event_kinds=sla.breached&secret=",
            urlenc("企业微信群"),
            urlenc("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k")
        );
        let r = s.post_form(&cookie, "/admin/notifications/webhooks", &form).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let hooks = s.api(Method::GET, "/api/v1/notifications/webhooks", admin, None, &[]).await.json();
        let wecom = hooks.as_array().unwrap().iter().find(|h| h["kind"] == "wecom").unwrap().clone();
        assert_eq!((wecom["event_kinds"].as_array().unwrap().len(), wecom["active"].as_bool()), (2, Some(true)));
        let page = format!("/admin/notifications/webhooks/{}", wecom["id"].as_str().unwrap());
        let form = format!("_csrf={csrf}&_version=1&name=x&kind=wecom&url=nope&language=en&active=false");
        let r = s.post_form(&cookie, &page, &form).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "the bad URL is shown in place");
        assert!(r.text().contains("data-field=\"url\""));
        let form =
            format!("_csrf={csrf}&_version=1&name=x&kind=wecom&url={}&language=en&active=false", urlenc("https://qyapi.weixin.qq.com/x"));
        assert_eq!(s.post_form(&cookie, &page, &form).await.status, StatusCode::SEE_OTHER);
        assert_eq!(
            s.api(Method::GET, &format!("/api/v1/notifications/webhooks/{}", wecom["id"].as_str().unwrap()), admin, None, &[]).await.json()
                ["active"],
            false
        );
        let list = s.page(&cookie, "/admin/notifications/templates").await;
        assert!(list.text().contains("/admin/notifications/templates/sla.breached/zh-CN"));
        let form = format!("_csrf={csrf}&_version=0&subject={}&body_text={}&body_html=ok", urlenc("Hi <x>"), urlenc("a\n{% for %}"));
        let r = s.post_form(&cookie, "/admin/notifications/templates/incident.closed/en", &form).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        assert!(r.text().contains("line 2") && r.text().contains("Hi &#60;x&#62;"), "{}", r.text());
        let form = format!(
            "_csrf={csrf}&_version=0&subject={}&body_text=x&body_html=y&preview_only=false&preview_only=true",
            urlenc("Bye {{ number }}")
        );
        let r = s.post_form(&cookie, "/admin/notifications/templates/incident.closed/en", &form).await;
        assert!(r.text().contains("Bye INC-000042"), "preview: {}", r.text());
        assert_eq!(
            s.api(Method::GET, "/api/v1/notifications/templates/incident.closed/en", admin, None, &[]).await.json()["overridden"],
            false
        );
        let (agent_cookie, _) = s.browser_login("agent@keel.test", "correct horse battery").await;
        assert_eq!(s.page(&agent_cookie, "/admin/notifications/templates").await.status, StatusCode::FORBIDDEN);
    }
}

/// Webhook signing secrets are kept encrypted (the raw row is not the secret), an empty
/// secret keeps the stored one, a new one replaces it, and neither the API, the page nor the
/// audit trail shows it — encrypted or not — only whether one is set.
#[tokio::test]
async fn webhook_secrets_are_encrypted_at_rest_and_shown_only_as_set() {
    use keel_app::secrets::{is_sealed, webhook_context};
    for s in sites().await {
        let admin = Some(s.admin_token.as_str());
        let plain = "SEC-plain-webhook-secret-42";
        let body = json!({"name": "Ops", "kind": "generic", "url": "https://hooks.example/keel", "secret": plain});
        let r = s.api(Method::POST, "/api/v1/notifications/webhooks", admin, Some(body), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_string();
        async fn raw(app: &App, id: &str) -> String {
            let mut c = app.read().await.unwrap();
            keel_store::notifications::get_webhook(&mut c, id).await.unwrap().unwrap().secret.unwrap()
        }
        let stored = || raw(&s.app, &id);
        let first = stored().await;
        assert!(is_sealed(&first) && !first.contains(plain), "the raw row is encrypted: {first}");
        assert_eq!(s.app.secrets.open(&webhook_context(&id), &first).unwrap(), plain);

        let url = format!("/api/v1/notifications/webhooks/{id}");
        let r = s.api(Method::PATCH, &url, admin, Some(json!({"secret": "", "name": "Ops desk"})), &[("If-Match", "\"1\"")]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(stored().await, first, "an empty secret keeps the stored one");
        let r = s.api(Method::PATCH, &url, admin, Some(json!({"secret": "SEC-rotated-43"})), &[("If-Match", "\"2\"")]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let second = stored().await;
        assert!(second != first && is_sealed(&second));
        assert_eq!(s.app.secrets.open(&webhook_context(&id), &second).unwrap(), "SEC-rotated-43");

        let shown = |text: &str| text.contains(plain) || text.contains("SEC-rotated") || text.contains("enc:v1");
        for r in
            [s.api(Method::GET, &url, admin, None, &[]).await, s.api(Method::GET, "/api/v1/notifications/webhooks", admin, None, &[]).await]
        {
            assert!(!shown(&r.text()), "{}", r.text());
        }
        assert_eq!(s.api(Method::GET, &url, admin, None, &[]).await.json()["has_secret"], true);
        let history = s.app.history("notification_webhook", &id).await.unwrap();
        let trail = serde_json::to_string(&history).unwrap();
        assert!(!shown(&trail), "{trail}");
        let secret_changes: Vec<(Value, Value)> = history
            .iter()
            .flat_map(|h| h.changes.as_array().cloned().unwrap_or_default())
            .filter(|c| c["field"] == "secret")
            .map(|c| (c["old"].clone(), c["new"].clone()))
            .collect();
        assert_eq!(secret_changes, [(Value::Null, json!("set")), (json!("set"), json!("replaced"))], "{trail}");
        let (cookie, _) = s.browser_login("admin@keel.test", "correct horse battery").await;
        let page = s.page(&cookie, &format!("/admin/notifications/webhooks/{id}")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(!shown(&page.text()));
        assert!(
            page.text().contains("replaced (a new one was entered)") || page.text().contains("已更换（输入了新值）"),
            "{}",
            page.text()
        );
    }
}
