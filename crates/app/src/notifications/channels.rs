//! Communication with customers and staff (ISO/IEC 20000-1 §8.3.2): the channels a delivery
//! goes out on — email over SMTP and the chat webhooks teams use (DingTalk, WeCom, Feishu/Lark,
//! Slack, signed generic JSON) — with each vendor's signing rule.

use base64::Engine;
use hmac::{KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use keel_store::notifications::{Delivery, WebhookRecord};
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::json;
use std::time::Duration;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// DingTalk robot signature: Base64(HmacSHA256(key = secret, "{timestamp_ms}\n{secret}")),
/// sent URL-encoded as the `sign` query parameter next to `timestamp`.
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    b64(&hmac_sha256(secret.as_bytes(), format!("{timestamp_ms}\n{secret}").as_bytes()))
}

/// Feishu/Lark bot signature: Base64(HmacSHA256(key = "{timestamp_s}\n{secret}", empty message)),
/// sent in the body as `sign` next to `timestamp`.
pub fn feishu_sign(secret: &str, timestamp_s: i64) -> String {
    b64(&hmac_sha256(format!("{timestamp_s}\n{secret}").as_bytes(), b""))
}

/// Keel's own webhook signature: `sha256=` + hex HMAC-SHA256 of the request body.
pub fn keel_signature(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac_sha256(secret.as_bytes(), body)))
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The request a webhook delivery makes: URL, extra headers and JSON body.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Whether requests of a kind of webhook are signed with its secret (WeCom and Slack carry
/// their key in the URL).
pub fn signs(kind: &str) -> bool {
    matches!(kind, "dingtalk" | "feishu" | "generic")
}

/// Builds the vendor-specific request for a delivery at `now_ms`, signed with `secret` (the
/// webhook's secret decrypted; `h.secret` is its stored, encrypted form and is not used).
pub fn webhook_request(h: &WebhookRecord, secret: Option<&str>, d: &Delivery, now_ms: i64) -> WebhookRequest {
    let secret = secret.filter(|s| !s.is_empty());
    let markdown = format!("**{}**\n\n{}", d.subject, d.body_text);
    let mut url = h.url.clone();
    let mut headers = Vec::new();
    let body = match h.kind.as_str() {
        "dingtalk" => {
            if let Some(s) = secret {
                let sep = if url.contains('?') { '&' } else { '?' };
                url = format!("{url}{sep}timestamp={now_ms}&sign={}", url_encode(&dingtalk_sign(s, now_ms)));
            }
            json!({ "msgtype": "markdown", "markdown": { "title": d.subject, "text": markdown } })
        }
        "wecom" => json!({ "msgtype": "markdown", "markdown": { "content": markdown } }),
        "feishu" => {
            let mut b = json!({ "msg_type": "text", "content": { "text": format!("{}\n{}", d.subject, d.body_text) } });
            if let Some(s) = secret {
                let ts = now_ms / 1000;
                b["timestamp"] = json!(ts.to_string());
                b["sign"] = json!(feishu_sign(s, ts));
            }
            b
        }
        "slack" => json!({
            "text": d.subject,
            "blocks": [
                { "type": "header", "text": { "type": "plain_text", "text": d.subject } },
                { "type": "section", "text": { "type": "mrkdwn", "text": d.body_text } }
            ]
        }),
        _ => json!({
            "delivery_id": d.id,
            "event": d.event_kind,
            "entity_type": d.entity_type,
            "entity_id": d.entity_id,
            "language": d.language,
            "subject": d.subject,
            "text": d.body_text,
            "timestamp": now_ms / 1000,
        }),
    };
    let body = body.to_string();
    if h.kind == "generic" {
        headers.push(("X-Keel-Timestamp".to_string(), (now_ms / 1000).to_string()));
        if let Some(s) = secret {
            headers.push(("X-Keel-Signature".to_string(), keel_signature(s, body.as_bytes())));
        }
    }
    WebhookRequest { url, headers, body }
}

/// POSTs a webhook request; any answer but 2xx (or a vendor's non-zero error code in a 200)
/// is an error carrying the status and the start of the answer.
pub async fn post(req: &WebhookRequest, timeout: Duration) -> Result<(), String> {
    tokio::time::timeout(timeout, post_inner(req)).await.map_err(|_| "timed out".to_string())?
}

async fn post_inner(req: &WebhookRequest) -> Result<(), String> {
    let uri: hyper::Uri = req.url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err("URL must be http or https".into()),
    };
    let host = uri.host().ok_or("URL has no host")?.to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let path = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let mut builder = hyper::Request::post(path)
        .header(hyper::header::HOST, if uri.port().is_some() { format!("{host}:{port}") } else { host.clone() })
        .header(hyper::header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header(hyper::header::USER_AGENT, "Keel");
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let request = builder.body(Full::new(Bytes::from(req.body.clone()))).map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| format!("connect: {e}"))?;
    let (status, body) = if https {
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
        let tls = tls_connector().connect(name, tcp).await.map_err(|e| format!("TLS: {e}"))?;
        send(hyper_util::rt::TokioIo::new(tls), request).await?
    } else {
        send(hyper_util::rt::TokioIo::new(tcp), request).await?
    };
    let text = String::from_utf8_lossy(&body);
    if !(200..300).contains(&status) {
        return Err(format!("HTTP {status}: {}", text.chars().take(300).collect::<String>()));
    }
    // DingTalk/WeCom answer {"errcode": n}, Feishu {"code": n}: non-zero is a refusal.
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
        let code = v.get("errcode").or_else(|| v.get("code")).and_then(|c| c.as_i64()).unwrap_or(0);
        if code != 0 {
            return Err(format!("refused: {}", text.chars().take(300).collect::<String>()));
        }
    }
    Ok(())
}

