//! Service desk and incident management: the HTTP half of the million-ticket benchmark. Drives a
//! running `keel serve` over real HTTP/1.1 keep-alive connections — incident creation through the
//! API at several concurrencies, full ticket pages and queue pages — and reports throughput,
//! p50/p99 and the server's peak memory.
//!
//! It signs in as an agent of the `keel-bench` data set by issuing itself an API token in the
//! database the server uses, so run `keel-bench` first and point both at the same data:
//!
//!     target/release/keel-bench --data-dir /tmp/kb --tickets 1000000
//!     target/release/keel serve --data-dir /tmp/kb &
//!     target/release/keel-load --data-dir /tmp/kb --pid $!

#[path = "../bench_stats.rs"]
mod bench_stats;

use anyhow::{Context, bail};
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use keel_app::{App, SecurityConfig};
use keel_store::{ConnectOptions, Db};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(name = "keel-load", about = "Measures a running keel serve over HTTP on the keel-bench data set")]
struct Args {
    /// The data directory of the keel-bench set (SQLite), as given to `keel serve`.
    #[arg(long, default_value = "keel-bench-data")]
    data_dir: PathBuf,
    /// The PostgreSQL database of the keel-bench set instead.
    #[arg(long)]
    database_url: Option<String>,
    /// Where `keel serve` listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Incidents created per concurrency level.
    #[arg(long, default_value_t = 5_000)]
    creates: usize,
    /// Concurrency levels of the creation run.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    concurrency: Vec<usize>,
    /// Ticket pages and queue pages requested (at concurrency 16).
    #[arg(long, default_value_t = 2_000)]
    pages: usize,
    /// The server's process id, to report its peak resident memory (VmHWM).
    #[arg(long)]
    pid: Option<u32>,
}

struct Target {
    addr: String,
    token: String,
}

struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(addr: &str) -> anyhow::Result<Conn> {
        let stream = tokio::net::TcpStream::connect(addr).await.with_context(|| format!("connect {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Conn { sender })
    }

    async fn send(&mut self, t: &Target, method: &str, path: &str, body: Option<String>) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &t.addr)
            .header("authorization", format!("Bearer {}", t.token))
            .header("accept-language", "zh-CN");
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        self.sender.ready().await?;
        let res = self.sender.send_request(req).await?;
        let status = res.status();
        let bytes = res.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }
}

struct Run {
    wall: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn print(&self, what: &str, concurrency: usize) {
        let n = self.latencies.len();
        println!(
            "| {what} | {concurrency} | {n} | {:.0} | {:.1} | {:.1} |",
            n as f64 / self.wall.as_secs_f64(),
            bench_stats::percentile_ms(&self.latencies, 0.50),
            bench_stats::percentile_ms(&self.latencies, 0.99)
        );
    }
}

/// Sends `n` requests over `concurrency` keep-alive connections; `request(i)` gives the i-th.
async fn drive<F>(t: Arc<Target>, n: usize, concurrency: usize, expect: StatusCode, request: F) -> anyhow::Result<Run>
where
    F: Fn(usize) -> (&'static str, String, Option<String>) + Send + Sync + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let request = Arc::new(request);
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (t, next, request) = (t.clone(), next.clone(), request.clone());
        workers.push(tokio::spawn(async move {
            let mut conn = Conn::open(&t.addr).await?;
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(lat);
                }
                let (method, path, body) = request(i);
                let began = Instant::now();
                let (status, bytes) = conn.send(&t, method, &path, body).await?;
                lat.push(began.elapsed());
                if status != expect {
                    bail!("{method} {path}: {status}: {}", String::from_utf8_lossy(&bytes[..bytes.len().min(300)]));
                }
            }
        }));
    }
    let mut latencies = Vec::with_capacity(n);
    for w in workers {
        latencies.extend(w.await??);
    }
    Ok(Run { wall: start.elapsed(), latencies })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let url = match &args.database_url {
        Some(u) => u.clone(),
        None => format!("sqlite://{}?mode=rw", std::path::absolute(args.data_dir.join("keel.db"))?.display()),
    };
    let db = Db::connect(&url, &ConnectOptions::default()).await.with_context(|| format!("open {url}"))?;
    let app = App::new(db, SecurityConfig::default());

    // agent0 belongs to team 00, which serves project P000 (see keel-bench's set-up).
    let mut c = app.read().await?;
    let agent = keel_store::accounts::get_user_by_email(&mut c, "agent0@bench.test").await?.context("run keel-bench on this data first")?;
    let agent = keel_app::auth::principal_of(&mut c, &agent).await?;
    let one = |sql: &'static str, v: &'static str| sqlx::query_scalar::<_, String>(sql).bind(v);
    let project = one("SELECT id FROM projects WHERE code = $1", "P000").fetch_one(&mut *c).await?;
    let team = one("SELECT id FROM teams WHERE name = $1", "Team 00 小组").fetch_one(&mut *c).await?;
    let contact = one("SELECT id FROM users WHERE email = $1", "contact0@c0.test").fetch_one(&mut *c).await?;
    let tickets: Vec<String> =
        sqlx::query_scalar("SELECT id FROM tickets WHERE project_id = $1 ORDER BY id LIMIT 2000").bind(&project).fetch_all(&mut *c).await?;
    drop(c);
    if tickets.is_empty() {
        bail!("project P000 has no tickets: run keel-bench on this data first");
    }
    let (token, _) = app.create_api_token(&agent, "keel-load", Some(1)).await?;
    let t = Arc::new(Target { addr: args.addr.clone(), token });

    println!("| measurement | concurrency | requests | per second | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|---|");
    for &concurrency in &args.concurrency {
        let (project, contact) = (project.clone(), contact.clone());
        let run = drive(t.clone(), args.creates, concurrency, StatusCode::CREATED, move |i| {
            let title = if i % 2 == 0 {
                format!("压测工单 {i}：打印机无法打印")
            } else {
                format!("Load test {i}: VPN drops every hour")
            };
            let body = serde_json::json!({
                "project_id": project, "reporter_id": contact, "title": title,
                "description": "Created by keel-load through the HTTP API.", "impact": "medium", "urgency": "high",
            });
            ("POST", "/api/v1/incidents".to_string(), Some(body.to_string()))
        })
        .await?;
        run.print("create incident (POST /api/v1/incidents)", concurrency);
    }
    let ids = Arc::new(tickets);
    let run = drive(t.clone(), args.pages, 16, StatusCode::OK, {
        let ids = ids.clone();
        move |i| ("GET", format!("/incidents/{}", ids[i % ids.len()]), None)
    })
    .await?;
    run.print("ticket page (GET /incidents/{id}, full HTML)", 16);
    let statuses = ["assigned", "in_progress", "pending", "new"];
    let run = drive(t.clone(), args.pages, 16, StatusCode::OK, move |i| {
        ("GET", format!("/incidents?view=all&team_id={team}&status={}&sort=priority", statuses[i % statuses.len()]), None)
    })
    .await?;
    run.print("queue page (team + status, by priority, with counts)", 16);
    if let Some(pid) = args.pid {
        match bench_stats::peak_memory_mb(Some(pid)) {
            Some(mb) => println!("\npeak memory of the server {pid} (VmHWM): {mb:.0} MB"),
            None => println!("\nserver {pid}: no /proc entry"),
        }
    }
    Ok(())
}
