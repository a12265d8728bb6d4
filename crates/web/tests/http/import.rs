//! Service desk: the incident import pages — dry-run report with bad rows by line, then the
//! import with its progress polled by the page; contacts have no import page.

use super::*;

const MAPPING: &str = r#"
[source]
name = "legacy"
missing = ["?"]
date_formats = ["%d/%m/%Y %H:%M"]

[fields]
external_ref = "id"
title = "subject"
status = "state"
opened_at = "opened"

[values.status]
"Open" = "new"
"#;

#[tokio::test]
async fn the_import_pages_check_then_import_with_progress() {
    for s in sites().await {
        let (cookie, csrf) = s.browser_login("agent@keel.test", "correct horse battery").await;
        let form = s.page(&cookie, "/incidents/import").await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.text());
        let html = form.text();
        assert!(html.contains("data-testid=\"import-form\"") && html.contains("servicenow-uci"), "the example mapping is offered");
        let project = {
            let i = html.find("<option value=\"").unwrap() + "<option value=\"".len();
            html[i..i + html[i..].find('"').unwrap()].to_string()
        };
        let post = |content: &str, mode: &str| {
            format!(
                "_csrf={}&project_id={}&mapping={}&content={}&mode={mode}",
                urlenc(&csrf),
                urlenc(&project),
                urlenc(MAPPING),
                urlenc(content)
            )
        };
        let bad =
            "id,subject,state,opened\nA-1,打印机卡纸,Open,3/2/2026 09:15\nA-2,VPN,Sleeping,3/2/2026 10:00\nA-3,Mail,Open,31/2/2026 10:00\n";
        let r = s.post_form(&cookie, "/incidents/import", &post(bad, "check")).await;
        assert_eq!(r.status, StatusCode::OK);
        let report = r.text();
        assert!(report.contains("data-testid=\"bad-rows\""), "{report}");
        assert!(report.contains("<td class=\"mono\">3</td>") && report.contains("Sleeping"), "line 3 and its reason");
        assert!(report.contains("<td class=\"mono\">4</td>") && report.contains("31/2/2026"), "line 4 and its reason");
        assert!(report.contains("打印机卡纸"), "the typed file is kept in the form");
        let admin = Some(s.admin_token.as_str());
        let count = |v: Value| v["items"].as_array().map(|a| a.len()).unwrap_or(0);
        assert_eq!(count(s.api(Method::GET, "/api/v1/incidents", admin, None, &[]).await.json()), 0, "a dry run writes nothing");

        let good = "id,subject,state,opened\nA-1,打印机卡纸,Open,3/2/2026 09:15\nA-2,VPN down,Open,3/2/2026 10:00\n";
        let r = s.post_form(&cookie, "/incidents/import", &post(good, "import")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let job = r.header(header::LOCATION);
        assert!(job.starts_with("/incidents/import/jobs/"), "{job}");
        let page = s.page(&cookie, &job).await;
        assert_eq!(page.status, StatusCode::OK);
        let mut done = String::new();
        for _ in 0..100 {
            done = s.page(&cookie, &format!("{job}/progress")).await.text();
            if !done.contains("hx-trigger") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(done.contains("Imported 2 tickets"), "{}: {done}", s._db.label);
        assert_eq!(count(s.api(Method::GET, "/api/v1/incidents", admin, None, &[]).await.json()), 2);
        // the job is its starter's only
        let (other, _) = s.browser_login("admin@keel.test", "correct horse battery").await;
        assert_eq!(s.page(&other, &format!("{job}/progress")).await.status, StatusCode::NOT_FOUND);
        let (contact, _) = s.browser_login("contact@acme.test", "correct horse battery").await;
        assert_eq!(s.page(&contact, "/incidents/import").await.status, StatusCode::FORBIDDEN);
    }
}