async fn send<I>(io: I, request: hyper::Request<Full<Bytes>>) -> Result<(u16, Bytes), String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let resp = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, body))
}

fn tls_connector() -> tokio_rustls::TlsConnector {
    use tokio_rustls::rustls;
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    None,
    #[default]
    Starttls,
    Tls,
}

/// The outgoing mail server, from `keel.toml` `[smtp]` / `KEEL_SMTP_*`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default = "submission_port")]
    pub port: u16,
    #[serde(default)]
    pub tls: SmtpTls,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// The default From address, e.g. `Keel Service Desk <desk@example.com>`.
    pub from: String,
}

fn submission_port() -> u16 {
    587
}

/// `Auto-Submitted: auto-generated` (RFC 3834), so auto-responders do not answer notifications.
/// Not on public replies: their text is a person's answer, which auto-responders may answer
/// (Keel records such answers as noise, so nothing loops).
#[derive(Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_string())
    }
}

/// `X-Keel: notification`, so Keel's own mail gateway recognises its mail coming back.
#[derive(Clone)]
struct XKeel;

impl Header for XKeel {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Keel")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(XKeel)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "notification".to_string())
    }
}

/// The domain right of the `@` in a From address, used in Message-IDs.
pub fn mail_domain(from: &str) -> String {
    let addr = from.rsplit('<').next().unwrap_or(from).trim_end_matches('>');
    addr.rsplit_once('@').map(|(_, d)| d.trim().to_string()).filter(|d| !d.is_empty()).unwrap_or_else(|| "keel.invalid".into())
}

/// The stable thread id every message about one ticket refers to.
pub fn thread_id(thread_key: &str, domain: &str) -> String {
    format!("<ticket-{thread_key}@{domain}>")
}

/// Whether mail of an event kind is written by Keel itself (RFC 3834 `auto-generated`) rather
/// than carrying a person's words.
pub fn is_auto_generated(event_kind: &str) -> bool {
    event_kind != "incident.public_reply"
}

/// Builds the email of a delivery (its subject already carries the ticket number): Message-ID `<{delivery id}@{domain}>`, threaded under the
/// record's stable id, multipart plain text + HTML, marked auto-generated unless it carries a
/// person's reply.
pub fn email_message(smtp: &SmtpConfig, d: &Delivery) -> Result<Message, String> {
    let from_text = d.from_address.as_deref().unwrap_or(&smtp.from);
    let from: Mailbox = from_text.parse().map_err(|e| format!("bad From address {from_text}: {e}"))?;
    let to: Mailbox = d.recipient.parse().map_err(|e| format!("bad recipient address: {e}"))?;
    let domain = mail_domain(from_text);
    let mut b =
        Message::builder().from(from).to(to).subject(d.subject.clone()).message_id(Some(format!("<{}@{domain}>", d.id))).header(XKeel);
    if is_auto_generated(&d.event_kind) {
        b = b.header(AutoSubmitted);
    }
    if let Some(key) = &d.thread_key {
        let thread = thread_id(key, &domain);
        b = b.in_reply_to(thread.clone()).references(thread);
    }
    b.multipart(
        MultiPart::alternative()
            .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(d.body_text.clone()))
            .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(d.body_html.clone())),
    )
    .map_err(|e| e.to_string())
}

