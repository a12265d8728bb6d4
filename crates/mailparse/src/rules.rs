//! Service desk (ISO/IEC 20000-1 §8.6.1, REQUIREMENTS §4): the pure rules of the email channel
//! for mail coming in — which mail is noise (auto-replies, bounces, Keel's own mail, storms),
//! which ticket a reply belongs to, and where the quoted history of a reply begins.
//!
//! Ticket numbers are the domain's (`keel_domain::incident::TicketNumber`); the rules here
//! take the domain's parser as an argument so this crate stays free of the domain.

/// Why a message is recorded but turns into neither a ticket nor a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noise {
    /// `Auto-Submitted`, `Precedence`, `X-Autoreply` / `X-Autorespond`: vacation notices,
    /// list traffic, other systems' robots.
    AutoReply,
    /// A delivery status notification (`multipart/report; report-type=delivery-status`,
    /// `MAILER-DAEMON`).
    Bounce,
    /// Mail Keel sent itself coming back (its own Message-ID host or its `X-Keel` header).
    OwnMail,
    /// The sender exceeded the number of messages per hour.
    Storm,
}

impl Noise {
    pub fn as_str(self) -> &'static str {
        match self {
            Noise::AutoReply => "auto_reply",
            Noise::Bounce => "bounce",
            Noise::OwnMail => "own_mail",
            Noise::Storm => "storm",
        }
    }
}

/// The header facts noise is decided on.
#[derive(Debug, Clone, Default)]
pub struct MailSignals<'a> {
    pub auto_submitted: Option<&'a str>,
    pub precedence: Option<&'a str>,
    pub x_autoreply: bool,
    pub x_keel: bool,
    /// `multipart/report` with its `report-type` parameter.
    pub report_type: Option<&'a str>,
    pub is_report: bool,
    pub from: &'a str,
    pub return_path_empty: bool,
    pub message_id: &'a str,
}

/// Recognises auto-replies, bounces and Keel's own mail (`own_host`: the host part of the
/// Message-IDs Keel writes, when configured).
pub fn classify(s: &MailSignals<'_>, own_host: Option<&str>) -> Option<Noise> {
    let from = s.from.to_ascii_lowercase();
    let local = from.split('@').next().unwrap_or("");
    if s.x_keel || own_host.is_some_and(|h| !h.is_empty() && host_of(s.message_id).eq_ignore_ascii_case(h)) {
        return Some(Noise::OwnMail);
    }
    if s.is_report && s.report_type.is_some_and(|t| t.eq_ignore_ascii_case("delivery-status"))
        || local == "mailer-daemon"
        || (local == "postmaster" && s.is_report)
    {
        return Some(Noise::Bounce);
    }
    if s.auto_submitted.is_some_and(|v| !v.trim().split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("no"))
        || s.precedence.is_some_and(|p| matches!(p.trim().to_ascii_lowercase().as_str(), "bulk" | "junk" | "list" | "auto_reply"))
        || s.x_autoreply
    {
        return Some(Noise::AutoReply);
    }
    if s.return_path_empty && s.is_report {
        return Some(Noise::Bounce);
    }
    None
}

/// Messages one sender may send per hour before further ones are ignored as a storm.
pub const STORM_PER_HOUR: i64 = 20;

pub fn is_storm(received_last_hour: i64) -> bool {
    received_last_hour >= STORM_PER_HOUR
}

/// The host part of a Message-ID (`<local@host>` or without brackets).
pub fn host_of(message_id: &str) -> &str {
    let id = message_id.trim().trim_start_matches('<').trim_end_matches('>');
    id.rsplit_once('@').map_or("", |(_, h)| h)
}

/// A Message-ID without its angle brackets and surrounding space.
pub fn bare_id(message_id: &str) -> &str {
    message_id.trim().trim_start_matches('<').trim_end_matches('>').trim()
}

