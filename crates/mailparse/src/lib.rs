//! Service desk (ISO/IEC 20000-1 §8.6.1, REQUIREMENTS §4), email channel: the inbound parsing
//! path, pure and without I/O — raw RFC 5322 bytes in, the facts Keel acts on out (sanitised
//! HTML, decoded charsets and encoded words, attachments, the new part of a reply, and whether
//! it is an auto-reply, a bounce or Keel's own mail).
//!
//! Kept apart from keel-app so the fuzz target (`fuzz/`) builds only what parsing needs.

pub mod rules;

use mail_parser::{MessageParser, MimeHeaders};
use rules::{MailSignals, Noise};
use sha2::{Digest, Sha256};

/// Why bytes are not a message Keel can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ParseError {}

/// A file carried by a message: an attachment or an inline image.
#[derive(Debug, Clone, PartialEq)]
pub struct MailFile {
    pub file_name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
    pub inline: bool,
}

/// What Keel takes from a message.
#[derive(Debug, Clone, Default)]
pub struct InboundMail {
    /// Without angle brackets; a digest of the message when it has none, so a retry of the
    /// same bytes is still recognised.
    pub message_id: String,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// Lower-cased address of the sender.
    pub from: String,
    pub from_name: Option<String>,
    pub to: Vec<String>,
    pub subject: String,
    /// The whole text body (the text rendering of HTML-only mail).
    pub text: String,
    /// The new part of a reply, quoted history cut off.
    pub reply_text: String,
    /// HTML-only mail, sanitised: no scripts, styles, remote images or event handlers.
    pub safe_html: Option<String>,
    pub files: Vec<MailFile>,
    pub noise: Option<Noise>,
}

/// Sanitises mail HTML for showing: ammonia's defaults (no script/style content, no event
/// handler or style attributes, safe URL schemes) and no images, which in mail are remote
/// trackers or inline parts Keel keeps as attachments.
pub fn sanitize_html(html: &str) -> String {
    ammonia::Builder::default().rm_tags(["img"]).clean(html).to_string()
}

fn ids(v: &mail_parser::HeaderValue<'_>) -> Vec<String> {
    match v {
        mail_parser::HeaderValue::Text(t) => vec![rules::bare_id(t).to_string()],
        mail_parser::HeaderValue::TextList(l) => l.iter().map(|t| rules::bare_id(t).to_string()).collect(),
        _ => vec![],
    }
    .into_iter()
    .filter(|s| !s.is_empty())
    .collect()
}

fn extension_for(content_type: &str) -> &'static str {
    match content_type {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "message/rfc822" => "eml",
        _ => "bin",
    }
}

/// The whole inbound parsing path on arbitrary bytes, as the fuzz target (`fuzz/`) and the
/// property test drive it: it must never panic. Returns whether the bytes parsed as mail.
/// Ticket tags are recognised here by shape; keel-app passes the domain's parser.
pub fn exercise_parsing(data: &[u8]) -> bool {
    let tag = |t: &str| t.split_once('-').map(|(p, n)| (p.to_string(), n.parse::<u64>().ok()));
    let parsed = parse_mail(data, Some("keel.example.com")).map(|mail| {
        let _ = rules::trim_quoted(&mail.text);
        let _ = rules::clean_subject(&mail.subject, |t| tag(t).is_some());
        let _ = rules::subject_ticket_number(&mail.subject, tag);
        let _ = rules::truncate_chars(&mail.text, 100);
        for id in mail.in_reply_to.iter().chain(&mail.references) {
            let _ = rules::thread_ticket_id(id);
        }
    });
    let _ = sanitize_html(&String::from_utf8_lossy(data));
    parsed.is_ok()
}

/// Parses raw RFC 5322 bytes; `own_host` is the host of Keel's own Message-IDs.
pub fn parse_mail(raw: &[u8], own_host: Option<&str>) -> Result<InboundMail, ParseError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError("the message is empty"));
    }
    let msg = MessageParser::default().parse(raw).ok_or(ParseError("not an RFC 5322 message"))?;
    let from_addr = msg.from().and_then(|a| a.first());
    let from = from_addr.and_then(|a| a.address()).map(|a| a.trim().to_lowercase()).unwrap_or_default();
    if !from.contains('@') {
        return Err(ParseError("the message has no sender address"));
    }
    let from_name = from_addr.and_then(|a| a.name()).map(str::trim).filter(|n| !n.is_empty()).map(str::to_string);
    let message_id = match msg.message_id().map(rules::bare_id).filter(|s| !s.is_empty()) {
        Some(id) => id.to_string(),
        None => format!("sha256-{}@keel.invalid", hex::encode(Sha256::digest(raw))),
    };
    let to =
        msg.to().into_iter().chain(msg.cc()).flat_map(|a| a.iter()).filter_map(|a| a.address()).map(|a| a.trim().to_lowercase()).collect();
    let subject = msg.subject().unwrap_or("").trim().to_string();

    let has_plain = msg.text_bodies().any(|p| p.is_text() && !p.is_text_html());
    let (text, safe_html) = if has_plain {
        (msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default(), None)
    } else {
        match msg.body_html(0) {
            Some(html) => {
                let safe = sanitize_html(&html);
                (mail_parser::decoders::html::html_to_text(&safe), Some(safe))
            }
            None => (String::new(), None),
        }
    };
    let text = text.replace("\r\n", "\n").trim().to_string();
    let reply_text = rules::trim_quoted(&text);

    let root_type = msg.root_part().content_type();
    let header_text = |name: &'static str| msg.header_raw(name).map(str::trim);
    let signals = MailSignals {
        auto_submitted: header_text("Auto-Submitted"),
        precedence: header_text("Precedence"),
        x_autoreply: header_text("X-Autoreply").is_some() || header_text("X-Autorespond").is_some(),
        x_keel: header_text("X-Keel").is_some(),
        is_report: root_type
            .is_some_and(|c| c.ctype().eq_ignore_ascii_case("multipart") && c.subtype().is_some_and(|s| s.eq_ignore_ascii_case("report"))),
        report_type: root_type.and_then(|c| c.attribute("report-type")),
        from: &from,
        return_path_empty: header_text("Return-Path").is_some_and(|r| r.trim() == "<>"),
        message_id: &message_id,
    };
    let noise = rules::classify(&signals, own_host);

    let mut files = Vec::new();
    for (i, part) in msg.attachments().enumerate() {
        let content_type = part
            .content_type()
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("octet-stream")).to_lowercase())
            .unwrap_or_else(|| "application/octet-stream".into());
        let inline = part.content_disposition().is_some_and(|d| d.is_inline()) || part.content_id().is_some();
        let file_name = match part.attachment_name().map(str::trim).filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => format!("{}-{}.{}", if inline { "inline" } else { "attachment" }, i + 1, extension_for(&content_type)),
        };
        let bytes = match part.message() {
            Some(inner) => inner.raw_message().to_vec(),
            None => part.contents().to_vec(),
        };
        files.push(MailFile { file_name, content_type, bytes, inline });
    }

    Ok(InboundMail {
        message_id,
        in_reply_to: ids(msg.in_reply_to()),
        references: ids(msg.references()),
        from,
        from_name,
        to,
        subject,
        text,
        reply_text,
        safe_html,
        files,
        noise,
    })
}

#[cfg(test)]
mod tests;
