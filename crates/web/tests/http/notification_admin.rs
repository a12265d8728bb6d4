//! Notifications and jobs over HTTP (issue 4): administrators delete a webhook and reset a
//! template to the shipped text, each behind a confirmation page with CSRF and in the audit
//! trail; administrators override a built-in job's schedule; staff and customer contacts opt
//! out of notification kinds on their account page, never of the mandatory ones.

use super::*;

#[tokio::test]
async fn administrators_delete_webhooks_and_reset_templates_after_confirming() {
    for s in sites().await {
        let admin = Some(s.admin_token.as_str());
        let hook = json!({"name": "运维群", "kind": "feishu", "url": "https://open.feishu.cn/open-apis/bot/v2/hook/x"});
        let r = s.api(Method::POST, "/api/v1/notifications/webhooks", admin, Some(hook), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_string();
        let page = format!("/admin/notifications/webhooks/{id}");
        let (cookie, csrf) = s.browser_login("admin@keel.test", "correct horse battery").await;
        let (agent_cookie, agent_csrf) = s.browser_login("agent@keel.test", "correct horse battery").await;

        // the webhook page offers the deletion; the confirmation page posts with CSRF
        assert!(s.page(&cookie, &page).await.text().contains(&format!("{page}/delete")));
        let confirm = s.page(&format!("{cookie}; keel_lang=zh-CN"), &format!("{page}/delete")).await;
        assert_eq!(confirm.status, StatusCode::OK);
        assert!(confirm.text().contains("删除 Webhook") && confirm.text().contains("name=\"_csrf\""), "{}", confirm.text());
        assert!(s.page(&format!("{cookie}; keel_lang=en"), &format!("{page}/delete")).await.text().contains("Delete webhook"));
        assert_eq!(s.page(&agent_cookie, &format!("{page}/delete")).await.status, StatusCode::FORBIDDEN);
        assert_eq!(
            s.post_form(&agent_cookie, &format!("{page}/delete"), &format!("_csrf={agent_csrf}")).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(s.post_form(&cookie, &format!("{page}/delete"), "_csrf=forged").await.status, StatusCode::FORBIDDEN);
        let api = format!("/api/v1/notifications/webhooks/{id}");
        assert_eq!(s.api(Method::GET, &api, admin, None, &[]).await.status, StatusCode::OK, "still there");
        let r = s.post_form(&cookie, &format!("{page}/delete"), &format!("_csrf={csrf}")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert!(r.header(header::LOCATION).starts_with("/admin/notifications/webhooks?flash=webhook-deleted"));
        assert_eq!(s.api(Method::GET, &api, admin, None, &[]).await.status, StatusCode::NOT_FOUND);
        assert_eq!(s.post_form(&cookie, &format!("{page}/delete"), &format!("_csrf={csrf}")).await.status, StatusCode::NOT_FOUND);
        let history = s.app.history("notification_webhook", &id).await.unwrap();
        assert_eq!(history.last().unwrap().action, "delete", "the deletion is audited");

        // a template override is reset to the shipped text, only after confirming
        let tpl = "/admin/notifications/templates/incident.resolved/en";
        let api = "/api/v1/notifications/templates/incident.resolved/en";
        let shipped = s.api(Method::GET, api, admin, None, &[]).await.json()["subject"].clone();
        assert!(!s.page(&cookie, tpl).await.text().contains(&format!("{tpl}/reset")), "nothing to reset yet");
        let ours = json!({"subject": "Done: {{ title }}", "body_text": "{{ number }}", "body_html": "<p>{{ number }}</p>"});
        assert_eq!(s.api(Method::PUT, api, admin, Some(ours), &[("If-Match", "\"0\"")]).await.status, StatusCode::OK);
        assert!(s.page(&cookie, tpl).await.text().contains(&format!("{tpl}/reset")));
        let confirm = s.page(&format!("{cookie}; keel_lang=zh-CN"), &format!("{tpl}/reset")).await;
        assert!(confirm.text().contains("恢复为默认文本"), "{}", confirm.text());
        assert_eq!(s.page(&agent_cookie, &format!("{tpl}/reset")).await.status, StatusCode::FORBIDDEN);
        assert_eq!(s.post_form(&cookie, &format!("{tpl}/reset"), "_csrf=forged").await.status, StatusCode::FORBIDDEN);
        assert_eq!(s.api(Method::GET, api, admin, None, &[]).await.json()["overridden"], true);
        let r = s.post_form(&cookie, &format!("{tpl}/reset"), &format!("_csrf={csrf}")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let after = s.api(Method::GET, api, admin, None, &[]).await.json();
        assert_eq!((after["overridden"].as_bool(), &after["subject"]), (Some(false), &shipped));
        let history = s.app.history("notification_template", "incident.resolved/en").await.unwrap();
        assert_eq!(history.iter().map(|h| h.action.as_str()).collect::<Vec<_>>(), ["create", "delete"]);
        assert_eq!(s.page(&cookie, "/admin/notifications/templates/incident.nope/en/reset").await.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn administrators_override_a_jobs_schedule_and_bad_ones_are_refused_in_place() {
    for s in sites().await {
        let admin = Some(s.admin_token.as_str());
        let agent = Some(s.agent_token.as_str());
        let list = s.api(Method::GET, "/api/v1/job-schedules", admin, None, &[]).await.json();
        let esc = list.as_array().unwrap().iter().find(|j| j["kind"] == "sla_escalate").unwrap().clone();
        assert_eq!((esc["schedule"].as_str(), &esc["override"]), (Some("*/30 * * * * *"), &Value::Null));
        assert_eq!(s.api(Method::GET, "/api/v1/job-schedules", agent, None, &[]).await.status, StatusCode::FORBIDDEN);
        let path = "/api/v1/job-schedules/sla_escalate";
        assert_eq!(s.api(Method::PUT, path, agent, Some(json!({"schedule": "* * * * *"})), &[]).await.status, StatusCode::FORBIDDEN);
        let r = s.api(Method::PUT, path, admin, Some(json!({"schedule": "every minute"})), &[]).await;
        let d = &r.json()["details"][0];
        assert_eq!(
            (r.status, d["field"].as_str(), d["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("schedule"), Some("invalid_schedule"))
        );
        let r = s.api(Method::PUT, "/api/v1/job-schedules/nope", admin, Some(json!({"schedule": "* * * * *"})), &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = s.api(Method::PUT, path, admin, Some(json!({"schedule": "*/10  * * * * *"})), &[]).await;
        assert_eq!((r.status, r.json()["schedule"].as_str()), (StatusCode::OK, Some("*/10 * * * * *")), "{}", r.text());

        // the page: the schedules listed from the jobs page, a bad one shown in place with what was typed
        let (cookie, csrf) = s.browser_login("admin@keel.test", "correct horse battery").await;
        assert!(s.page(&cookie, "/admin/jobs").await.text().contains("/admin/jobs/schedules"));
        let list = s.page(&format!("{cookie}; keel_lang=zh-CN"), "/admin/jobs/schedules").await;
        assert!(list.text().contains("任务周期") && list.text().contains("*/10 * * * * *"), "{}", list.text());
        let page = "/admin/jobs/schedules/outbox_prune";
        let r = s.post_form(&cookie, page, &format!("_csrf={csrf}&schedule={}", urlenc("61 3 * * *"))).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().contains("data-field=\"schedule\"") && r.text().contains("61 3 * * *"), "{}", r.text());
        assert_eq!(s.post_form(&cookie, page, "_csrf=forged&schedule=").await.status, StatusCode::FORBIDDEN);
        let r = s.post_form(&cookie, page, &format!("_csrf={csrf}&schedule={}", urlenc("0 4 * * *"))).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let list = s.api(Method::GET, "/api/v1/job-schedules", admin, None, &[]).await.json();
        let prune = list.as_array().unwrap().iter().find(|j| j["kind"] == "outbox_prune").unwrap().clone();
        assert_eq!((prune["override"].as_str(), prune["default"].as_str()), (Some("0 4 * * *"), Some("41 3 * * *")));
        // emptied: the shipped schedule again
        assert_eq!(s.post_form(&cookie, page, &format!("_csrf={csrf}&schedule=")).await.status, StatusCode::SEE_OTHER);
        let r = s.api(Method::PUT, path, admin, Some(json!({"schedule": null})), &[]).await;
        assert_eq!((r.json()["schedule"].as_str(), &r.json()["override"]), (Some("*/30 * * * * *"), &Value::Null));
        let list = s.api(Method::GET, "/api/v1/job-schedules", admin, None, &[]).await.json();
        assert!(list.as_array().unwrap().iter().all(|j| j["override"].is_null()), "{list}");
        let history = s.app.history("setting", "job.schedule.outbox_prune").await.unwrap();
        assert_eq!(history.len(), 2, "each change is audited");
    }
}

#[tokio::test]
async fn staff_and_contacts_opt_out_of_notifications_but_not_of_mandatory_ones() {
    for s in sites().await {
        let path = "/api/v1/me/notifications";
        for token in [s.agent_token.as_str(), s.contact_a_token.as_str()] {
            let me = Some(token);
            let prefs = s.api(Method::GET, path, me, None, &[]).await.json();
            let breached = prefs.as_array().unwrap().iter().find(|p| p["event_kind"] == "sla.breached").unwrap().clone();
            assert_eq!((breached["mandatory"].as_bool(), breached["subscribed"].as_bool()), (Some(true), Some(true)));
            let r = s.api(Method::PUT, path, me, Some(json!({"opt_outs": ["incident.resolved", "sla.breached"]})), &[]).await;
            let d = &r.json()["details"][0];
            assert_eq!(
                (r.status, d["field"].as_str(), d["code"].as_str()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some("opt_outs"), Some("mandatory_notification"))
            );
            let r = s.api(Method::PUT, path, me, Some(json!({"opt_outs": ["incident.nope"]})), &[]).await;
            assert_eq!((r.status, r.json()["details"][0]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_choice")));
            assert!(s.api(Method::GET, path, me, None, &[]).await.json().as_array().unwrap().iter().all(|p| p["subscribed"] == true));
            let r = s.api(Method::PUT, path, me, Some(json!({"opt_outs": ["incident.resolved", "sla.warning"]})), &[]).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            let prefs = r.json();
            let off: Vec<&str> =
                prefs.as_array().unwrap().iter().filter(|p| p["subscribed"] == false).map(|p| p["event_kind"].as_str().unwrap()).collect();
            assert_eq!(off, ["incident.resolved", "sla.warning"]);
        }
        assert_eq!(s.api(Method::GET, path, None, None, &[]).await.status, StatusCode::UNAUTHORIZED);

        // the account page, in both languages, keeps the choice and refuses a mandatory kind in place
        let (cookie, csrf) = s.browser_login("contact@acme.test", "correct horse battery").await;
        assert!(s.page(&cookie, "/profile").await.text().contains("/profile/notifications"));
        let zh = s.page(&format!("{cookie}; keel_lang=zh-CN"), "/profile/notifications").await.text();
        assert!(zh.contains("不要通过邮件通知我") && zh.contains("始终发送") && zh.contains("重大事件通报"), "{zh}");
        let en = s.page(&format!("{cookie}; keel_lang=en"), "/profile/notifications").await.text();
        assert!(en.contains("Do not email me about") && en.contains("value=\"incident.resolved\" selected"), "{en}");
        assert!(!en.contains("value=\"sla.breached\""), "a mandatory kind is not offered");
        let r =
            s.post_form(&cookie, "/profile/notifications", &format!("_csrf={csrf}&opt_outs=incident.closed&opt_outs=sla.breached")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().contains("data-field=\"opt_outs\"") && r.text().contains("value=\"incident.closed\" selected"), "{}", r.text());
        assert_eq!(s.post_form(&cookie, "/profile/notifications", "opt_outs=incident.closed").await.status, StatusCode::FORBIDDEN);
        let r = s.post_form(&cookie, "/profile/notifications", &format!("_csrf={csrf}&opt_outs=incident.closed")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let prefs = s.api(Method::GET, path, Some(s.contact_a_token.as_str()), None, &[]).await.json();
        let off: Vec<&str> =
            prefs.as_array().unwrap().iter().filter(|p| p["subscribed"] == false).map(|p| p["event_kind"].as_str().unwrap()).collect();
        assert_eq!(off, ["incident.closed"]);
    }
}
