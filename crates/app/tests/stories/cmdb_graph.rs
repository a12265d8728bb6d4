//! Configuration management: the cached CI graph follows writes without reloading — the
//! writing instance applies its own changes, another instance replays the change log — and
//! after any sequence of writes equals a graph loaded afresh; a gap in the log reloads.

use super::cmdb::{ci, setup};
use super::*;
use keel_app::cmdb::{CiInput, RelationInput};
use keel_domain::cmdb::{Direction, RelationType};
use serde_json::json;

/// Deterministic pseudo-random numbers (xorshift64*), so a failing sequence can be replayed.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    }
}

struct Ci {
    id: String,
    class: &'static str,
    attributes: serde_json::Value,
    status: &'static str,
}

async fn same_as_fresh(app: &App, label: &str, step: &str) {
    let cached = app.cached_cmdb_graph().await.expect("a cached copy");
    let fresh = app.load_cmdb_graph().await.unwrap();
    assert_eq!(cached.generation, fresh.generation, "{label}, {step}: the copy is at the current generation");
    assert_eq!(cached.content(), fresh.content(), "{label}, {step}: the copy equals a fresh load");
}

#[tokio::test]
async fn the_cached_graph_follows_any_sequence_of_writes_without_reloading() {
    for seed in [0x9e37_79b9_7f4a_7c15u64, 0x1234_5678_9abc_def1] {
        for t in TestDb::migrated_all().await {
            let (one, w) = setup(&t).await;
            let other = App::new(t.db.clone(), SecurityConfig::default());
            let apps = [&one, &other];
            for app in apps {
                app.cmdb_graph().await.unwrap();
            }
            let mut dice = Dice(seed);
            let mut cis: Vec<Ci> = Vec::new();
            let mut relations: Vec<String> = Vec::new();
            let projects = [Some(w.project_a.clone()), Some(w.project_b.clone()), None];
            for step in 0..70 {
                let writer = apps[dice.below(2)];
                // the writer's copy is current before the write (replaying the other's writes) …
                writer.cmdb_graph().await.unwrap();
                let op = if cis.len() < 4 { 0 } else { dice.below(6) };
                let what = match op {
                    0 => {
                        let (class, attributes) = match dice.below(3) {
                            0 => ("server", json!({ "hostname": format!("h{step}") })),
                            1 => ("database", json!({ "engine": "postgresql" })),
                            _ => ("application", json!({})),
                        };
                        let project = projects[dice.below(3)].clone();
                        let c = ci(writer, &w.admin, class, &format!("ci {step}"), project.as_deref(), attributes.clone()).await;
                        cis.push(Ci { id: c.id, class, attributes, status: "planned" });
                        "create"
                    }
                    1 => {
                        let c = &cis[dice.below(cis.len())];
                        let input = CiInput {
                            class_key: c.class.into(),
                            name: format!("renamed {step}"),
                            project_id: projects[dice.below(3)].clone(),
                            attributes: c.attributes.clone(),
                            ..Default::default()
                        };
                        // a retired CI cannot be edited; the refusal changes nothing
                        let _ = writer.update_ci(&w.admin, &c.id, input, None).await;
                        "update"
                    }
                    2 => {
                        let i = dice.below(cis.len());
                        let c = &mut cis[i];
                        let next = match (c.status, dice.below(4)) {
                            ("retired", _) => None,
                            (_, 0) => Some("retired"),
                            ("planned", _) => Some("in_build"),
                            ("in_build", _) => Some("live"),
                            ("live", _) => Some("maintenance"),
                            _ => Some("live"),
                        };
                        if let Some(to) = next {
                            writer.transition_ci(&w.admin, &c.id, to, None).await.unwrap();
                            c.status = to;
                        }
                        "transition"
                    }
                    3 | 4 => {
                        let (a, b) = (&cis[dice.below(cis.len())], &cis[dice.below(cis.len())]);
                        let kind = RelationType::ALL[dice.below(RelationType::ALL.len())];
                        let input = RelationInput { kind: kind.as_str().into(), source_id: a.id.clone(), target_id: b.id.clone() };
                        // duplicates, part-of cycles and relations to retired CIs are refused
                        if let Ok(r) = writer.add_relation(&w.admin, input).await {
                            relations.push(r.id);
                        }
                        "relate"
                    }
                    _ => {
                        if !relations.is_empty() {
                            let r = relations.swap_remove(dice.below(relations.len()));
                            writer.remove_relation(&w.admin, &r).await.unwrap();
                        }
                        "unrelate"
                    }
                };
                // … so its own write is applied in memory, without a read
                same_as_fresh(writer, t.label, &format!("step {step} ({what})")).await;
                if dice.below(4) == 0 {
                    let reader = apps[dice.below(2)];
                    reader.cmdb_graph().await.unwrap();
                    same_as_fresh(reader, t.label, &format!("step {step}, replayed")).await;
                }
            }
            for app in apps {
                app.cmdb_graph().await.unwrap();
                same_as_fresh(app, t.label, "end").await;
                let (reloads, applied) = app.cmdb_graph.stats();
                assert_eq!(reloads, 1, "{}: only the first request loaded the graph", t.label);
                assert!(applied > 10, "{}: {applied} changes applied", t.label);
            }
            // impact analysis reads the same answers from both copies
            for c in &cis {
                let a = one.impact(&w.admin, &c.id, Direction::Downstream, None).await.unwrap();
                let b = other.impact(&w.admin, &c.id, Direction::Downstream, None).await.unwrap();
                let ids = |r: &keel_app::cmdb::ImpactResult| {
                    let mut v: Vec<(String, u32)> = r.reached.iter().map(|e| (e.ci.id.clone(), e.depth)).collect();
                    v.sort();
                    v
                };
                assert_eq!(ids(&a), ids(&b), "{}", t.label);
            }
        }
    }
}

#[tokio::test]
async fn a_gap_in_the_change_log_makes_the_copy_reload() {
    for t in TestDb::migrated_all().await {
        let (one, w) = setup(&t).await;
        let other = App::new(t.db.clone(), SecurityConfig::default());
        other.cmdb_graph().await.unwrap();
        let a = ci(&one, &w.admin, "application", "erp", Some(&w.project_a), json!({})).await;
        let b = ci(&one, &w.admin, "application", "crm", None, json!({})).await;
        // the outbox pruned the log before the other instance read it
        {
            let mut tx = t.db.begin().await.unwrap();
            sqlx::query("DELETE FROM outbox WHERE topic = 'cmdb_graph'").execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
        }
        other.cmdb_graph().await.unwrap();
        same_as_fresh(&other, t.label, "after the gap").await;
        assert_eq!(other.cmdb_graph.stats().0, 2, "{}: reloaded", t.label);

        // a bulk load bumps the counter without logging: every copy reloads
        one.add_relation(&w.admin, RelationInput { kind: "depends_on".into(), source_id: a.id.clone(), target_id: b.id.clone() })
            .await
            .unwrap();
        {
            let mut tx = t.db.begin().await.unwrap();
            keel_store::cmdb::bump_graph_generation(&mut tx).await.unwrap();
            tx.commit().await.unwrap();
        }
        other.cmdb_graph().await.unwrap();
        same_as_fresh(&other, t.label, "after a bulk load").await;
        assert_eq!(other.cmdb_graph.stats().0, 3, "{}: reloaded again", t.label);
        let r = other.impact(&w.admin, &b.id, Direction::Downstream, None).await.unwrap();
        assert_eq!(r.reached.iter().map(|e| e.ci.name.as_str()).collect::<Vec<_>>(), ["erp"], "{}", t.label);
    }
}
