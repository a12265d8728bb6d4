//! Communication with customers and staff (ISO/IEC 20000-1 §8.3.2): the message templates per
//! event kind and language, shipped defaults that administrators may override, rendered in a
//! sandboxed minijinja environment (no loader, no filesystem; HTML auto-escaped).

use keel_domain::FieldError;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};

/// Languages messages are written in; a recipient's locale picks one.
pub const LANGUAGES: &[&str] = &["en", "zh-CN"];

/// Event kinds with shipped templates.
pub const EVENT_KINDS: &[&str] = &[
    "incident.created",
    "incident.assigned",
    "incident.public_reply",
    "incident.resolved",
    "incident.closed",
    "incident.major_update",
    "sla.warning",
    "sla.breached",
    "sla.escalated",
    "sla.review_due",
    "sla.expired",
    "problem.resolved",
    "change.approval_requested",
    "change.approved",
    "change.rejected",
];

/// The language a locale is written in (`zh`, `zh-CN`, `zh-Hans` → `zh-CN`; anything else → `en`).
pub fn language_of(locale: &str) -> &'static str {
    if locale.to_ascii_lowercase().starts_with("zh") { "zh-CN" } else { "en" }
}

/// One message template: a subject line, a plain-text body and an HTML body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
pub struct MessageTemplate {
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rendered {
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
}

fn text(kind: &str, lang: &str) -> Option<(&'static str, &'static str)> {
    Some(match (kind, lang) {
        ("incident.created", "en") => {
            ("New incident: {{ title }}", "A new incident was logged for your team.\n\n{{ number }} {{ title }}\nPriority: {{ priority }}")
        }
        ("incident.created", _) => ("新事件：{{ title }}", "您的团队有一个新的事件。\n\n{{ number }} {{ title }}\n优先级：{{ priority }}"),
        ("incident.assigned", "en") => {
            ("Assigned to you: {{ title }}", "{{ number }} {{ title }} is now assigned to you.\nPriority: {{ priority }}")
        }
        ("incident.assigned", _) => ("已分派给您：{{ title }}", "{{ number }} {{ title }} 已分派给您。\n优先级：{{ priority }}"),
        ("incident.public_reply", "en") => ("New reply: {{ title }}", "{{ author }} replied on {{ number }}:\n\n{{ reply }}"),
        ("incident.public_reply", _) => ("新回复：{{ title }}", "{{ author }} 在 {{ number }} 上回复：\n\n{{ reply }}"),
        ("incident.resolved", "en") => (
            "Resolved: {{ title }}",
            "{{ number }} {{ title }} has been resolved.\n\n{{ resolution }}\n\nIf the problem persists, reply to reopen it.",
        ),
        ("incident.resolved", _) => {
            ("已解决：{{ title }}", "{{ number }} {{ title }} 已解决。\n\n{{ resolution }}\n\n如问题仍然存在，请回复以重新打开。")
        }
        ("incident.closed", "en") => ("Closed: {{ title }}", "{{ number }} {{ title }} is now closed. Thank you."),
        ("incident.closed", _) => ("已关闭：{{ title }}", "{{ number }} {{ title }} 已关闭。谢谢。"),
        ("incident.major_update", "en") => (
            "Major incident update: {{ title }}",
            "Update on {{ number }} {{ title }}:\n\n{{ summary }}{% if next_update %}\n\nNext update by {{ next_update }}.{% endif %}",
        ),
        ("incident.major_update", _) => (
            "重大事件通报：{{ title }}",
            "{{ number }} {{ title }} 最新进展：\n\n{{ summary }}{% if next_update %}\n\n下次通报时间：{{ next_update }}。{% endif %}",
        ),
        ("sla.warning", "en") => (
            "SLA warning: {{ title }}",
            "{{ number }} has used {{ threshold }}% of its {{ target }} target (due {{ due }}).{% if late %}\n\nThis notice is late: \
             the threshold was crossed at {{ threshold_at }} while notices were not being sent.{% endif %}",
        ),
        ("sla.warning", _) => (
            "SLA 预警：{{ title }}",
            "{{ number }} 的{{ target }}目标已用去 {{ threshold }}%（到期 {{ due }}）。{% if late %}\n\n本通知延迟发送：\
             阈值于 {{ threshold_at }} 越过时通知未能发出。{% endif %}",
        ),
        ("sla.breached", "en") => (
            "SLA breached: {{ title }}",
            "{{ number }} breached its {{ target }} target (due {{ due }}).{% if late %}\n\nThis notice is late: \
             the breach happened at {{ threshold_at }} while notices were not being sent.{% endif %}",
        ),
        ("sla.breached", _) => (
            "SLA 已违约：{{ title }}",
            "{{ number }} 的{{ target }}目标已违约（到期 {{ due }}）。{% if late %}\n\n本通知延迟发送：\
             违约发生于 {{ threshold_at }}，当时通知未能发出。{% endif %}",
        ),
        ("sla.escalated", "en") => (
            "Escalated: {{ title }}",
            "{{ number }} reached {{ threshold }}% of its {{ target }} target (due {{ due }}) and was escalated: \
             {% if outcome == \"reassigned\" %}reassigned{% elif outcome == \"priority_raised\" %}priority raised to {{ priority }}\
             {% else %}no change was possible in its current state{% endif %}.",
        ),
        ("sla.escalated", _) => (
            "已升级：{{ title }}",
            "{{ number }} 的{{ target }}目标已用去 {{ threshold }}%（到期 {{ due }}），已升级：\
             {% if outcome == \"reassigned\" %}已重新分派{% elif outcome == \"priority_raised\" %}优先级提升为 {{ priority }}\
             {% else %}当前状态下无法调整{% endif %}。",
        ),
        ("sla.review_due", "en") => ("SLA review due: {{ sla }}", "The service level agreement {{ sla }} is due for review on {{ due }}."),
        ("sla.review_due", _) => ("SLA 评审到期：{{ sla }}", "服务级别协议 {{ sla }} 应于 {{ due }} 评审。"),
        ("sla.expired", "en") => (
            "SLA expired: {{ sla }}",
            "The service level agreement {{ sla }} expired on {{ due }}. Tickets of its project are no longer measured against it.",
        ),
        ("sla.expired", _) => ("SLA 已到期：{{ sla }}", "服务级别协议 {{ sla }} 已于 {{ due }} 到期，其项目的工单不再按该协议计量。"),
        ("problem.resolved", "en") => (
            "Problem resolved: {{ problem_number }} {{ problem_title }}",
            "The problem {{ problem_number }} {{ problem_title }}, linked to {{ number }}, has been resolved.\
             {% if follow_up == \"resolved\" %} {{ number }} has been resolved with it.\
             {% elif follow_up == \"notify_reporter\" %} Its underlying cause has been removed.\
             {% else %} Please review {{ number }}.{% endif %}",
        ),
        ("problem.resolved", _) => (
            "问题已解决：{{ problem_number }} {{ problem_title }}",
            "与 {{ number }} 关联的问题 {{ problem_number }} {{ problem_title }} 已解决。\
             {% if follow_up == \"resolved\" %}{{ number }} 已随之解决。\
             {% elif follow_up == \"notify_reporter\" %}其根本原因已消除。\
             {% else %}请处理 {{ number }}。{% endif %}",
        ),
        ("change.approval_requested", "en") => (
            "Approval requested: {{ title }}",
            "{{ requester }} asks for your decision on the {{ change_type }} change {{ number }} {{ title }} at the approval \
             step \"{{ step }}\" ({% if quorum == \"all\" %}every approver decides{% elif quorum == \"any\" %}any one approver \
             decides{% else %}{{ quorum_n }} of {{ approver_count }} approvers decide{% endif %}).\
             {% if risk_level %}\nRisk: {{ risk_level | replace(\"_\", \" \") }}.{% endif %}\
             {% if window %}\nPlanned window: {{ window }}.{% endif %}\n\nApprove or reject it from the change's page.",
        ),
        ("change.approval_requested", _) => (
            "请审批变更：{{ title }}",
            "{{ requester }} 请您在审批步骤“{{ step }}”（{% if quorum == \"all\" %}须全部批准人同意{% elif quorum == \"any\" %}\
             任一批准人即可决定{% else %}{{ approver_count }} 名批准人中 {{ quorum_n }} 名同意即可{% endif %}）审批\
             {% if change_type == \"emergency\" %}紧急变更{% elif change_type == \"standard\" %}标准变更{% else %}常规变更{% endif %} \
             {{ number }} {{ title }}。{% if risk_level %}\n风险：{% if risk_level == \"low\" %}低{% elif risk_level == \"medium\" %}中\
             {% elif risk_level == \"high\" %}高{% else %}极高{% endif %}。{% endif %}{% if window %}\n计划窗口：{{ window }}。{% endif %}\
             \n\n请在变更页面批准或拒绝。",
        ),
        ("change.approved", "en") => {
            ("Change approved: {{ title }}", "Your change {{ number }} {{ title }} has been approved and can now be scheduled.")
        }
        ("change.approved", _) => ("变更已批准：{{ title }}", "您的变更 {{ number }} {{ title }} 已获批准，现在可以排期。"),
        ("change.rejected", "en") => (
            "Change rejected: {{ title }}",
            "Your change {{ number }} {{ title }} was rejected{% if step %} at the approval step \"{{ step }}\"{% endif %}.\
             {% if reason %}\n\nReason: {{ reason }}{% endif %}",
        ),
        ("change.rejected", _) => (
            "变更已拒绝：{{ title }}",
            "您的变更 {{ number }} {{ title }} {% if step %}在审批步骤“{{ step }}”{% endif %}被拒绝。{% if reason %}\n\n理由：{{ reason }}{% endif %}",
        ),
        _ => return None,
    })
}

/// The shipped template for an event kind and language.
pub fn default_template(kind: &str, lang: &str) -> Option<MessageTemplate> {
    let lang = if lang == "zh-CN" { "zh-CN" } else { "en" };
    let (subject, body) = text(kind, lang)?;
    let greeting = if lang == "en" { "Hello {{ recipient }},\n\n" } else { "{{ recipient }}，您好：\n\n" };
    let html_body = body.replace("\n\n", "</p>\n<p>").replace('\n', "<br>\n");
    let html_greeting = if lang == "en" { "<p>Hello {{ recipient }},</p>\n" } else { "<p>{{ recipient }}，您好：</p>\n" };
    Some(MessageTemplate {
        subject: subject.into(),
        body_text: format!("{greeting}{body}\n"),
        body_html: format!("{html_greeting}<p>{html_body}</p>\n"),
    })
}

/// Sample variables for previews: every name the shipped templates use.
pub fn sample_vars() -> serde_json::Value {
    serde_json::json!({
        "number": "INC-000042",
        "title": "Printer on floor 3 jams / 三楼打印机卡纸",
        "priority": "p2",
        "status": "assigned",
        "recipient": "Li Lei",
        "author": "Service desk",
        "reply": "We are on our way. <b>Thanks</b>",
        "resolution": "Replaced the fuser unit.",
        "threshold": 75,
        "target": "resolution",
        "due": "2026-11-25 18:00",
        "outcome": "priority_raised",
        "late": false,
        "threshold_at": "2026-11-25 16:30 UTC",
        "sla": "Acme operations SLA",
        "problem_number": "PRB-000007",
        "problem_title": "Fuser units fail after 20,000 pages / 定影器在两万页后故障",
        "follow_up": "resolved",
        "project": "ACME-OPS",
        "requester": "Han Meimei",
        "change_type": "normal",
        "step": "CAB",
        "quorum": "at_least",
        "quorum_n": 2,
        "approver_count": 3,
        "risk_level": "medium",
        "window": "2026-11-28 22:00 UTC – 2026-11-29 02:00 UTC",
        "reason": "The back-out plan is not tested.",
    })
}

const FUEL: u64 = 50_000;

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    // An administrator's loop cannot run away with the dispatcher.
    env.set_fuel(Some(FUEL));
    env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
    env
}

