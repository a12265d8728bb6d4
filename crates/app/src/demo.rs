//! Service desk and incident management (REQUIREMENTS §4), first look: a bilingual demo desk
//! (customers, projects, teams, agents, contacts, categories, a China business calendar and
//! SLAs, a few CIs and a few thousand incidents) loaded through the ordinary use cases into an
//! empty instance. English titles and the resolution times come from public ITSM datasets
//! (Endava helpdesk tickets, the UCI ServiceNow event log; see `tests/data/README.md`); the
//! Chinese ones are written for the demo.

use crate::directory::{OrganizationInput, ProjectInput, TeamInput};
use crate::import::{Mapping, Progress};
use crate::incidents::CategoryInput;
use crate::users::NewUser;
use crate::{App, AppError, Principal, Result};
use keel_domain::identity::{AccountKind, Role};

/// A demo account with the password printed once on the terminal.
#[derive(Debug, Clone)]
pub struct DemoAccount {
    pub email: String,
    pub name: String,
    pub role: String,
    pub password: String,
}

#[derive(Debug, Clone, Default)]
pub struct DemoReport {
    pub accounts: Vec<DemoAccount>,
    pub organizations: usize,
    pub tickets: u64,
}

const ENDAVA: &str = include_str!("../tests/data/endava_tickets_excerpt.csv");
const UCI: &str = include_str!("../tests/data/uci_event_log_excerpt.csv");

const CATEGORIES: [(&str, &str); 8] = [
    ("HARDWARE", "硬件 Hardware"),
    ("SOFTWARE", "软件 Software"),
    ("NETWORK", "网络 Network"),
    ("ACCESS", "账号与权限 Accounts and access"),
    ("EMAIL", "邮件 Email"),
    ("PRINTING", "打印 Printing"),
    ("APPLICATION", "业务应用 Business applications"),
    ("INFRA", "服务器与存储 Servers and storage"),
];

const TEAMS: [&str; 4] = ["服务台 Service desk", "网络组 Network", "桌面支持 Workplace", "应用支持 Applications"];

/// Which team works on a category.
fn team_for(category: &str) -> &'static str {
    match category {
        "NETWORK" | "INFRA" => TEAMS[1],
        "HARDWARE" | "PRINTING" | "EMAIL" => TEAMS[2],
        "APPLICATION" | "SOFTWARE" => TEAMS[3],
        _ => TEAMS[0],
    }
}

/// Hand-written Chinese incidents: title, description, category.
const ZH: [(&str, &str, &str); 20] = [
    ("打印机卡纸，无法打印", "三楼财务部的惠普打印机一直提示卡纸，已经重启过，还是不行。", "PRINTING"),
    ("VPN 连接频繁断开", "在家办公时 VPN 每隔十分钟断开一次，需要重新登录。", "NETWORK"),
    ("邮箱容量已满，无法收信", "收到提示邮箱已满，新邮件退回，请帮忙扩容或归档。", "EMAIL"),
    ("ERP 系统登录缓慢", "早上九点以后登录 ERP 需要两分钟以上，影响开单。", "APPLICATION"),
    ("新员工入职需要开通账号", "销售部新同事下周一入职，需要开通域账号、邮箱和 CRM 权限。", "ACCESS"),
    ("会议室投影仪无信号", "五楼大会议室投影仪连接笔记本后显示无信号，下午有客户会议。", "HARDWARE"),
    ("OA 审批流程卡在部门经理节点", "报销单提交后一直停在部门经理审批，经理说看不到待办。", "APPLICATION"),
    ("无线网络信号弱，经常掉线", "二楼东侧工位无线信号只有一格，视频会议经常中断。", "NETWORK"),
    ("电脑蓝屏，提示内存错误", "开机半小时后蓝屏，错误代码 MEMORY_MANAGEMENT。", "HARDWARE"),
    ("忘记密码，账号被锁定", "连续输错密码后域账号被锁定，无法登录电脑。", "ACCESS"),
    ("共享盘无法访问", "映射的 S 盘打不开，提示找不到网络路径。", "NETWORK"),
    ("Outlook 无法同步日历", "手机上创建的会议在 Outlook 中看不到。", "EMAIL"),
    ("财务报表导出 Excel 乱码", "从报表系统导出的 Excel 中文显示为乱码。", "APPLICATION"),
    ("申请安装 Visio 软件", "需要绘制流程图，申请安装 Visio 专业版。", "SOFTWARE"),
    ("钉钉消息通知收不到", "电脑版钉钉收不到审批通知，手机版正常。", "SOFTWARE"),
    ("门禁卡失效", "今天早上门禁卡刷不开办公区的门。", "ACCESS"),
    ("服务器磁盘空间告警", "监控显示 erp-db-01 数据盘使用率超过 90%。", "INFRA"),
    ("数据库备份任务失败", "昨晚的全量备份任务失败，日志显示磁盘空间不足。", "INFRA"),
    ("官网首页打开报 502 错误", "客户反馈官网首页间歇性返回 502 Bad Gateway。", "APPLICATION"),
    ("扫描仪驱动安装失败", "新领的扫描仪在 Windows 11 上安装驱动失败。", "PRINTING"),
];

