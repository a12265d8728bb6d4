//! Configuration management: the impact analysis benchmark. Loads a generated estate of N CIs
//! (100,000 by default) with M relations (500,000) and measures `App::impact` — the use case the
//! API and the CI page call — downstream and upstream from random CIs, as an administrator (every
//! project visible) and as an agent of a few projects.
//!
//! The estate is layered like a real one: locations in regions, network devices, storage,
//! servers, virtual machines, databases, applications in groups of four per service (plus a
//! tier of shared platform applications the others depend on), business services depending
//! on shared technical services, supplier contracts underpinning services, and documents. Business CIs belong to 50 customers' projects,
//! infrastructure is shared.
//!
//! The bulk loader writes rows with multi-row INSERTs and skips validation, audit and outbox:
//! it exists only to make the data set fast and is never used by Keel itself.
//!
//! Then it times the incremental refresh of the cached graph: a CI or relation write through the
//! use cases followed by an impact request, in the writing process and in another one.
//!
//!     cargo run --release -p keel --bin keel-bench-cmdb -- --data-dir /tmp/kbc
//!     cargo run --release -p keel --bin keel-bench-cmdb -- --database-url postgres://…/empty_db

#[path = "../bench_stats.rs"]
mod bench_stats;

use anyhow::{Context, bail};
use clap::Parser;
use keel_app::directory::{OrganizationInput, ProjectInput};
use keel_app::users::NewUser;
use keel_app::{App, SecurityConfig};
use keel_domain::cmdb::Direction;
use keel_domain::identity::{AccountKind, Principal, Role};
use keel_store::{ConnectOptions, Db};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(name = "keel-bench-cmdb", about = "Loads a CMDB of N CIs and M relations and measures impact analysis")]
struct Args {
    /// Empty directory for the SQLite database (ignored with --database-url).
    #[arg(long, default_value = "keel-bench-cmdb-data")]
    data_dir: PathBuf,
    /// A PostgreSQL database to use instead (it must be empty).
    #[arg(long)]
    database_url: Option<String>,
    #[arg(long, default_value_t = 100_000)]
    cis: usize,
    #[arg(long, default_value_t = 500_000)]
    relations: usize,
    /// Samples per measurement.
    #[arg(long, default_value_t = 500)]
    samples: usize,
}

const PROJECTS: usize = 50;

struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The share of each class in the estate, in CIs per 100,000.
const MIX: [(&str, usize); 10] = [
    ("location", 500),
    ("network_device", 5_000),
    ("storage", 2_500),
    ("server", 15_000),
    ("virtual_machine", 40_000),
    ("database", 10_000),
    ("application", 20_000),
    ("service", 5_000),
    ("contract", 1_000),
    ("document", 1_000),
];

