//! Service desk and incident management: the million-ticket benchmark. Loads a generated desk
//! (200 customers with a project each, 50 resolver groups, 100 agents, N incidents in Chinese and
//! English, 20 comments per 100 tickets) and measures the queries an agent's day is made of.
//!
//! The bulk loader writes tickets, comments and the status and priority logs with multi-row
//! INSERTs of SQL literals in large transactions, with the secondary indexes dropped and built
//! once at the end; it skips the audit trail and the outbox. It exists only to make the data
//! set fast and is never used by Keel itself. Everything measured goes through the ordinary
//! use cases.
//!
//!     cargo run --release -p keel --bin keel-bench -- --data-dir /tmp/bench --tickets 1000000
//!
//! With `--search` it loads nothing: on a data set it loaded before (and indexed with
//! `keel reindex`, or here when there is no index yet) it measures full-text search.
//!
//!     target/release/keel-bench --data-dir /tmp/bench --search

#[path = "../bench_stats.rs"]
mod bench_stats;

use anyhow::{Context, bail};
use clap::Parser;
use keel_app::directory::{OrganizationInput, ProjectInput, TeamInput};
use keel_app::incidents::{NewTicket, Queue, TransitionInput};
use keel_app::users::NewUser;
use keel_app::{App, SecurityConfig};
use keel_domain::identity::{AccountKind, Principal, Role};
use keel_store::incidents::TicketFilter;
use keel_store::page::{PageRequest, SortKey, SortKind};
use keel_store::{Backend, ConnectOptions, Db};
use sqlx::Row;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(name = "keel-bench", about = "Loads N incidents and measures the service desk's queries")]
struct Args {
    /// Empty directory for the SQLite database (ignored with --database-url).
    #[arg(long, default_value = "keel-bench-data")]
    data_dir: PathBuf,
    /// A PostgreSQL database to use instead (it must be empty).
    #[arg(long)]
    database_url: Option<String>,
    #[arg(long, default_value_t = 1_000_000)]
    tickets: usize,
    /// Samples per measurement.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Measure search over the data set already in --data-dir / --database-url instead of
    /// loading one: one- and two-word queries with facets as administrator, agents, contacts.
    #[arg(long)]
    search: bool,
    /// The search index directory (default: <data-dir>/search, as `keel serve` uses).
    #[arg(long)]
    search_dir: Option<PathBuf>,
}

const ORGS: usize = 200;
const TEAMS: usize = 50;
const AGENTS: usize = 100;
const BATCH: usize = 500;

const PRIORITY: SortKey = SortKey { name: "priority", column: "t.priority", kind: SortKind::TextNotNull };
const UPDATED: SortKey = SortKey { name: "updated_at", column: "t.updated_at", kind: SortKind::IntNotNull };

const ZH: [&str; 12] = [
    "打印机卡纸，无法打印",
    "VPN 连接频繁断开",
    "邮箱容量已满，无法收信",
    "ERP 系统登录缓慢",
    "新员工入职需要开通账号",
    "会议室投影仪无信号",
    "OA 审批流程卡在部门经理节点",
    "无线网络信号弱，经常掉线",
    "电脑蓝屏，提示内存错误",
    "共享盘无法访问",
    "服务器磁盘空间告警",
    "数据库备份任务失败",
];
const EN: [&str; 12] = [
    "Cannot connect to the VPN from home",
    "Outlook does not sync the calendar",
    "Password expired, account locked",
    "Laptop overheats and shuts down",
    "Request access to the finance share",
    "Website returns 502 Bad Gateway",
    "Printer on floor 3 is offline",
    "Slow response in the CRM",
    "New starter needs a laptop and accounts",
    "Backup job failed overnight",
    "Wi-Fi drops in meeting room B",
    "Excel export shows garbled characters",
];

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