/// The ticket id in a ticket's thread id `<ticket-{id}@{host}>`.
pub fn thread_ticket_id(message_id: &str) -> Option<&str> {
    let id = bare_id(message_id);
    let (local, _) = id.rsplit_once('@')?;
    local.strip_prefix("ticket-").filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

/// The text inside each `[…]` tag of a subject, trimmed, in order, with its byte range
/// (brackets included).
fn tags(subject: &str) -> Vec<(std::ops::Range<usize>, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(start) = subject[from..].find('[').map(|i| from + i) {
        let Some(len) = subject[start + 1..].find(']') else { break };
        let end = start + 1 + len;
        out.push((start..end + 1, subject[start + 1..end].trim()));
        from = end;
    }
    out
}

/// The ticket number in a subject's tag (`[INC-000042]`, `[REQ-000007]`): the first tag
/// `parse` accepts — the domain's `TicketNumber::parse`. Never read from free text.
pub fn subject_ticket_number<T>(subject: &str, parse: impl Fn(&str) -> Option<T>) -> Option<T> {
    tags(subject).into_iter().find_map(|(_, inner)| parse(inner))
}

/// A subject fit for a ticket title: reply/forward prefixes and the ticket tags (those
/// `is_ticket` accepts) removed.
pub fn clean_subject(subject: &str, is_ticket: impl Fn(&str) -> bool) -> String {
    let mut s = subject.trim().to_string();
    let spans: Vec<_> = tags(&s).into_iter().filter(|(_, inner)| is_ticket(inner)).map(|(range, _)| range).collect();
    for range in spans.into_iter().rev() {
        s.replace_range(range, " ");
    }
    loop {
        let t = s.trim_start();
        let lower = t.to_lowercase();
        let prefix = [
            "re:",
            "aw:",
            "fw:",
            "fwd:",
            "wg:",
            "sv:",
            "回复:",
            "回复：",
            "答复:",
            "答复：",
            "转发:",
            "转发：",
            "回覆:",
            "回覆：",
            "轉寄:",
            "轉寄：",
        ]
        .into_iter()
        .find(|p| lower.starts_with(p));
        match prefix {
            Some(p) => s = t[t.char_indices().nth(p.chars().count()).map_or(t.len(), |(i, _)| i)..].to_string(),
            None => break,
        }
    }
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Cuts text at a character boundary to at most `max` characters.
pub fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

fn is_quote_header(line: &str) -> bool {
    let l = line.trim();
    let lower = l.to_lowercase();
    if lower.starts_with("-----original message-----") || lower.starts_with("----- original message -----") {
        return true;
    }
    if l.starts_with("-----原始邮件-----")
        || l.starts_with("------------------ 原始邮件 ------------------")
        || l.starts_with("-----邮件原件-----")
    {
        return true;
    }
    if (lower.starts_with("on ") && lower.ends_with("wrote:")) || (l.starts_with('在') && (l.ends_with("写道：") || l.ends_with("写道:")))
    {
        return true;
    }
    false
}

fn is_header_block_start(lines: &[&str], i: usize) -> bool {
    let l = lines[i].trim();
    let from = ["From:", "发件人:", "发件人：", "寄件者:", "寄件者：", "*From:*"].iter().any(|p| l.starts_with(p));
    if !from {
        return false;
    }
    // An Outlook header block: From followed shortly by Sent/Date/To/Subject lines.
    lines.iter().skip(i + 1).take(4).any(|n| {
        let n = n.trim();
        [
            "Sent:",
            "Date:",
            "To:",
            "Subject:",
            "发送时间:",
            "发送时间：",
            "收件人:",
            "收件人：",
            "主题:",
            "主题：",
            "日期:",
            "日期：",
            "*Sent:*",
        ]
        .iter()
        .any(|p| n.starts_with(p))
    })
}

/// The new part of a reply: the text before the quoted history (Outlook "-----Original
/// Message-----" and From/Sent header blocks, Gmail and Apple "On … wrote:", Chinese
/// "在 … 写道：" and "发件人:" blocks, `>` quoted lines at the end). Returns the whole text
/// when trimming would leave nothing.
pub fn trim_quoted(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut end = lines.len();
    for i in 0..lines.len() {
        if is_quote_header(lines[i]) || is_header_block_start(&lines, i) {
            end = i;
            break;
        }
        // Gmail wraps long "On … wrote:" lines in two.
        if i + 1 < lines.len()
            && lines[i].trim().to_lowercase().starts_with("on ")
            && lines[i + 1].trim().to_lowercase().ends_with("wrote:")
        {
            end = i;
            break;
        }
        if lines[i].trim_start().starts_with('>') && lines[i..].iter().all(|l| l.trim().is_empty() || l.trim_start().starts_with('>')) {
            end = i;
            break;
        }
    }
    let kept = lines[..end].join("\n");
    let kept = kept.trim();
    if kept.is_empty() { text.trim().to_string() } else { kept.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig<'a>() -> MailSignals<'a> {
        MailSignals { from: "li.lei@example.cn", message_id: "<abc@mail.example.cn>", ..Default::default() }
    }

    #[test]
    fn auto_submitted_no_is_a_person() {
        let mut s = sig();
        s.auto_submitted = Some("no");
        assert_eq!(classify(&s, None), None);
        s.auto_submitted = Some("auto-replied");
        assert_eq!(classify(&s, None), Some(Noise::AutoReply));
        s.auto_submitted = None;
        s.precedence = Some("Bulk");
        assert_eq!(classify(&s, None), Some(Noise::AutoReply));
        s.precedence = Some("first-class");
        assert_eq!(classify(&s, None), None);
    }

    #[test]
    fn bounces_and_own_mail() {
        let mut s = sig();
        s.is_report = true;
        s.report_type = Some("delivery-status");
        assert_eq!(classify(&s, None), Some(Noise::Bounce));
        let mut s = sig();
        s.from = "MAILER-DAEMON@mx.example.cn";
        assert_eq!(classify(&s, None), Some(Noise::Bounce));
        let mut s = sig();
        s.message_id = "<0190-aa@keel.example.com>";
        assert_eq!(classify(&s, Some("keel.example.com")), Some(Noise::OwnMail));
        assert_eq!(classify(&s, Some("other.example.com")), None);
    }

    /// Stands in for the domain's `TicketNumber::parse` (tested in keel-domain).
    fn number(s: &str) -> Option<String> {
        let (p, d) = s.split_once('-')?;
        (["INC", "REQ"].contains(&p) && !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())).then(|| s.to_string())
    }

    #[test]
    fn thread_ids_and_subject_numbers() {
        assert_eq!(thread_ticket_id("<ticket-0190abc-1@keel.example.com>"), Some("0190abc-1"));
        assert_eq!(thread_ticket_id("<0190abc@keel.example.com>"), None);
        assert_eq!(subject_ticket_number("Re: [INC-000042] 打印机坏了", number), Some("INC-000042".into()));
        assert_eq!(subject_ticket_number("[外部] Re: [ REQ-000007 ] x", number), Some("REQ-000007".into()));
        assert_eq!(subject_ticket_number("INC-000042 without tag", number), None);
        assert_eq!(subject_ticket_number("[[INC-000042] x", number), None, "a tag holds no bracket");
        let is = |t: &str| number(t).is_some();
        assert_eq!(clean_subject("回复： Re: [INC-000042] 打印机坏了", is), "打印机坏了");
        assert_eq!(clean_subject("[外部] Re: [ INC-000042 ] 打印机 [INC-000042]", is), "[外部] Re: 打印机");
        assert_eq!(clean_subject("FW: Fwd: VPN down", is), "VPN down");
    }

    #[test]
    fn quoted_history_is_cut() {
        let outlook = "Still broken.\r\n\r\n-----Original Message-----\r\nFrom: Desk\r\nold";
        assert_eq!(trim_quoted(outlook), "Still broken.");
        let gmail = "Thanks!\n\nOn Mon, 3 Mar 2026 at 10:00, Keel <desk@keel.example.com> wrote:\n> old\n";
        assert_eq!(trim_quoted(gmail), "Thanks!");
        let cn = "好的，谢谢。\n\n在 2026年3月3日 10:00，服务台 <desk@keel.example.com> 写道：\n> 旧内容\n";
        assert_eq!(trim_quoted(cn), "好的，谢谢。");
        let foxmail = "已重启。\n\n发件人: 服务台\n发送时间: 2026-03-03 10:00\n收件人: 张三\n主题: x\n";
        assert_eq!(trim_quoted(foxmail), "已重启。");
        assert_eq!(trim_quoted("> all quoted\n> lines"), "> all quoted\n> lines");
        assert_eq!(trim_quoted("a\n> q\nb"), "a\n> q\nb");
    }

    #[test]
    fn storms() {
        assert!(!is_storm(STORM_PER_HOUR - 1));
        assert!(is_storm(STORM_PER_HOUR));
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        assert_eq!(truncate_chars("打印机坏了", 3), "打印机");
    }
}