struct Estate {
    /// Per class (in MIX order): the range of CI numbers.
    ranges: Vec<std::ops::Range<usize>>,
    /// CI number → id, class, project index.
    cis: Vec<(String, &'static str, Option<usize>)>,
    relations: Vec<(usize, usize, &'static str)>,
}

impl Estate {
    fn class(&self, k: usize) -> std::ops::Range<usize> {
        self.ranges[k].clone()
    }
}

/// Generates the estate: every relation between CIs of the given classes, deduplicated.
fn generate(n: usize, m: usize) -> Estate {
    let mut dice = Dice(0x5eed_c0de_1234_5678);
    let mut ranges = Vec::new();
    let mut cis = Vec::with_capacity(n);
    let total: usize = MIX.iter().map(|(_, s)| s).sum();
    for (k, (class, share)) in MIX.iter().enumerate() {
        let count = if k == MIX.len() - 1 { n - cis.len() } else { (n * share / total).max(1) };
        let start = cis.len();
        for _ in 0..count {
            cis.push((keel_store::new_id(), *class, None));
        }
        ranges.push(start..cis.len());
    }
    let mut e = Estate { ranges, cis, relations: Vec::with_capacity(m) };
    let [loc, net, sto, srv, vm, db, app, svc, con, doc] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map(|k| e.class(k));
    // Business CIs belong to customers' projects: a service, its four applications and their
    // databases share one.
    for s in svc.clone() {
        e.cis[s].2 = Some((s - svc.start) % PROJECTS);
    }
    let group = |a: usize| (a - app.start) / 4 % svc.len();
    for a in app.clone() {
        e.cis[a].2 = Some(group(a) % PROJECTS);
    }
    for d in db.clone() {
        e.cis[d].2 = Some((d - db.start) % PROJECTS);
    }
    let mut seen: HashSet<(usize, usize, &'static str)> = HashSet::with_capacity(m);
    let mut rels: Vec<(usize, usize, &'static str)> = Vec::with_capacity(m);
    let mut add = |rels: &mut Vec<_>, s: usize, t: usize, kind: &'static str| {
        if s != t && rels.len() < m && seen.insert((s, t, kind)) {
            rels.push((s, t, kind));
        }
    };
    let pick = |dice: &mut Dice, r: &std::ops::Range<usize>| r.start + dice.below(r.len());
    // A CI's location: by its number, so layers line up within a site.
    let site = |i: usize, r: &std::ops::Range<usize>| (i - r.start) % loc.len();
    let in_site = |dice: &mut Dice, r: &std::ops::Range<usize>, s: usize| {
        let per = (r.len() / loc.len()).max(1);
        r.start + ((s + loc.len() * dice.below(per)) % r.len())
    };
    let regions = (loc.len() / 10).max(1);
    for l in loc.clone() {
        if l - loc.start >= regions {
            add(&mut rels, l, loc.start + (l - loc.start) % regions, "part_of");
        }
    }
    for r in [&net, &sto, &srv] {
        for i in r.clone() {
            add(&mut rels, i, loc.start + site(i, r), "hosted_in");
        }
    }
    for i in net.clone() {
        let s = site(i, &net);
        let other = in_site(&mut dice, &net, s);
        add(&mut rels, i.min(other), i.max(other), "connected_to");
    }
    for i in srv.clone() {
        let s = site(i, &srv);
        for _ in 0..2 {
            let d = in_site(&mut dice, &net, s);
            add(&mut rels, i, d, "depends_on");
        }
        let st = in_site(&mut dice, &sto, s);
        add(&mut rels, i, st, "depends_on");
    }
    for v in vm.clone() {
        let host = pick(&mut dice, &srv);
        add(&mut rels, v, host, "runs_on");
        let s = site(host, &srv);
        let st = in_site(&mut dice, &sto, s);
        add(&mut rels, v, st, "depends_on");
    }
    for d in db.clone() {
        for _ in 0..2 {
            let v = pick(&mut dice, &vm);
            add(&mut rels, d, v, "runs_on");
        }
    }
    let platform = app.start..app.start + (app.len() / 100).max(1);
    for a in app.clone() {
        for _ in 0..2 {
            let v = pick(&mut dice, &vm);
            add(&mut rels, a, v, "runs_on");
            let d = pick(&mut dice, &db);
            add(&mut rels, a, d, "depends_on");
        }
        let first = app.start + (a - app.start) / 4 * 4;
        for b in first..(first + 4).min(app.end) {
            add(&mut rels, a, b, "depends_on");
        }
        if !platform.contains(&a) {
            for _ in 0..2 {
                let p = pick(&mut dice, &platform);
                add(&mut rels, a, p, "depends_on");
            }
        }
        add(&mut rels, a, svc.start + group(a), "provides");
    }
    // Business services depend on shared technical services (identity, network, e-mail…).
    let shared = svc.start..svc.start + (svc.len() / 100).max(1);
    for s in svc.clone().filter(|s| !shared.contains(s)) {
        for _ in 0..2 {
            let o = pick(&mut dice, &shared);
            add(&mut rels, s, o, "depends_on");
        }
    }
    for c in con.clone() {
        let s = pick(&mut dice, &svc);
        add(&mut rels, c, s, "provides");
    }
    for d in doc.clone() {
        let a = pick(&mut dice, &app);
        add(&mut rels, d, a, "part_of");
    }
    // Up to M: supplier contracts underpinning more services (leaves upstream, so they widen
    // downstream analyses of contracts only).
    let mut tries = 0;
    while rels.len() < m && tries < 20 * m {
        tries += 1;
        let c = pick(&mut dice, &con);
        let s = pick(&mut dice, &svc);
        add(&mut rels, c, s, "provides");
    }
    e.relations = rels;
    e
}

fn insert_sql(table: &str, cols: &[&str], rows: usize) -> String {
    let mut s = format!("INSERT INTO {table} ({}) VALUES ", cols.join(", "));
    for r in 0..rows {
        s.push_str(if r == 0 { "(" } else { ", (" });
        let params: Vec<String> = (1..=cols.len()).map(|c| format!("${}", r * cols.len() + c)).collect();
        s.push_str(&params.join(", "));
        s.push(')');
    }
    s
}

async fn bulk_load(db: &Db, e: &Estate, projects: &[String], admin: &str, now: i64) -> anyhow::Result<()> {
    const CI_COLS: [&str; 8] = ["id", "class_key", "name", "status", "project_id", "attributes", "created_at", "updated_at"];
    const REL_COLS: [&str; 6] = ["id", "kind", "source_id", "target_id", "created_by", "created_at"];
    let mut tx = db.begin().await?;
    for (b, chunk) in e.cis.chunks(500).enumerate() {
        let sql = insert_sql("configuration_items", &CI_COLS, chunk.len());
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (i, (id, class, project)) in chunk.iter().enumerate() {
            let n = b * 500 + i;
            let name = format!("{}-{n:06}", class.replace('_', "-"));
            let attributes = match *class {
                "server" | "virtual_machine" | "network_device" => format!("{{\"hostname\":\"{name}\"}}"),
                _ => "{}".to_string(),
            };
            q = q
                .bind(id.clone())
                .bind(*class)
                .bind(name)
                .bind("live")
                .bind(project.map(|p| projects[p].clone()))
                .bind(attributes)
                .bind(now)
                .bind(now);
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    let mut tx = db.begin().await?;
    for (b, chunk) in e.relations.chunks(1000).enumerate() {
        let sql = insert_sql("ci_relations", &REL_COLS, chunk.len());
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (s, t, kind) in chunk {
            q = q
                .bind(keel_store::new_id())
                .bind(*kind)
                .bind(e.cis[*s].0.clone())
                .bind(e.cis[*t].0.clone())
                .bind(admin.to_string())
                .bind(now);
        }
        q.execute(&mut *tx).await?;
        if (b + 1) % 100 == 0 {
            tx.commit().await?;
            tx = db.begin().await?;
        }
    }
    keel_store::cmdb::bump_graph_generation(&mut tx).await?;
    tx.commit().await?;
    Ok(())
}

async fn principal(app: &App, id: &str) -> anyhow::Result<Principal> {
    let mut c = app.read().await?;
    let u = keel_store::accounts::get_user(&mut c, id).await?.context("user")?;
    Ok(keel_app::auth::principal_of(&mut c, &u).await?)
}

/// An administrator, an agent who is a member of five projects, and 50 customers' projects.
async fn set_up(app: &App) -> anyhow::Result<(Principal, Principal, Vec<String>)> {
    let sys = Principal::system();
    let user = |email: &str, roles: Vec<Role>| NewUser {
        kind: AccountKind::Staff,
        display_name: email.split('@').next().unwrap_or("x").to_string(),
        email: email.to_string(),
        roles,
        ..Default::default()
    };
    let admin = app.create_user(&sys, user("admin@bench.test", vec![Role::Administrator])).await?;
    let admin = principal(app, &admin.id).await?;
    let agent = app.create_user(&admin, user("agent@bench.test", vec![Role::ServiceDeskAgent])).await?;
    let mut projects = Vec::new();
    for o in 0..PROJECTS {
        let org = app
            .create_organization(
                &admin,
                OrganizationInput { name: format!("Customer {o:02} 客户"), code: format!("C{o:02}"), ..Default::default() },
            )
            .await?;
        let members = if o % 10 == 0 { vec![agent.id.clone()] } else { vec![] };
        let p = app
            .create_project(
                &admin,
                ProjectInput {
                    code: format!("P{o:02}"),
                    name: format!("Project {o:02}"),
                    organization_id: org.id,
                    member_ids: members,
                    ..Default::default()
                },
            )
            .await?;
        projects.push(p.id);
    }
    app.seed_cmdb_classes().await?;
    Ok((admin.clone(), principal(app, &agent.id).await?, projects))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let url = match &args.database_url {
        Some(u) => u.clone(),
        None => {
            if args.data_dir.exists() && std::fs::read_dir(&args.data_dir)?.next().is_some() {
                bail!("{} is not empty", args.data_dir.display());
            }
            std::fs::create_dir_all(&args.data_dir)?;
            keel_store::sqlite_url_for_dir(&std::path::absolute(&args.data_dir)?)
        }
    };
    let db = Db::connect(&url, &ConnectOptions::default()).await?;
    keel_store::migrate::run(&db).await?;
    let app = App::new(db.clone(), SecurityConfig::default());
    let (admin, agent, projects) = set_up(&app).await?;

    let t = Instant::now();
    let estate = generate(args.cis, args.relations);
    println!("generated {} CIs, {} relations: {:.1} s", estate.cis.len(), estate.relations.len(), t.elapsed().as_secs_f64());
    let t = Instant::now();
    bulk_load(&db, &estate, &projects, &admin.user_id, app.now()).await?;
    println!("bulk load: {:.1} s", t.elapsed().as_secs_f64());
    let mut tx = db.begin().await?;
    sqlx::query("ANALYZE").execute(&mut *tx).await?;
    tx.commit().await?;

    let t = Instant::now();
    app.cmdb_graph().await?;
    println!(
        "graph load after a write (first request): {:.2} s, peak memory {:.0} MB",
        t.elapsed().as_secs_f64(),
        bench_stats::peak_memory_mb(None).unwrap_or(0.0)
    );

    let mut dice = Dice(7);
    let agent_projects: HashSet<&str> = agent.project_ids.iter().map(String::as_str).collect();
    let visible_to_agent: Vec<usize> =
        (0..estate.cis.len()).filter(|&i| estate.cis[i].2.is_none_or(|p| agent_projects.contains(projects[p].as_str()))).collect();
    println!("| who | direction | max depth | samples | p50 ms | p99 ms | max ms | mean CIs reached | max CIs reached |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (who, actor, pool) in [("administrator", &admin, None), ("agent (5 of 50 projects)", &agent, Some(&visible_to_agent))] {
        for direction in [Direction::Downstream, Direction::Upstream] {
            for depth in [None, Some(3)] {
                let mut samples = Vec::with_capacity(args.samples);
                let mut reached = Vec::with_capacity(args.samples);
                for _ in 0..args.samples {
                    let i = match pool {
                        Some(p) => p[dice.below(p.len())],
                        None => dice.below(estate.cis.len()),
                    };
                    let t = Instant::now();
                    let r = app.impact(actor, &estate.cis[i].0, direction, depth).await?;
                    samples.push(t.elapsed());
                    reached.push(r.reached.len());
                }
                let mean = reached.iter().sum::<usize>() as f64 / reached.len().max(1) as f64;
                println!(
                    "| {who} | {direction:?} | {} | {} | {:.1} | {:.1} | {:.1} | {mean:.0} | {} |",
                    depth.map_or("none".to_string(), |d| d.to_string()),
                    samples.len(),
                    bench_stats::percentile_ms(&samples, 0.5),
                    bench_stats::percentile_ms(&samples, 0.99),
                    samples.iter().max().copied().unwrap_or(Duration::ZERO).as_secs_f64() * 1000.0,
                    reached.iter().max().copied().unwrap_or(0),
                );
            }
        }
    }
    incremental(&app, &db, &admin, &estate, args.samples.min(200)).await?;
    Ok(())
}

/// The cached graph kept current without a reload: a relation added or a CI moved between
/// live and maintenance through the use cases, then an impact request from the written CI.
/// The writing process applies its own change in memory after the commit; another process (a
/// second `App` on the same database, with its own copy) replays it from the `cmdb_graph`
/// change log on its next request. Both are timed, and neither may reload the graph.
async fn incremental(app: &App, db: &Db, admin: &Principal, estate: &Estate, samples: usize) -> anyhow::Result<()> {
    let other = App::new(db.clone(), SecurityConfig::default());
    println!();
    println!(
        "| impact request after a write, in | samples | write p50 ms | write p99 ms | impact p50 ms | impact p99 ms | full reloads | changes applied |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut dice = Dice(11);
    for (label, reader) in [("the writing process (applied after commit)", app), ("another process (replayed from the log)", &other)] {
        // the reader's copy is current before the first write (for the other process: its first load)
        reader.cmdb_graph().await?;
        let (reloads, applied) = reader.cmdb_graph.stats();
        let (mut writes, mut reads) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
        for i in 0..samples {
            let ci = &estate.cis[dice.below(estate.cis.len())].0;
            let t = Instant::now();
            if i % 2 == 0 {
                let target = estate.cis[dice.below(estate.cis.len())].0.clone();
                let input = keel_app::cmdb::RelationInput { kind: "connected_to".into(), source_id: ci.clone(), target_id: target };
                match app.add_relation(admin, input).await {
                    Ok(_) | Err(keel_app::AppError::Validation(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            } else {
                let now = app.get_ci(admin, ci).await?;
                let to = if now.status == "live" { "maintenance" } else { "live" };
                app.transition_ci(admin, ci, to, None).await?;
            }
            writes.push(t.elapsed());
            let t = Instant::now();
            reader.impact(admin, ci, Direction::Downstream, Some(3)).await?;
            reads.push(t.elapsed());
        }
        let (reloads_after, applied_after) = reader.cmdb_graph.stats();
        println!(
            "| {label} | {samples} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} |",
            bench_stats::percentile_ms(&writes, 0.5),
            bench_stats::percentile_ms(&writes, 0.99),
            bench_stats::percentile_ms(&reads, 0.5),
            bench_stats::percentile_ms(&reads, 0.99),
            reloads_after - reloads,
            applied_after - applied,
        );
        if reloads_after != reloads {
            bail!("{label}: the graph was reloaded {} times instead of being updated", reloads_after - reloads);
        }
    }
    Ok(())
}