struct Desk {
    admin: Principal,
    agents: Vec<Principal>,
    /// Per team: its id and its agents' ids.
    teams: Vec<(String, Vec<String>)>,
    /// Per project: id, organisation, the two teams serving it, a contact.
    projects: Vec<(String, String, [usize; 2], String)>,
    categories: Vec<String>,
}

async fn principal(app: &App, id: &str) -> anyhow::Result<Principal> {
    let mut c = app.read().await?;
    let u = keel_store::accounts::get_user(&mut c, id).await?.context("user")?;
    Ok(keel_app::auth::principal_of(&mut c, &u).await?)
}

async fn set_up(app: &App) -> anyhow::Result<Desk> {
    let sys = Principal::system();
    let user = |email: String, kind: AccountKind, org: Option<String>, roles: Vec<Role>| NewUser {
        kind,
        display_name: email.split('@').next().unwrap_or("x").to_string(),
        email,
        organization_id: org,
        password: None,
        roles,
        ..Default::default()
    };
    let admin = app.create_user(&sys, user("admin@bench.test".into(), AccountKind::Staff, None, vec![Role::Administrator])).await?;
    let admin = principal(app, &admin.id).await?;
    let mut agent_ids = Vec::new();
    for i in 0..AGENTS {
        let u =
            app.create_user(&admin, user(format!("agent{i}@bench.test"), AccountKind::Staff, None, vec![Role::ServiceDeskAgent])).await?;
        agent_ids.push(u.id);
    }
    let mut teams = Vec::new();
    for t in 0..TEAMS {
        let members = vec![agent_ids[2 * t].clone(), agent_ids[2 * t + 1].clone()];
        let team = app
            .create_team(&admin, TeamInput { name: format!("Team {t:02} 小组"), member_ids: members.clone(), ..Default::default() })
            .await?;
        teams.push((team.id, members));
    }
    let mut categories = Vec::new();
    for c in ["HARDWARE", "SOFTWARE", "NETWORK", "ACCESS", "EMAIL", "APPLICATION"] {
        let k = app
            .create_category(&admin, keel_app::incidents::CategoryInput { code: c.into(), name: c.into(), ..Default::default() })
            .await?;
        categories.push(k.id);
    }
    let mut projects = Vec::new();
    for o in 0..ORGS {
        let org = app
            .create_organization(
                &admin,
                OrganizationInput { name: format!("Customer {o:03} 客户"), code: format!("C{o:03}"), ..Default::default() },
            )
            .await?;
        let serving = [o % TEAMS, (o + 7) % TEAMS];
        let members: Vec<String> = serving.iter().flat_map(|t| teams[*t].1.clone()).collect();
        let p = app
            .create_project(
                &admin,
                ProjectInput {
                    code: format!("P{o:03}"),
                    name: format!("Project {o:03}"),
                    organization_id: org.id.clone(),
                    member_ids: members,
                    ..Default::default()
                },
            )
            .await?;
        let contact =
            app.create_user(&admin, user(format!("contact{o}@c{o}.test"), AccountKind::Contact, Some(org.id.clone()), vec![])).await?;
        projects.push((p.id, org.id, serving, contact.id));
    }
    let mut agents = Vec::new();
    for id in &agent_ids {
        agents.push(principal(app, id).await?);
    }
    Ok(Desk { admin, agents, teams, projects, categories })
}

const TICKET_COLS: [&str; 24] = [
    "id",
    "number",
    "kind",
    "project_id",
    "organization_id",
    "reporter_id",
    "created_by",
    "title",
    "description",
    "channel",
    "category_id",
    "impact",
    "urgency",
    "priority",
    "status",
    "pending_reason",
    "team_id",
    "agent_id",
    "resolution_code",
    "resolved_by",
    "status_changed_at",
    "resolved_at",
    "created_at",
    "updated_at",
];

#[derive(Clone)]
enum V {
    T(String),
    O(Option<String>),
    I(i64),
    OI(Option<i64>),
}

