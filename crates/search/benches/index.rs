//! Search benchmark: indexes N synthetic incidents in mixed Chinese and English (default
//! 1,000,000; set KEEL_BENCH_DOCS) and reports index time, index size and p50/p99 latency of
//! one- and two-word queries with facets (and snippets, as the results page asks).
//!
//! cargo bench -p keel-search --bench index            (KEEL_BENCH_DOCS=100000 for a shorter run)

use keel_search::{Access, Document, Permission, SearchIndex, SearchRequest};
use std::sync::Arc;
use std::time::Instant;

const ZH: &[&str] = &[
    "打印机",
    "无法",
    "打印",
    "网络",
    "连接",
    "失败",
    "邮箱",
    "登录",
    "密码",
    "重置",
    "服务器",
    "宕机",
    "数据库",
    "响应",
    "缓慢",
    "磁盘",
    "空间",
    "不足",
    "系统",
    "升级",
    "申请",
    "权限",
    "账号",
    "锁定",
    "电脑",
    "蓝屏",
    "无线",
    "信号",
    "会议室",
    "投影仪",
    "故障",
    "报错",
    "财务",
    "报表",
    "导出",
    "异常",
    "客户",
    "投诉",
    "审批",
    "流程",
    "备份",
    "恢复",
    "防火墙",
    "策略",
    "变更",
    "虚拟机",
    "内存",
    "告警",
    "监控",
    "证书",
    "过期",
];
const EN: &[&str] = &[
    "printer",
    "printing",
    "network",
    "connection",
    "failed",
    "email",
    "login",
    "password",
    "reset",
    "server",
    "down",
    "database",
    "slow",
    "response",
    "disk",
    "space",
    "system",
    "upgrade",
    "request",
    "access",
    "account",
    "locked",
    "laptop",
    "crash",
    "wireless",
    "signal",
    "meeting",
    "projector",
    "error",
    "report",
    "export",
    "customer",
    "complaint",
    "approval",
    "backup",
    "restore",
    "firewall",
    "policy",
    "change",
    "memory",
    "alert",
    "monitoring",
    "certificate",
    "expired",
    "vpn",
    "outlook",
    "timeout",
    "latency",
    "router",
    "switch",
];
const STATUS: &[&str] = &["new", "assigned", "in_progress", "pending", "resolved", "closed"];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[(self.next() % v.len() as u64) as usize]
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn sentence(r: &mut Rng, words: usize) -> String {
    let mut s = String::new();
    for _ in 0..words {
        if r.below(2) == 0 {
            s.push_str(r.pick(ZH));
        } else {
            s.push(' ');
            s.push_str(r.pick(EN));
            s.push(' ');
        }
    }
    s
}

fn document(r: &mut Rng, i: u64) -> Document {
    let org = r.below(50);
    Document {
        source: "ticket".into(),
        id: format!("t{i}"),
        kind: if r.below(4) == 0 { "request".into() } else { "incident".into() },
        number: Some(format!("INC-{i:06}")),
        title: sentence(r, 5),
        body: format!(
            "{} host srv-{:03}.corp.local ip 10.{}.{}.{}",
            sentence(r, 25),
            r.below(500),
            r.below(256),
            r.below(256),
            r.below(256)
        ),
        comments: vec![sentence(r, 12)],
        internal: vec![sentence(r, 8)],
        status: r.pick(STATUS).into(),
        priority: format!("p{}", 1 + r.below(4)),
        team: format!("team{}", r.below(20)),
        project: format!("proj{}", org),
        project_id: format!("p{org}"),
        organization_id: format!("o{org}"),
        created_at: 1_767_225_600_000 + (i as i64) * 30_000,
        updated_at: 1_767_225_600_000 + (i as i64) * 30_000,
        ..Default::default()
    }
}

struct Staff;
impl Permission for Staff {
    fn allows(&self, _: &Access) -> bool {
        true
    }
    fn sees_internal(&self) -> bool {
        true
    }
}

struct Contact;
impl Permission for Contact {
    fn allows(&self, a: &Access) -> bool {
        a.organization_id == "o7"
    }
    fn sees_internal(&self) -> bool {
        false
    }
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p).map(|d| d.flatten().map(|e| e.metadata().map(|m| m.len()).unwrap_or(0)).sum()).unwrap_or(0)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let n: u64 = std::env::var("KEEL_BENCH_DOCS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("keel-search-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let t = Instant::now();
    keel_search::warm();
    println!("jieba dictionary: {:.0} ms", t.elapsed().as_secs_f64() * 1000.0);

    let ix = SearchIndex::open_for_build(&dir).expect("index");
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let t = Instant::now();
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..n {
        batch.push(document(&mut r, i));
        if batch.len() == 10_000 {
            ix.add(&batch).expect("add");
            batch.clear();
            if (i + 1) % 100_000 == 0 {
                eprintln!("  {} documents, {:.0} s", i + 1, t.elapsed().as_secs_f64());
            }
        }
    }
    ix.add(&batch).expect("add");
    ix.commit("bench").expect("commit");
    let indexed = t.elapsed().as_secs_f64();
    ix.finish().expect("merge");
    let total = t.elapsed().as_secs_f64();
    let ix = SearchIndex::open(&dir).expect("reopen");
    println!("indexed {n} documents in {indexed:.1} s (with merges finished: {total:.1} s), {:.0} docs/s", n as f64 / indexed);
    println!("index size: {:.1} MB", dir_size(&dir) as f64 / 1_048_576.0);

    let mut r = Rng(42);
    let one: Vec<String> = (0..200).map(|i| if i % 2 == 0 { r.pick(ZH).to_string() } else { r.pick(EN).to_string() }).collect();
    let two: Vec<String> = (0..200).map(|_| format!("{} {}", r.pick(ZH), r.pick(EN))).collect();
    for (label, queries) in [("one word", &one), ("two words", &two)] {
        for (who, p) in [("staff", Arc::new(Staff) as Arc<dyn Permission>), ("contact", Arc::new(Contact) as Arc<dyn Permission>)] {
            let mut times = Vec::new();
            let mut hits = 0;
            for q in queries.iter() {
                let req = SearchRequest { query: q.clone(), limit: 20, snippets: true, ..Default::default() };
                let t = Instant::now();
                let res = ix.search(&req, p.clone()).expect("search");
                times.push(t.elapsed().as_secs_f64() * 1000.0);
                hits += res.total;
                assert!(!res.by_status.is_empty() || res.total == 0);
            }
            let avg_hits = hits / queries.len();
            println!(
                "{label:<9} {who:<7} p50 {:>6.1} ms  p99 {:>6.1} ms  (mean {avg_hits} matching documents, facets by type and status, 20 snippets)",
                percentile(&mut times, 0.5),
                percentile(&mut times, 0.99)
            );
        }
    }
    drop(ix);
    let _ = std::fs::remove_dir_all(&dir);
}
