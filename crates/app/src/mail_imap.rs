//! Service desk (ISO/IEC 20000-1 §8.6.1, REQUIREMENTS §4), email channel: polling the IMAP
//! mailboxes of projects on the leased job runner. Each unseen message is fetched without
//! marking it (`BODY.PEEK[]`), received, and only then flagged `\Seen` or moved: a crash in
//! between fetches it again, and receiving is idempotent on the Message-ID. Connections are
//! TLS, STARTTLS, or plain on loopback only; a mailbox may trust its own private CA.

use crate::{App, AppError, Principal, Result};
use futures_util::StreamExt;
use keel_store::mail::{self as store, MailboxRecord};
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

const IMAP_TIMEOUT: Duration = Duration::from_secs(60);

/// What one poll of a mailbox did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Messages fetched from the server.
    pub fetched: usize,
    /// Newly recorded (tickets, replies, ignored, held).
    pub received: usize,
    /// Already received before (a poll after a crash before flagging).
    pub duplicates: usize,
    /// Not mail at all; flagged so they are not fetched forever.
    pub refused: usize,
}

fn imap(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(format!("IMAP: {e}"))
}

async fn timed<T>(f: impl std::future::Future<Output = T>) -> Result<T> {
    tokio::time::timeout(IMAP_TIMEOUT, f).await.map_err(|_| imap("the server did not answer in time"))
}

impl App {
    /// Polls every active mailbox with an IMAP server; one failing mailbox does not stop the
    /// others. Returns how many messages were newly received.
    pub async fn poll_mailboxes(&self) -> Result<usize> {
        let boxes = {
            let mut c = self.read().await?;
            store::imap_mailboxes(&mut c).await?
        };
        let mut total = 0;
        let mut failed = Vec::new();
        for m in boxes {
            match self.poll_mailbox(&m).await {
                Ok(r) => total += r.received,
                Err(e) => {
                    // the reason itself (an internal error displays only as "internal error")
                    let reason = match &e {
                        AppError::Internal(reason) => reason.clone(),
                        other => other.to_string(),
                    };
                    tracing::warn!(mailbox = %m.address, error = %reason, "mailbox poll failed");
                    failed.push(format!("{}: {reason}", m.address));
                }
            }
        }
        if failed.is_empty() { Ok(total) } else { Err(imap(failed.join("; "))) }
    }

    /// Fetches a mailbox's unseen messages, receives each, then flags or moves it.
    pub async fn poll_mailbox(&self, m: &MailboxRecord) -> Result<PollReport> {
        let host = m.imap_host.as_deref().ok_or_else(|| imap("the mailbox has no IMAP server"))?;
        // Opened before connecting: a password this instance cannot decrypt is not tried.
        let secret = match m.imap_secret.as_deref() {
            Some(stored) => self
                .secrets
                .open(&crate::secrets::mailbox_context(&m.id), stored)
                .map_err(|e| AppError::Internal(crate::secrets::mailbox_error(&m.address, &m.id, &e)))?,
            None => String::new(),
        };
        let port = u16::try_from(m.imap_port.unwrap_or(143)).map_err(imap)?;
        let mode = m.imap_tls.as_deref().unwrap_or("tls");
        if mode == "plain" && !is_loopback(host) {
            return Err(imap("plain connections are only made on loopback; use tls or starttls"));
        }
        let tcp = timed(tokio::net::TcpStream::connect((host, port))).await?.map_err(imap)?;
        match mode {
            "plain" => {
                let mut client = async_imap::Client::new(tcp);
                timed(client.read_response()).await?.map_err(imap)?.ok_or_else(|| imap("no greeting"))?;
                self.poll_client(m, secret, client).await
            }
            "tls" => {
                let tls = tls_handshake(m, host, tcp).await?;
                let mut client = async_imap::Client::new(tls);
                timed(client.read_response()).await?.map_err(imap)?.ok_or_else(|| imap("no greeting"))?;
                self.poll_client(m, secret, client).await
            }
            "starttls" => {
                let mut client = async_imap::Client::new(tcp);
                timed(client.read_response()).await?.map_err(imap)?.ok_or_else(|| imap("no greeting"))?;
                timed(client.run_command_and_check_ok("STARTTLS", None)).await?.map_err(imap)?;
                // The server sends nothing more in clear text; the greeting is not repeated.
                let tls = tls_handshake(m, host, client.into_inner()).await?;
                self.poll_client(m, secret, async_imap::Client::new(tls)).await
            }
            other => Err(imap(format!("unknown connection mode {other}"))),
        }
    }