/// Where the loader's rows go. SQLite takes multi-row `INSERT`s of SQL literals inside a pool
/// transaction; PostgreSQL takes `COPY … FROM STDIN` (text format) on a connection of its own,
/// because the `Any` pool does not expose `copy_in_raw` and PostgreSQL parses and plans every
/// literal `INSERT` (802 s for the 1M set, against 53 s on SQLite).
enum Sink {
    Sqlite(keel_store::Tx),
    Postgres(sqlx::PgConnection),
}

impl Sink {
    async fn open(db: &Db, url: &str) -> anyhow::Result<Sink> {
        Ok(match db.backend() {
            Backend::Sqlite => Sink::Sqlite(db.begin().await?),
            Backend::Postgres => {
                use sqlx::Connection;
                let mut c = sqlx::PgConnection::connect(url).await?;
                sqlx::query("SET maintenance_work_mem = '256MB'").execute(&mut c).await?;
                let mut sink = Sink::Postgres(c);
                sink.begin_pg().await?;
                sink
            }
        })
    }

    async fn begin_pg(&mut self) -> anyhow::Result<()> {
        if let Sink::Postgres(c) = self {
            sqlx::query("BEGIN").execute(&mut *c).await?;
            // Referential checks row by row are the slowest part on PostgreSQL; the generator
            // only refers to rows it has just written.
            sqlx::query("SET LOCAL session_replication_role = replica").execute(&mut *c).await?;
            sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *c).await?;
        }
        Ok(())
    }

    /// Commits what was written and opens the next transaction. The old transaction ends
    /// before the next begins: SQLite's writer pool has one connection.
    async fn commit_and_continue(self, db: &Db) -> anyhow::Result<Sink> {
        Ok(match self {
            Sink::Sqlite(tx) => {
                tx.commit().await?;
                Sink::Sqlite(db.begin().await?)
            }
            Sink::Postgres(mut c) => {
                sqlx::query("COMMIT").execute(&mut c).await?;
                let mut sink = Sink::Postgres(c);
                sink.begin_pg().await?;
                sink
            }
        })
    }

    async fn commit(self) -> anyhow::Result<()> {
        match self {
            Sink::Sqlite(tx) => tx.commit().await?,
            Sink::Postgres(mut c) => {
                sqlx::query("COMMIT").execute(&mut c).await?;
            }
        }
        Ok(())
    }

    async fn execute(&mut self, sql: String) -> anyhow::Result<()> {
        match self {
            Sink::Sqlite(tx) => {
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut **tx).await?;
            }
            Sink::Postgres(c) => {
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *c).await?;
            }
        }
        Ok(())
    }

    fn copies(&self) -> bool {
        matches!(self, Sink::Postgres(_))
    }
}

/// Rows of one table collected as text and written in one statement: as SQL literals of one
/// multi-row `INSERT`, or as the text format of `COPY`. The values never pass through sqlx's
/// `Any` argument conversion, which dominated the load time.
struct Batch {
    table: &'static str,
    cols: &'static [&'static str],
    copy: bool,
    values: String,
    rows: usize,
}