/// Sends one message over SMTP.
pub async fn send_email(smtp: &SmtpConfig, message: Message, timeout: Duration) -> Result<(), String> {
    let builder = match smtp.tls {
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host).tls(Tls::None),
        SmtpTls::Starttls => {
            let p = TlsParameters::new(smtp.host.clone()).map_err(|e| e.to_string())?;
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host).tls(Tls::Required(p))
        }
        SmtpTls::Tls => {
            let p = TlsParameters::new(smtp.host.clone()).map_err(|e| e.to_string())?;
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host).tls(Tls::Wrapper(p))
        }
    };
    let mut builder = builder.port(smtp.port).timeout(Some(timeout));
    if let (Some(u), Some(p)) = (&smtp.user, &smtp.password) {
        builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
    }
    let transport = builder.build();
    transport.send(message).await.map_err(|e| format!("SMTP: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keel_signature_is_hex_hmac_of_the_body() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"
        assert_eq!(
            keel_signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    // Expected values come from running the vendors' own published Python samples (DingTalk
    // "自定义机器人安全设置 加签", Feishu "自定义机器人 签名校验") with these fixed inputs.
    #[test]
    fn dingtalk_signature_matches_the_vendor_sample() {
        let sign = dingtalk_sign("this is secret", 1_700_000_000_000);
        assert_eq!(sign, "sSFWELbV2YwjdDQhWZwTcWlX5BWUx5J6TPpsZmuPii0=");
        assert_eq!(url_encode(&sign), "sSFWELbV2YwjdDQhWZwTcWlX5BWUx5J6TPpsZmuPii0%3D", "quote_plus of the Base64");
        assert_eq!(url_encode("a+b/c="), "a%2Bb%2Fc%3D");
    }

    #[test]
    fn feishu_signature_matches_the_vendor_sample() {
        assert_eq!(feishu_sign("你的密钥", 1_599_360_473), "LGQ8uyis9+PUlaQz4PLURvxr+NWlGF+dpzH2lNT3ISQ=");
    }

    #[test]
    fn vendor_requests_carry_their_signature_where_the_vendor_expects_it() {
        let d = Delivery {
            id: "d1".into(),
            event_kind: "incident.created".into(),
            subject: "[INC-000001] 新事件".into(),
            body_text: "打印机".into(),
            ..Default::default()
        };
        let hook = |kind: &str| WebhookRecord {
            kind: kind.into(),
            url: "https://h.example/x?access_token=t".into(),
            secret: Some("enc:v1:stored form".into()),
            ..Default::default()
        };
        let webhook_request = |h: &WebhookRecord, d: &Delivery, now| webhook_request(h, Some("s"), d, now);
        let r = webhook_request(&hook("dingtalk"), &d, 1_700_000_000_000);
        assert!(r.url.starts_with("https://h.example/x?access_token=t&timestamp=1700000000000&sign="), "{}", r.url);
        let r = webhook_request(&hook("feishu"), &d, 1_700_000_000_123);
        let b: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!((b["timestamp"].as_str(), b["sign"].as_str()), (Some("1700000000"), Some(feishu_sign("s", 1_700_000_000).as_str())));
        let r = webhook_request(&hook("generic"), &d, 1_700_000_000_000);
        assert_eq!(r.headers[1], ("X-Keel-Signature".to_string(), keel_signature("s", r.body.as_bytes())));
        let r = webhook_request(&hook("wecom"), &d, 0);
        assert!(r.body.contains("\"msgtype\":\"markdown\"") && r.headers.is_empty());
    }

    #[test]
    fn mail_domain_comes_from_the_from_address() {
        assert_eq!(mail_domain("Keel <desk@example.com>"), "example.com");
        assert_eq!(mail_domain("desk@example.org"), "example.org");
        assert_eq!(thread_id("abc", "example.com"), "<ticket-abc@example.com>");
    }
}
