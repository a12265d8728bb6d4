//! Outbox pruning: rows go only when every follower is done with them, and a search index that
//! fell behind the pruned horizon rebuilds itself instead of missing records.

use super::*;
use keel_app::incidents::NewTicket;
use keel_app::search::{Search, SearchInput};

const DAY: i64 = 86_400_000;

async fn outbox_rows(app: &App, topic: &str) -> i64 {
    let mut c = app.read().await.unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE topic = $1").bind(topic).fetch_one(&mut *c).await.unwrap();
    n
}

async fn raise(app: &App, w: &World, title: &str) {
    let t = NewTicket {
        project_id: w.project_a.clone(),
        reporter_id: Some(w.contact_a.user_id.clone()),
        title: title.into(),
        ..Default::default()
    };
    app.create_ticket(&w.admin, t).await.unwrap();
}

async fn found(app: &App, w: &World, q: &str) -> usize {
    app.search_records(&w.admin, &SearchInput { q: q.into(), limit: 10, ..Default::default() }).await.unwrap().total
}

#[tokio::test]
async fn pruning_keeps_what_followers_need_and_a_lagging_index_rebuilds() {
    for t in TestDb::migrated_all().await {
        let dir = std::env::temp_dir().join(format!("keel-prune-{}", uuid::Uuid::new_v4().simple()));
        let (app, clock) = app_on(&t);
        let app = app.with_search(Search::at(&dir));
        let w = world(&app).await;
        app.rebuild_search_index(|_, _| {}).await.unwrap();
        raise(&app, &w, "打印机卡纸 printer jam").await;
        app.follow_outbox().await.unwrap();
        // this index's process is down while a ticket is raised and the outbox is pruned
        raise(&app, &w, "Core switch down 核心交换机").await;
        let announced = outbox_rows(&app, "announcement").await;
        assert!(announced > 0 && outbox_rows(&app, "record_changed").await > 0, "{}", t.label);
        assert_eq!(app.prune_outbox().await.unwrap(), 0, "{}: nothing is old enough", t.label);

        clock.0.fetch_add(8 * DAY, Ordering::SeqCst);
        assert!(app.prune_outbox().await.unwrap() > 0, "{}", t.label);
        assert_eq!(outbox_rows(&app, "record_changed").await, 0, "{}", t.label);
        assert_eq!(outbox_rows(&app, "announcement").await, announced, "{}: not dispatched yet, so kept", t.label);

        app.follow_outbox().await.unwrap();
        assert_eq!(found(&app, &w, "switch").await, 1, "{}: the rebuilt index holds the ticket whose row was pruned", t.label);
        assert_eq!(found(&app, &w, "printer").await, 1, "{}", t.label);

        // once dispatched, and behind the dispatcher's window, announcements go too
        app.dispatch_announcements().await.unwrap();
        assert_eq!(app.prune_outbox().await.unwrap(), 0, "{}: still inside the dispatcher's window", t.label);
        raise(&app, &w, "VPN 断开").await;
        app.dispatch_announcements().await.unwrap();
        assert_eq!(app.prune_outbox().await.unwrap(), announced as u64, "{}", t.label);
        assert!(outbox_rows(&app, "announcement").await > 0, "{}: the newest stay", t.label);
        let mut c = app.read().await.unwrap();
        let (marks,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM notification_dispatched d WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.id = d.announcement_id)",
        )
        .fetch_one(&mut *c)
        .await
        .unwrap();
        assert_eq!(marks, 0, "{}: dispatch marks go with their announcements", t.label);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