const MAPPING: &str = r#"
[source]
name = "keel-demo"
date_formats = ["%Y-%m-%d %H:%M:%S"]

[fields]
external_ref = "ref"
title = "title"
description = "description"
status = "status"
impact = "impact"
urgency = "urgency"
category = "category"
team = "team"
reporter_email = "reporter"
agent_email = "agent"
channel = "channel"
resolution_code = "resolution"
opened_at = "opened"
resolved_at = "resolved"
closed_at = "closed"
"#;

/// A small deterministic generator, so every demo looks the same.
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
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn password() -> String {
    format!("demo-{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// English tickets of the Endava excerpt (title, body, category code).
fn endava_tickets() -> Vec<(String, String, &'static str)> {
    let mut rd = csv::Reader::from_reader(ENDAVA.as_bytes());
    rd.records()
        .filter_map(|r| r.ok())
        .filter(|r| !r.get(0).unwrap_or("").trim().is_empty())
        .map(|r| {
            let cat: usize = r.get(3).and_then(|c| c.parse().ok()).unwrap_or(0);
            let title = r.get(0).unwrap_or("").trim();
            let mut t = title.chars();
            let title = t.next().map(|c| c.to_uppercase().collect::<String>() + t.as_str()).unwrap_or_default();
            (title, r.get(1).unwrap_or("").to_string(), CATEGORIES[cat % CATEGORIES.len()].0)
        })
        .collect()
}

/// Minutes from opening to resolution of the closed incidents of the UCI excerpt.
fn uci_resolution_minutes() -> Vec<i64> {
    let mut rd = csv::Reader::from_reader(UCI.as_bytes());
    let parse = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%d/%m/%Y %H:%M").ok();
    let mut out: Vec<i64> = rd
        .records()
        .filter_map(|r| r.ok())
        .filter(|r| r.get(1) == Some("Closed"))
        .filter_map(|r| Some((parse(r.get(9)?)?, parse(r.get(34)?)?)))
        .map(|(o, z)| (z - o).num_minutes())
        .filter(|m| *m > 0)
        .collect();
    if out.is_empty() {
        out.push(240);
    }
    out
}

impl App {
    /// Whether the instance is empty enough for the demo: no accounts yet.
    pub async fn is_empty_instance(&self) -> Result<bool> {
        let mut c = self.read().await?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&mut *c).await.map_err(keel_store::StoreError::from)?;
        Ok(n == 0)
    }

    /// Loads the demo into an empty instance; refuses anything else. `tickets` is the number of
    /// incidents over all projects.
    pub async fn load_demo(&self, tickets: usize, progress: &(dyn Fn(Progress) + Send + Sync)) -> Result<DemoReport> {
        if !self.is_empty_instance().await? {
            return Err(AppError::Conflict {
                code: "not_empty",
                field: None,
                message: "the demo loads only into an empty data directory (this one has accounts)".into(),
            });
        }
        let sys = Principal::system();
        let mut report = DemoReport::default();
        let account = |email: &str, name: &str, role: &str| DemoAccount {
            email: email.into(),
            name: name.into(),
            role: role.into(),
            password: password(),
        };
        let staff_specs = [
            ("admin@demo.keel.test", "Keel Admin 管理员", "administrator", Role::Administrator),
            ("wang.fang@demo.keel.test", "王芳 Wang Fang", "service_manager", Role::ServiceManager),
            ("li.na@demo.keel.test", "李娜 Li Na", "service_desk_agent", Role::ServiceDeskAgent),
            ("zhang.wei@demo.keel.test", "张伟 Zhang Wei", "technician", Role::Technician),
            ("emma.clarke@demo.keel.test", "Emma Clarke", "service_desk_agent", Role::ServiceDeskAgent),
            ("tom.becker@demo.keel.test", "Tom Becker", "technician", Role::Technician),
        ];
        let mut staff = Vec::new();
        for (email, name, role, r) in staff_specs {
            let a = account(email, name, role);
            report.accounts.push(a.clone());
            let u = self
                .create_user(
                    &sys,
                    NewUser {
                        email: a.email.clone(),
                        display_name: a.name.clone(),
                        password: Some(a.password.clone()),
                        locale: Some(if name.is_ascii() { "en".into() } else { "zh-CN".into() }),
                        time_zone: Some("Asia/Shanghai".into()),
                        roles: vec![r],
                        ..Default::default()
                    },
                )
                .await?;
            staff.push(u);
        }
        let admin = {
            let mut c = self.read().await?;
            crate::auth::principal_of(&mut c, &staff[0]).await?
        };
        let manager = {
            let mut c = self.read().await?;
            crate::auth::principal_of(&mut c, &staff[1]).await?
        };
        let agents: Vec<&keel_store::accounts::UserRecord> = staff[2..].iter().collect();
        let agent_ids: Vec<String> = agents.iter().map(|u| u.id.clone()).collect();

        for name in TEAMS {
            let members = match name {
                n if n == TEAMS[0] => vec![agent_ids[0].clone(), agent_ids[2].clone()],
                n if n == TEAMS[1] => vec![agent_ids[1].clone()],
                n if n == TEAMS[2] => vec![agent_ids[3].clone(), agent_ids[0].clone()],
                _ => vec![agent_ids[1].clone(), agent_ids[3].clone()],
            };
            self.create_team(&admin, TeamInput { name: name.into(), member_ids: members, ..Default::default() }).await?;
        }
        for (code, name) in CATEGORIES {
            self.create_category(&admin, CategoryInput { code: code.into(), name: name.into(), ..Default::default() }).await?;
        }
        let calendar = self.create_china_calendar(&admin, "中国大陆工作日 China mainland working days").await?;

        let customers = [
            (
                "ECM",
                "华东精密制造有限公司",
                "ecm-ops",
                "华东精密 IT 运维 / ECM IT operations",
                ["chen.jing@ecm.example", "zhou.lei@ecm.example"],
                ["陈静", "周磊"],
            ),
            (
                "NWB",
                "Northwind Bank 北风银行",
                "nwb-desk",
                "Northwind service desk",
                ["alice.moore@northwind.example", "liu.yang@northwind.example"],
                ["Alice Moore", "刘洋"],
            ),
            (
                "SFH",
                "上海第一人民医院 Shanghai First Hospital",
                "sfh-it",
                "医院信息系统运维 / Hospital IT",
                ["sun.li@sfh.example", "david.king@sfh.example"],
                ["孙丽", "David King"],
            ),
        ];
        let mut projects = Vec::new();
        for (code, name, pcode, pname, emails, names) in customers {
            let org =
                self.create_organization(&admin, OrganizationInput { name: name.into(), code: code.into(), ..Default::default() }).await?;
            let project = self
                .create_project(
                    &admin,
                    ProjectInput {
                        code: pcode.to_uppercase(),
                        name: pname.into(),
                        organization_id: org.id.clone(),
                        manager_user_id: Some(staff[1].id.clone()),
                        member_ids: agent_ids.clone(),
                        ..Default::default()
                    },
                )
                .await?;
            let mut contacts = Vec::new();
            for (email, name) in emails.iter().zip(names) {
                let a = account(email, name, &format!("contact ({code})"));
                report.accounts.push(a.clone());
                self.create_user(
                    &admin,
                    NewUser {
                        kind: AccountKind::Contact,
                        email: a.email.clone(),
                        display_name: a.name.clone(),
                        organization_id: Some(org.id.clone()),
                        password: Some(a.password.clone()),
                        locale: Some(if name.is_ascii() { "en".into() } else { "zh-CN".into() }),
                        time_zone: Some("Asia/Shanghai".into()),
                        ..Default::default()
                    },
                )
                .await?;
                contacts.push(email.to_string());
            }
            self.create_sla(
                &manager,
                crate::service_level::SlaInput {
                    name: format!("{pname} SLA"),
                    project_id: project.id.clone(),
                    calendar_id: calendar.id.clone(),
                    ..Default::default()
                },
            )
            .await?;
            projects.push((project, contacts));
            report.organizations += 1;
        }
        self.seed_cmdb_classes().await?;
        let cis = [
            (
                "server",
                "erp-db-01",
                serde_json::json!({ "hostname": "erp-db-01", "ip_address": "10.1.20.11", "operating_system": "openEuler 22.03", "cpu_cores": 16 }),
            ),
            (
                "server",
                "web-01",
                serde_json::json!({ "hostname": "web-01", "ip_address": "10.1.30.21", "operating_system": "Ubuntu 24.04", "cpu_cores": 8 }),
            ),
            ("application", "ERP 企业资源计划", serde_json::json!({ "version": "6.2" })),
            ("application", "OA 协同办公", serde_json::json!({ "version": "2025.3" })),
        ];
        for (i, (class, name, attributes)) in cis.into_iter().enumerate() {
            let project_id = Some(projects[i % projects.len()].0.id.clone());
            self.create_ci(
                &admin,
                crate::cmdb::CiInput { class_key: class.into(), name: name.into(), project_id, attributes, ..Default::default() },
            )
            .await?;
        }
        let requester = {
            let mut c = self.read().await?;
            crate::auth::principal_of(&mut c, &staff[2]).await?
        };
        let mut cab = vec![manager.clone()];
        for u in [&staff[3], &staff[5]] {
            let mut c = self.read().await?;
            cab.push(crate::auth::principal_of(&mut c, u).await?);
        }
        self.load_demo_changes(&DemoChangeCast { admin: &admin, manager: &manager, requester: &requester, cab: &cab }, &projects[0].0.id)
            .await?;

        let mapping = Mapping::from_toml(MAPPING)?;
        let english = endava_tickets();
        let minutes = uci_resolution_minutes();
        let agent_emails: Vec<&str> = staff_specs[2..].iter().map(|s| s.0).collect();
        let mut dice = Dice(0x5eed_cafe_f00d_1234);
        let now = self.now();
        let per_project = tickets.div_ceil(projects.len().max(1));
        for (p, (project, contacts)) in projects.iter().enumerate() {
            let mut w = csv::Writer::from_writer(Vec::new());
            let header = [
                "ref",
                "title",
                "description",
                "status",
                "impact",
                "urgency",
                "category",
                "team",
                "reporter",
                "agent",
                "channel",
                "resolution",
                "opened",
                "resolved",
                "closed",
            ];
            w.write_record(header).map_err(|e| AppError::Internal(e.to_string()))?;
            for i in 0..per_project {
                let (title, description, category) = if dice.below(2) == 0 {
                    let (t, d, c) = dice.pick(&ZH);
                    (t.to_string(), d.to_string(), *c)
                } else {
                    let (t, d, c) = dice.pick(&english);
                    (t.clone(), d.clone(), *c)
                };
                // Older tickets are mostly closed; the last fortnight holds the open work.
                let age_min = dice.below(120 * 24 * 60) as i64;
                let opened = now - age_min * 60_000;
                let took = *dice.pick(&minutes);
                let status = if age_min > 14 * 24 * 60 {
                    if dice.below(10) == 0 { "resolved" } else { "closed" }
                } else {
                    *dice.pick(&["new", "assigned", "in_progress", "in_progress", "pending/waiting_for_customer", "resolved", "closed"])
                };
                let resolved = (opened + took * 60_000).min(now - 60_000).max(opened);
                let closed = (resolved + 3 * 24 * 3_600_000).min(now).max(resolved);
                let fmt = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%d %H:%M:%S").to_string();
                let done = matches!(status, "resolved" | "closed");
                let levels = ["high", "medium", "medium", "low", "low"];
                let row = [
                    format!("DEMO-{p}-{i}"),
                    title,
                    description,
                    status.to_string(),
                    dice.pick(&levels).to_string(),
                    dice.pick(&levels).to_string(),
                    category.to_string(),
                    if status == "new" { String::new() } else { team_for(category).to_string() },
                    dice.pick(contacts).clone(),
                    if status == "new" { String::new() } else { dice.pick(&agent_emails).to_string() },
                    dice.pick(&["portal", "email", "phone", "phone"]).to_string(),
                    if done { dice.pick(&["solved", "solved", "workaround", "advice_given"]).to_string() } else { String::new() },
                    fmt(opened),
                    if done { fmt(resolved) } else { String::new() },
                    if status == "closed" { fmt(closed) } else { String::new() },
                ];
                w.write_record(&row).map_err(|e| AppError::Internal(e.to_string()))?;
            }
            let csv = w.into_inner().map_err(|e| AppError::Internal(e.to_string()))?;
            let r = self.import_incidents(&manager, &project.id, &csv, &mapping, false, progress).await?;
            if let Some(b) = r.bad_rows.first() {
                return Err(AppError::Internal(format!(
                    "demo row {} ({}): {}: {}",
                    b.line,
                    b.external_ref.clone().unwrap_or_default(),
                    b.field,
                    b.reason
                )));
            }
            report.tickets += r.imported;
        }
        Ok(report)
    }
}

/// Who takes part in the demo's change management.
struct DemoChangeCast<'a> {
    admin: &'a Principal,
    manager: &'a Principal,
    requester: &'a Principal,
    /// Three CAB members; the first is the change manager.
    cab: &'a [Principal],
}