fn field_error(field: &str, e: &minijinja::Error) -> FieldError {
    let line = e.line().unwrap_or(1);
    let detail = e.detail().map(str::to_string).unwrap_or_else(|| e.kind().to_string());
    FieldError::new(field, "template_error", format!("line {line}: {detail}"))
}

const PARTS: [(&str, &str); 3] = [("subject", "subject.txt"), ("body_text", "body.txt"), ("body_html", "body.html")];

fn sources(t: &MessageTemplate) -> [&str; 3] {
    [&t.subject, &t.body_text, &t.body_html]
}

/// Renders a template; every part that fails is reported (field, `line N: …`).
pub fn render(t: &MessageTemplate, vars: &serde_json::Value) -> Result<Rendered, Vec<FieldError>> {
    let env = environment();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for ((field, name), src) in PARTS.iter().zip(sources(t)) {
        match env.render_named_str(name, src, minijinja::Value::from(minijinja::value::Serde(vars))) {
            Ok(s) => out.push(s),
            Err(e) => errors.push(field_error(field, &e)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let body_html = out.pop().unwrap_or_default();
    let body_text = out.pop().unwrap_or_default();
    let subject = out.pop().unwrap_or_default().lines().map(str::trim).collect::<Vec<_>>().join(" ");
    Ok(Rendered { subject, body_text, body_html })
}

/// Checks a template compiles and renders with the sample variables; a subject is required.
pub fn check(t: &MessageTemplate) -> Result<Rendered, Vec<FieldError>> {
    let mut errors = Vec::new();
    if t.subject.trim().is_empty() {
        errors.push(FieldError::new("subject", "required", "a subject is required"));
    }
    let mut env = environment();
    for ((field, name), src) in PARTS.iter().zip(sources(t)) {
        if let Err(e) = env.add_template_owned(name.to_string(), src.to_string()) {
            errors.push(field_error(field, &e));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    render(t, &sample_vars())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_template_renders_in_both_languages() {
        for kind in EVENT_KINDS {
            for lang in LANGUAGES {
                let t = default_template(kind, lang).unwrap();
                let r = check(&t).unwrap_or_else(|e| panic!("{kind} {lang}: {e:?}"));
                assert!(!r.subject.is_empty());
                assert!(!r.body_html.contains("<b>Thanks"), "HTML is escaped");
            }
        }
        assert!(default_template("incident.created", "zh-CN").unwrap().subject.starts_with("新事件"));
    }

    #[test]
    fn errors_name_the_part_and_line() {
        let t = MessageTemplate { subject: "ok".into(), body_text: "line one\n{{ broken".into(), body_html: "{% if %}".into() };
        let e = check(&t).unwrap_err();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].field, "body_text");
        assert!(e[0].message.starts_with("line 2:"), "{}", e[0].message);
        assert_eq!(e[1].field, "body_html");
    }

    #[test]
    fn runaway_loops_run_out_of_fuel() {
        let t = MessageTemplate {
            subject: "x".into(),
            body_text: "{% for a in range(1000) %}{% for b in range(1000) %}.{% endfor %}{% endfor %}".into(),
            body_html: String::new(),
        };
        assert_eq!(check(&t).unwrap_err()[0].field, "body_text");
    }

    #[test]
    fn html_escapes_and_text_does_not() {
        let t = MessageTemplate { subject: "{{ reply }}".into(), body_text: "{{ reply }}".into(), body_html: "{{ reply }}".into() };
        let r = render(&t, &serde_json::json!({"reply": "<b>x</b> & y"})).unwrap();
        assert_eq!(r.body_text, "<b>x</b> & y");
        assert_eq!(r.body_html, "&lt;b&gt;x&lt;&#x2f;b&gt; &amp; y");
    }
}