    /// `secret` is the mailbox's IMAP password, decrypted.
    async fn poll_client<S>(&self, m: &MailboxRecord, secret: String, client: async_imap::Client<S>) -> Result<PollReport>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send,
    {
        let user = m.imap_user.clone().unwrap_or_default();
        let mut session = timed(client.login(user, secret)).await?.map_err(|(e, _)| imap(e))?;
        let folder = m.imap_folder.clone().unwrap_or_else(|| "INBOX".into());
        timed(session.select(&folder)).await?.map_err(imap)?;
        let mut uids: Vec<u32> = timed(session.uid_search("UNSEEN")).await?.map_err(imap)?.into_iter().collect();
        uids.sort_unstable();
        let mut report = PollReport::default();
        let system = Principal::system();
        for uid in uids {
            let raw = {
                let mut fetches = timed(session.uid_fetch(uid.to_string(), "BODY.PEEK[]")).await?.map_err(imap)?;
                let mut body = None;
                while let Some(f) = timed(fetches.next()).await? {
                    let f = f.map_err(imap)?;
                    if let Some(b) = f.body() {
                        body = Some(b.to_vec());
                    }
                }
                body
            };
            let Some(raw) = raw else { continue };
            report.fetched += 1;
            match self.receive_mail(&system, &m.project_id, &raw).await {
                Ok(r) if r.duplicate => report.duplicates += 1,
                Ok(_) => report.received += 1,
                Err(AppError::Validation(_)) => report.refused += 1,
                // Left unseen: the next poll tries again.
                Err(e) => return Err(e),
            }
            match m.imap_done_folder.as_deref().filter(|f| !f.trim().is_empty()) {
                Some(done) => timed(session.uid_mv(uid.to_string(), done)).await?.map_err(imap)?,
                None => {
                    let updates = timed(session.uid_store(uid.to_string(), "+FLAGS (\\Seen)")).await?.map_err(imap)?;
                    let _: Vec<_> = timed(updates.collect::<Vec<_>>()).await?;
                }
            }
        }
        let _ = timed(session.logout()).await;
        Ok(report)
    }
}

/// Whether a host name or address is the local machine (the only place clear-text IMAP is
/// allowed: the password would otherwise cross the network readable).
pub fn is_loopback(host: &str) -> bool {
    let h = host.trim().trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The certificates of a PEM text (a private CA); an error when it holds none or a broken one.
pub fn ca_certificates(pem: &str) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<std::result::Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no certificate in the PEM text".into());
    }
    let mut roots = rustls::RootCertStore::empty();
    for c in &certs {
        roots.add(c.clone()).map_err(|e| e.to_string())?;
    }
    Ok(certs)
}

/// TLS with the public web roots plus the mailbox's own CA, if it has one.
async fn tls_handshake(
    m: &MailboxRecord,
    host: &str,
    tcp: tokio::net::TcpStream,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(pem) = m.imap_ca_pem.as_deref().filter(|p| !p.trim().is_empty()) {
        for c in ca_certificates(pem).map_err(|e| imap(format!("CA certificate: {e}")))? {
            roots.add(c).map_err(imap)?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(imap)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_string()).map_err(imap)?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    timed(connector.connect(name, tcp)).await?.map_err(|e| imap(format!("TLS: {e}")))
}