const HOUR: i64 = 3_600_000;

/// Answers of the shipped risk questionnaire giving a low risk.
fn low_risk() -> std::collections::BTreeMap<String, String> {
    [
        ("service_criticality", "medium"),
        ("scope", "team"),
        ("outage", "none"),
        ("complexity", "simple"),
        ("experience", "routine"),
        ("testing", "full"),
        ("back_out", "tested"),
        ("security", "no"),
        ("timing", "outside_hours"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

impl App {
    /// Configuration, change and release management (REQUIREMENTS §5) in the demo: the ERP
    /// service of the first customer with what it runs on, changes of each type in different
    /// states (one awaiting the CAB, two approved ones conflicting in the schedule), and a
    /// release grouping the approved changes.
    async fn load_demo_changes(&self, cast: &DemoChangeCast<'_>, project_id: &str) -> Result<()> {
        use crate::changes::{ApproverInput, DecisionInput, NewChange, ReviewInput, StepInput, TemplateInput};
        use crate::cmdb::{CiInput, RelationInput};
        use serde_json::json;
        let admin = cast.admin;
        let specs = [
            ("service", "ECM ERP 服务 ERP service", json!({ "service_code": "ECM-ERP", "criticality": "high", "service_hours": "7×24" })),
            ("application", "ECM ERP 应用 ERP application", json!({ "version": "6.2", "criticality": "high" })),
            ("database", "ecm-erp-db 数据库", json!({ "engine": "postgresql", "port": 5432, "backup_enabled": true })),
            ("server", "ecm-app-01", json!({ "hostname": "ecm-app-01", "ip_address": "10.8.1.11", "operating_system": "openEuler 22.03" })),
            ("server", "ecm-db-01", json!({ "hostname": "ecm-db-01", "ip_address": "10.8.1.21", "operating_system": "openEuler 22.03" })),
        ];
        let mut ci = Vec::new();
        for (class, name, attributes) in specs {
            let input = CiInput {
                class_key: class.into(),
                name: name.into(),
                project_id: Some(project_id.into()),
                attributes,
                ..Default::default()
            };
            ci.push(self.create_ci(admin, input).await?.id);
        }
        for (s, kind, t) in [(1, "provides", 0), (1, "runs_on", 3), (1, "depends_on", 2), (2, "runs_on", 4), (3, "connected_to", 4)] {
            let input = RelationInput { kind: kind.into(), source_id: ci[s].clone(), target_id: ci[t].clone() };
            self.add_relation(admin, input).await?;
        }

        let who = |p: &Principal| ApproverInput { kind: "user".into(), id: p.user_id.clone() };
        let cab_step = || StepInput {
            name: "变更顾问委员会 CAB".into(),
            approvers: cast.cab.iter().map(who).collect(),
            quorum: "at_least".into(),
            quorum_n: Some(2),
        };
        let day = |d: i64| {
            let midnight = self.now() - self.now().rem_euclid(24 * HOUR);
            midnight + d * 24 * HOUR + 14 * HOUR // 22:00 in Shanghai
        };
        let normal = |title: &str, cis: Vec<String>, start: i64, hours: i64| NewChange {
            project_id: project_id.into(),
            change_type: "normal".into(),
            title: title.into(),
            reason: Some("保持 ERP 服务受支持 / keep the ERP service supported".into()),
            implementation_plan: Some("1. 通知用户 notify users\n2. 备份 back up\n3. 实施 apply\n4. 验证 verify".into()),
            back_out_plan: Some("从备份恢复 restore from the backup".into()),
            test_plan: Some("在测试环境演练 rehearsed on the test system".into()),
            planned_start: Some(start),
            planned_end: Some(start + hours * HOUR),
            ci_ids: cis,
            approval_steps: vec![cab_step()],
            ..Default::default()
        };
        let r = cast.requester;
        let approve = DecisionInput { verdict: "approve".into(), ..Default::default() };
        let to_assessed = |id: String| async move {
            self.transition_change(r, &id, "submitted", None, None).await?;
            self.assess_change_risk(r, &id, low_risk(), None).await?;
            self.transition_change(r, &id, "assessed", None, None).await
        };

        // approved and scheduled: the database upgrade
        let upgrade = self.create_change(r, normal("ERP 数据库升级 ERP database upgrade", vec![ci[2].clone()], day(3), 4)).await?;
        to_assessed(upgrade.id.clone()).await?;
        for member in &cast.cab[..2] {
            self.decide_change(member, &upgrade.id, approve.clone()).await?;
        }
        self.transition_change(r, &upgrade.id, "scheduled", None, None).await?;
        // approved, overlapping the upgrade on a dependent CI: a conflict on the calendar
        let release_change = self.create_change(r, normal("ERP 6.3 版本发布 ERP 6.3 roll-out", vec![ci[1].clone()], day(3), 2)).await?;
        to_assessed(release_change.id.clone()).await?;
        for member in &cast.cab[1..] {
            self.decide_change(member, &release_change.id, approve.clone()).await?;
        }
        // awaiting the CAB: one vote of the two needed
        let pending = self.create_change(r, normal("ecm-app-01 内存扩容 memory upgrade", vec![ci[3].clone()], day(10), 2)).await?;
        to_assessed(pending.id.clone()).await?;
        self.decide_change(&cast.cab[2], &pending.id, approve.clone()).await?;
        // rejected, with the reason
        let rejected =
            self.create_change(r, normal("停用旧报表服务器 retire the old report server", vec![ci[4].clone()], day(5), 1)).await?;
        to_assessed(rejected.id.clone()).await?;
        for member in &cast.cab[..2] {
            let no = DecisionInput {
                verdict: "reject".into(),
                reason: Some("报表迁移尚未完成 reports not migrated yet".into()),
                ..Default::default()
            };
            self.decide_change(member, &rejected.id, no).await?;
        }
        // a draft
        self.create_change(r, normal("ERP 负载均衡 add a load balancer", vec![ci[3].clone()], day(20), 3)).await?;

        // an emergency change, implemented and reviewed
        let ecab =
            StepInput {
                name: "紧急变更顾问委员会 ECAB".into(), approvers: vec![who(cast.manager)], quorum: "any".into(), quorum_n: None
            };
        let emergency = self
            .create_change(
                r,
                NewChange {
                    change_type: "emergency".into(),
                    title: "ecm-db-01 磁盘紧急扩容 emergency disk extension".into(),
                    approval_steps: vec![ecab],
                    planned_start: Some(day(-2)),
                    planned_end: Some(day(-2) + HOUR),
                    ..normal("", vec![ci[4].clone()], 0, 0)
                },
            )
            .await?;
        self.transition_change(r, &emergency.id, "submitted", None, None).await?;
        self.decide_change(cast.manager, &emergency.id, approve.clone()).await?;
        for to in ["implementing", "implemented"] {
            self.transition_change(r, &emergency.id, to, None, None).await?;
        }
        let review = ReviewInput {
            outcome: "successful".into(),
            notes: Some("扩容完成，无业务中断 extended without an outage".into()),
            ..Default::default()
        };
        self.review_change(r, &emergency.id, review, None).await?;

        // a standard change from a pre-approved template, scheduled
        let template = self
            .create_change_template(
                cast.manager,
                TemplateInput {
                    name: "操作系统安全补丁 OS security patch".into(),
                    implementation_plan: "逐台打补丁并重启 patch and restart one server at a time".into(),
                    back_out_plan: "卸载补丁 remove the patch".into(),
                    risk_level: "low".into(),
                    ..Default::default()
                },
            )
            .await?;
        let standard = self
            .create_change(
                r,
                NewChange {
                    change_type: "standard".into(),
                    template_id: Some(template.id),
                    title: "ecm-app-01 月度补丁 monthly patch".into(),
                    approval_steps: vec![],
                    ..normal("", vec![ci[3].clone()], day(7), 1)
                },
            )
            .await?;
        self.transition_change(r, &standard.id, "submitted", None, None).await?;
        self.transition_change(r, &standard.id, "scheduled", None, None).await?;

        // the release grouping the two approved changes
        self.create_release(
            r,
            crate::releases::NewRelease {
                project_id: project_id.into(),
                title: "ECM ERP 6.3".into(),
                version: "6.3.0".into(),
                description: Some("数据库升级与 ERP 6.3 / database upgrade and ERP 6.3".into()),
                change_ids: vec![upgrade.id, release_change.id],
                rollback_plan: Some("回退到 6.2 并恢复数据库 roll back to 6.2 and restore the database".into()),
                known_issues: vec!["首次登录需清除浏览器缓存 clear the browser cache on first login".into()],
            },
        )
        .await?;
        Ok(())
    }
}