impl Batch {
    fn new(table: &'static str, cols: &'static [&'static str], sink: &Sink) -> Batch {
        Batch { table, cols, copy: sink.copies(), values: String::new(), rows: 0 }
    }

    fn push(&mut self, row: &[V]) {
        debug_assert_eq!(row.len(), self.cols.len());
        if self.copy {
            for (i, v) in row.iter().enumerate() {
                if i > 0 {
                    self.values.push('\t');
                }
                match v {
                    V::T(t) | V::O(Some(t)) => copy_text(&mut self.values, t),
                    V::I(n) | V::OI(Some(n)) => self.values.push_str(&n.to_string()),
                    V::O(None) | V::OI(None) => self.values.push_str("\\N"),
                }
            }
            self.values.push('\n');
        } else {
            self.values.push_str(if self.rows == 0 { "(" } else { ", (" });
            for (i, v) in row.iter().enumerate() {
                if i > 0 {
                    self.values.push_str(", ");
                }
                match v {
                    V::T(t) | V::O(Some(t)) => {
                        self.values.push('\'');
                        self.values.push_str(&t.replace('\'', "''"));
                        self.values.push('\'');
                    }
                    V::I(n) | V::OI(Some(n)) => self.values.push_str(&n.to_string()),
                    V::O(None) | V::OI(None) => self.values.push_str("NULL"),
                }
            }
            self.values.push(')');
        }
        self.rows += 1;
    }

    async fn flush(&mut self, sink: &mut Sink) -> anyhow::Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        match sink {
            Sink::Postgres(c) => {
                let sql = format!("COPY {} ({}) FROM STDIN", self.table, self.cols.join(", "));
                let mut copy = c.copy_in_raw(&sql).await?;
                copy.send(self.values.as_bytes()).await?;
                copy.finish().await?;
            }
            Sink::Sqlite(_) => {
                sink.execute(format!("INSERT INTO {} ({}) VALUES {}", self.table, self.cols.join(", "), self.values)).await?;
            }
        }
        self.values.clear();
        self.rows = 0;
        Ok(())
    }
}

/// A value in `COPY`'s text format: backslash, tab, newline and carriage return escaped.
fn copy_text(out: &mut String, t: &str) {
    for ch in t.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

const LOADED_TABLES: [&str; 4] = ["tickets", "ticket_comments", "ticket_status_log", "ticket_priority_log"];

/// The secondary indexes of the loaded tables as (name, CREATE statement): dropped before the
/// load and built once after it, which is far cheaper than maintaining them row by row.
async fn secondary_indexes(db: &Db) -> anyhow::Result<Vec<(String, String)>> {
    let list = LOADED_TABLES.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ");
    let sql = match db.backend() {
        Backend::Sqlite => {
            format!("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({list}) ORDER BY name")
        }
        Backend::Postgres => format!(
            "SELECT indexname::text AS name, indexdef AS sql FROM pg_indexes WHERE schemaname = current_schema() AND tablename IN ({list}) \
             AND indexname NOT IN (SELECT conname FROM pg_constraint) ORDER BY indexname"
        ),
    };
    let mut c = db.reader().acquire().await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *c).await?;
    rows.iter().map(|r| Ok((r.try_get::<String, _>("name")?, r.try_get::<String, _>("sql")?))).collect()
}

