//! Test support for the email channel (used by the story and CLI tests, never by Keel
//! itself): a real SMTP server on loopback that keeps what it is handed.

use crate::notifications::NotifyConfig;
use crate::notifications::channels::{SmtpConfig, SmtpTls};
use base64::Engine;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One message an SMTP client handed over.
#[derive(Debug, Clone)]
pub struct Mail {
    pub rcpt: Vec<String>,
    pub data: String,
}

impl Mail {
    /// Header values by lower-case name, folded lines joined.
    pub fn headers(&self) -> HashMap<String, String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let mut out: HashMap<String, String> = HashMap::new();
        let mut last = String::new();
        for line in head.split("\r\n") {
            if line.starts_with(' ') || line.starts_with('\t') {
                out.entry(last.clone()).and_modify(|v| v.push_str(line));
            } else if let Some((k, v)) = line.split_once(':') {
                last = k.trim().to_ascii_lowercase();
                out.insert(last.clone(), v.trim().to_string());
            }
        }
        out
    }

    /// The Subject with RFC 2047 encoded words decoded (space between two encoded words
    /// is dropped, other space kept).
    pub fn subject(&self) -> String {
        let raw = self.headers().remove("subject").unwrap_or_default();
        let mut out = String::new();
        let mut bytes = Vec::new();
        let mut prev_encoded = false;
        for (i, word) in raw.split_whitespace().enumerate() {
            let encoded = word.to_ascii_lowercase().starts_with("=?utf-8?b?") && word.ends_with("?=");
            if !(encoded && prev_encoded) {
                out.push_str(&String::from_utf8_lossy(&std::mem::take(&mut bytes)));
                if i > 0 {
                    out.push(' ');
                }
            }
            if encoded {
                bytes.extend(base64::engine::general_purpose::STANDARD.decode(&word[10..word.len() - 2]).unwrap());
            } else {
                out.push_str(word);
            }
            prev_encoded = encoded;
        }
        out.push_str(&String::from_utf8_lossy(&bytes));
        out
    }
}

/// A real SMTP server on loopback speaking just enough for lettre (EHLO, MAIL, RCPT, DATA,
/// RSET, NOOP, QUIT), keeping every accepted message.
pub struct SmtpSink {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let store = mails.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let (r, mut w) = stream.into_split();
                    let mut r = BufReader::new(r);
                    w.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                    let mut rcpt = Vec::new();
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let cmd = line.trim_end().to_ascii_uppercase();
                        let reply: &[u8] = if cmd.starts_with("EHLO") {
                            b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
                        } else if cmd.starts_with("MAIL") || cmd.starts_with("RSET") || cmd.starts_with("NOOP") {
                            rcpt.clear();
                            b"250 ok\r\n"
                        } else if cmd.starts_with("RCPT") {
                            let to = line.trim_end()[8..].trim_matches(|c| c == '<' || c == '>' || c == ' ').to_string();
                            rcpt.push(to);
                            b"250 ok\r\n"
                        } else if cmd == "DATA" {
                            w.write_all(b"354 go ahead\r\n").await.unwrap();
                            let mut data = String::new();
                            loop {
                                line.clear();
                                if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                                    return;
                                }
                                if line == ".\r\n" {
                                    break;
                                }
                                data.push_str(line.strip_prefix('.').filter(|_| line.starts_with("..")).unwrap_or(&line));
                            }
                            store.lock().unwrap().push(Mail { rcpt: std::mem::take(&mut rcpt), data });
                            b"250 queued\r\n"
                        } else if cmd == "QUIT" {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            return;
                        } else {
                            b"502 not implemented\r\n"
                        };
                        w.write_all(reply).await.unwrap();
                    }
                });
            }
        });
        SmtpSink { port, mails }
    }

    pub fn config(&self) -> NotifyConfig {
        NotifyConfig {
            smtp: Some(SmtpConfig {
                host: "127.0.0.1".into(),
                port: self.port,
                tls: SmtpTls::None,
                user: None,
                password: None,
                from: "Keel Desk <desk@keel.test>".into(),
            }),
            max_attempts: 3,
            backoff_ms: 10_000,
            ..Default::default()
        }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    pub fn to(&self, address: &str) -> Vec<Mail> {
        self.mails().into_iter().filter(|m| m.rcpt.iter().any(|r| r == address)).collect()
    }
}