/// The bench-only bulk loader.
async fn bulk_load(db: &Db, url: &str, desk: &Desk, n: usize, now: i64) -> anyhow::Result<()> {
    const TICKETS_PER_TX: usize = 100_000;
    let indexes = secondary_indexes(db).await?;
    let mut tx = db.begin().await?;
    for (name, _) in &indexes {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX {name}"))).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    let mut dice = Dice(0x0b5e_55ed_1234_5678);
    let mut sink = Sink::open(db, url).await?;
    let mut tickets = Batch::new("tickets", &TICKET_COLS, &sink);
    let mut comments =
        Batch::new("ticket_comments", &["id", "ticket_id", "visibility", "body", "author_id", "author_kind", "created_at"], &sink);
    let mut statuses = Batch::new(
        "ticket_status_log",
        &["id", "ticket_id", "seq", "at", "from_status", "to_status", "pending_reason", "sla_status", "action", "actor_id"],
        &sink,
    );
    let mut priorities = Batch::new("ticket_priority_log", &["id", "ticket_id", "seq", "at", "priority", "actor_id"], &sink);
    let levels = ["high", "medium", "medium", "low", "low"];
    let started = Instant::now();
    for i in 0..n {
        // Larger customers first: a skewed choice of project.
        let r = dice.below(1 << 20) as f64 / f64::from(1 << 20);
        let p = &desk.projects[((r * r) * ORGS as f64) as usize % ORGS];
        let roll = dice.below(100);
        let status = match roll {
            0..70 => "closed",
            70..78 => "resolved",
            78..83 => "new",
            83..88 => "assigned",
            88..96 => "in_progress",
            _ => "pending",
        };
        let (team, agent) = if status == "new" {
            (None, None)
        } else {
            let t = &desk.teams[p.2[dice.below(2)]];
            let agent = if status == "assigned" && dice.below(2) == 0 { None } else { Some(t.1[dice.below(2)].clone()) };
            (Some(t.0.clone()), agent)
        };
        let created = now - (dice.below(3 * 365 * 24 * 60) as i64) * 60_000;
        let updated = created + (dice.below(5 * 24 * 60) as i64) * 60_000;
        let (impact, urgency) = (levels[dice.below(5)], levels[dice.below(5)]);
        let priority = keel_domain::incident::PriorityMatrix::default()
            .priority(
                keel_domain::incident::Impact::parse(impact).unwrap_or(keel_domain::incident::Impact::Low),
                keel_domain::incident::Urgency::parse(urgency).unwrap_or(keel_domain::incident::Urgency::Low),
            )
            .as_str();
        let chinese = dice.below(2) == 0;
        let title = if chinese { ZH[dice.below(ZH.len())] } else { EN[dice.below(EN.len())] };
        let done = matches!(status, "resolved" | "closed");
        let id = keel_store::new_id();
        let admin = desk.admin.user_id.clone();
        tickets.push(&[
            V::T(id.clone()),
            V::T(format!("INC-{:06}", i + 1)),
            V::T("incident".into()),
            V::T(p.0.clone()),
            V::T(p.1.clone()),
            V::T(p.3.clone()),
            V::T(admin.clone()),
            V::T(format!("{title} #{i}")),
            V::O(Some(if chinese {
                format!("{title}，请尽快处理。工单 {i}。")
            } else {
                format!("{title}. Reported as ticket {i}.")
            })),
            V::T(["portal", "email", "phone"][dice.below(3)].into()),
            V::O(Some(desk.categories[dice.below(desk.categories.len())].clone())),
            V::T(impact.into()),
            V::T(urgency.into()),
            V::T(priority.into()),
            V::T(status.into()),
            V::O((status == "pending").then(|| "waiting_for_customer".to_string())),
            V::O(team),
            V::O(agent),
            V::O(done.then(|| "solved".to_string())),
            V::O(done.then(|| "system".to_string())),
            V::I(updated),
            V::OI(done.then_some(updated)),
            V::I(created),
            V::I(updated),
        ]);
        // The status log the SLA clock reads: opened, then the current status when it moved.
        let log = |seq: i64, at: i64, from: Option<&str>, to: &str, action: Option<&str>| {
            let sla = if to == "pending" { "pending_customer" } else { to };
            [
                V::T(keel_store::new_id()),
                V::T(id.clone()),
                V::I(seq),
                V::I(at),
                V::O(from.map(str::to_string)),
                V::T(to.into()),
                V::O((to == "pending").then(|| "waiting_for_customer".to_string())),
                V::T(sla.into()),
                V::O(action.map(str::to_string)),
                V::T(admin.clone()),
            ]
        };
        statuses.push(&log(1, created, None, "new", None));
        if status != "new" {
            statuses.push(&log(2, updated, Some("new"), status, Some("bulk")));
        }
        priorities.push(&[
            V::T(keel_store::new_id()),
            V::T(id.clone()),
            V::I(1),
            V::I(created),
            V::T(priority.into()),
            V::T(admin.clone()),
        ]);
        if dice.below(100) < 20 {
            comments.push(&[
                V::T(keel_store::new_id()),
                V::T(id),
                V::T(if dice.below(3) == 0 { "internal" } else { "public" }.into()),
                V::T(if chinese { "已收到，正在处理。".into() } else { "Thanks, we are looking into it.".into() }),
                V::T(admin),
                V::T("staff".into()),
                V::I(updated),
            ]);
        }
        if tickets.rows == BATCH || i + 1 == n {
            // Tickets first: the other rows refer to them.
            for b in [&mut tickets, &mut comments, &mut statuses, &mut priorities] {
                b.flush(&mut sink).await?;
            }
        }
        if (i + 1) % TICKETS_PER_TX == 0 {
            sink = sink.commit_and_continue(db).await?;
            eprint!("\rloaded {} tickets ({:.0}/s)", i + 1, (i + 1) as f64 / started.elapsed().as_secs_f64());
        }
    }
    sink.commit().await?;
    let mut tx = db.begin().await?;
    sqlx::query("INSERT INTO counters (name, value) VALUES ('INC', $1) ON CONFLICT (name) DO UPDATE SET value = $1")
        .bind(n as i64)
        .execute(&mut *tx)
        .await?;
    // the rows went in without `insert_ticket`, so the queue counters are recounted
    keel_store::incidents::rebuild_queue_counters(&mut tx).await?;
    tx.commit().await?;
    eprintln!();
    let rows_done = started.elapsed();
    let t = Instant::now();
    // On PostgreSQL the indexes are built on the loader's own connection, which has a larger
    // `maintenance_work_mem` than the stock 64 MB.
    let mut sink = Sink::open(db, url).await?;
    for (_, create) in &indexes {
        sink.execute(create.clone()).await?;
    }
    sink.commit().await?;
    println!(
        "  rows {:.1} s, then {} secondary indexes rebuilt in {:.1} s",
        rows_done.as_secs_f64(),
        indexes.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

struct Stat {
    name: String,
    samples: Vec<Duration>,
}

impl Stat {
    fn pct(&self, p: f64) -> f64 {
        bench_stats::percentile_ms(&self.samples, p)
    }
}

const ONE_WORD: [&str; 20] = [
    "打印机",
    "VPN",
    "邮箱",
    "ERP",
    "账号",
    "投影仪",
    "网络",
    "蓝屏",
    "共享盘",
    "数据库",
    "printer",
    "calendar",
    "password",
    "laptop",
    "finance",
    "gateway",
    "CRM",
    "backup",
    "excel",
    "overheats",
];
const TWO_WORDS: [&str; 20] = [
    "打印机 卡纸",
    "VPN 断开",
    "邮箱 容量",
    "ERP 登录",
    "员工 账号",
    "投影仪 信号",
    "无线 掉线",
    "蓝屏 内存",
    "共享盘 访问",
    "磁盘 告警",
    "printer offline",
    "outlook calendar",
    "password expired",
    "laptop overheats",
    "finance share",
    "502 gateway",
    "slow CRM",
    "backup failed",
    "excel export",
    "meeting room",
];

fn dir_bytes(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|d| {
            d.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

async fn user_named(app: &App, email: &str) -> anyhow::Result<Principal> {
    let mut c = app.read().await?;
    let u = keel_store::accounts::get_user_by_email(&mut c, email).await?.with_context(|| format!("{email}: load a data set first"))?;
    drop(c);
    principal(app, &u.id).await
}

/// Full-text search over a loaded data set, through `App::search_records` (every hit checked
/// against the asker, facets by type and status counted, 20 hits with snippets).
async fn search_bench(args: &Args, url: &str) -> anyhow::Result<()> {
    let db = Db::connect(url, &ConnectOptions::default()).await?;
    let dir = args.search_dir.clone().unwrap_or_else(|| args.data_dir.join("search"));
    let app = App::new(db.clone(), SecurityConfig::default()).with_search(keel_app::search::Search::at(&dir));
    let t = Instant::now();
    keel_app::search::warm();
    println!("dictionary warmed in {:.2} s", t.elapsed().as_secs_f64());
    if app.search.index()?.is_none() {
        let t = Instant::now();
        let n = app.rebuild_search_index(|_, _| {}).await?;
        println!("index built from the database: {n} records in {:.1} s", t.elapsed().as_secs_f64());
    }
    let docs = app.search.index()?.context("index")?.num_docs();
    println!("index: {docs} documents, {:.1} MB", dir_bytes(&dir) as f64 / 1e6);
    let admin = vec![user_named(&app, "admin@bench.test").await?];
    let mut agents = Vec::new();
    let mut contacts = Vec::new();
    for i in 0..20 {
        agents.push(user_named(&app, &format!("agent{}@bench.test", i * 5)).await?);
        contacts.push(user_named(&app, &format!("contact{o}@c{o}.test", o = i * 10)).await?);
    }
    let mut stats = Vec::new();
    for (who, askers) in [("administrator", &admin), ("agents", &agents), ("contacts", &contacts)] {
        for (what, queries) in [("one word", &ONE_WORD), ("two words", &TWO_WORDS)] {
            let (mut s, mut found) = (Vec::new(), 0usize);
            // one round unmeasured: the first reads of each term come from disk
            for q in queries.iter() {
                let input = keel_app::search::SearchInput { q: q.to_string(), limit: 20, ..Default::default() };
                app.search_records(&askers[0], &input).await?;
            }
            for i in 0..args.samples {
                let input = keel_app::search::SearchInput { q: queries[i % queries.len()].into(), limit: 20, ..Default::default() };
                let t = Instant::now();
                let r = app.search_records(&askers[i % askers.len()], &input).await?;
                s.push(t.elapsed());
                found += r.total;
            }
            let avg = found / args.samples.max(1);
            stats.push(Stat { name: format!("search, {what}, with facets, as {who} (~{avg} visible hits)"), samples: s });
        }
    }
    println!("\n| measurement | samples | p50 ms | p99 ms |\n|---|---|---|---|");
    for st in &stats {
        println!("| {} | {} | {:.2} | {:.2} |", st.name, st.samples.len(), st.pct(0.5), st.pct(0.99));
    }
    db.close().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.search {
        let url = match &args.database_url {
            Some(u) => u.clone(),
            None => keel_store::sqlite_url_for_dir(&std::path::absolute(&args.data_dir)?),
        };
        return search_bench(&args, &url).await;
    }
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
    let t = Instant::now();
    let desk = set_up(&app).await?;
    println!("set-up (200 customers, 50 teams, 100 agents through the use cases): {:.1} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    bulk_load(&db, &url, &desk, args.tickets, app.now()).await?;
    let load = t.elapsed();
    println!(
        "bulk load of {} tickets: {:.1} s ({:.0} tickets/s)",
        args.tickets,
        load.as_secs_f64(),
        args.tickets as f64 / load.as_secs_f64()
    );
    let t = Instant::now();
    let mut tx = db.begin().await?;
    sqlx::query("ANALYZE").execute(&mut *tx).await?;
    tx.commit().await?;
    println!("ANALYZE: {:.1} s", t.elapsed().as_secs_f64());

    let n = args.samples;
    let mut stats = Vec::new();
    let mut dice = Dice(42);
    let page = |sort: SortKey, desc: bool| PageRequest { sort, desc, after: None, limit: 50 };

    let mut s = Vec::new();
    for i in 0..n {
        let a = &desk.agents[i % desk.agents.len()];
        let q = [Queue::Mine, Queue::Team, Queue::Unassigned, Queue::Open][i % 4];
        let mut f = TicketFilter::default();
        q.apply(&mut f, &a.user_id);
        let t = Instant::now();
        app.list_tickets(a, &f, &page(PRIORITY, false)).await?;
        app.count_tickets(a, &f).await?;
        s.push(t.elapsed());
    }
    stats.push(Stat { name: "queue first page + its count (mine/team/unassigned/open, 50 rows by priority)".into(), samples: s });

    let mut s = Vec::new();
    for i in 0..n {
        let a = &desk.agents[i % desk.agents.len()];
        let team = &desk.teams[(i % desk.agents.len()) / 2].0;
        let f = TicketFilter {
            team_id: Some(team.clone()),
            statuses: ["new", "assigned", "in_progress", "pending"].map(String::from).to_vec(),
            ..Default::default()
        };
        let t = Instant::now();
        app.list_tickets(a, &f, &page(PRIORITY, false)).await?;
        app.count_tickets(a, &f).await?;
        app.queue_counts(a).await?;
        s.push(t.elapsed());
    }
    stats.push(Stat {
        name: "queue view of issue 3 (team + statuses, by priority, first page + its count + tab counts)".into(),
        samples: s,
    });

    let mut s = Vec::new();
    for i in 0..n {
        let a = &desk.agents[i % desk.agents.len()];
        let t = Instant::now();
        app.queue_counts(a).await?;
        s.push(t.elapsed());
    }
    stats.push(Stat { name: "queue counts (all six tabs)".into(), samples: s });

    let mut s = Vec::new();
    for i in 0..n {
        let a = &desk.agents[i % desk.agents.len()];
        let team = &desk.teams[(i % desk.agents.len()) / 2].0;
        let f = TicketFilter {
            team_id: Some(team.clone()),
            statuses: vec!["in_progress".into(), "assigned".into()],
            priorities: vec!["p1".into(), "p2".into(), "p3".into()],
            ..Default::default()
        };
        let t = Instant::now();
        app.list_tickets(a, &f, &page(UPDATED, true)).await?;
        app.count_tickets(a, &f).await?;
        s.push(t.elapsed());
    }
    stats.push(Stat { name: "filtered list (team + statuses + priorities, by updated) + count".into(), samples: s });

    let mut s = Vec::new();
    for _ in 0..n {
        let number = format!("INC-{:06}", 1 + dice.below(args.tickets));
        let admin = &desk.admin;
        let t = Instant::now();
        let tk = app.get_ticket(admin, &number).await?;
        app.list_comments(admin, &tk.id).await?;
        app.ticket_history(admin, &tk.id).await?;
        s.push(t.elapsed());
    }
    stats.push(Stat { name: "ticket page data (get + comments + history)".into(), samples: s });

    let mut created = Vec::new();
    let mut s = Vec::new();
    for i in 0..n {
        let a = &desk.agents[i % desk.agents.len()];
        let team = i % desk.agents.len() / 2;
        let p = desk.projects.iter().find(|p| p.2.contains(&team)).context("project")?;
        let t = Instant::now();
        let tk = app
            .create_ticket(
                a,
                NewTicket {
                    project_id: p.0.clone(),
                    reporter_id: Some(p.3.clone()),
                    title: format!("基准测试工单 benchmark ticket {i}"),
                    impact: Some("medium".into()),
                    urgency: Some("high".into()),
                    team_id: Some(desk.teams[team].0.clone()),
                    ..Default::default()
                },
            )
            .await?;
        s.push(t.elapsed());
        created.push((a.clone(), tk.id));
    }
    stats.push(Stat { name: "create ticket (assigned to a team; audit + outbox)".into(), samples: s });

    let mut s = Vec::new();
    for (a, id) in &created {
        let t = Instant::now();
        app.transition_ticket(a, id, TransitionInput { action: "start".into(), ..Default::default() }, None).await?;
        s.push(t.elapsed());
    }
    stats.push(Stat { name: "transition (start work)".into(), samples: s });

    println!("\n| measurement | samples | p50 ms | p99 ms |\n|---|---|---|---|");
    for st in &stats {
        println!("| {} | {} | {:.2} | {:.2} |", st.name, st.samples.len(), st.pct(0.5), st.pct(0.99));
    }
    if let Some(mb) = bench_stats::peak_memory_mb(None) {
        println!("\npeak memory of the benchmark process (VmHWM): {mb:.0} MB");
    }
    db.close().await;
    Ok(())
}
