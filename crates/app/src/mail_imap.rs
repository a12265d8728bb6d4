//! Service desk (ISO/IEC 20000-1 §8.6.1, REQUIREMENTS §4), email channel: polling the IMAP
//! mailboxes of projects on the leased job runner. Each unseen message is fetched without
//! marking it (`BODY.PEEK[]`), received, and only then flagged `\Seen` or moved: a crash in
//! between fetches it again, and receiving is idempotent on the Message-ID.

use crate::{App, AppError, Principal, Result};
use futures_util::StreamExt;
use keel_store::mail::{self as store, MailboxRecord};
use std::time::Duration;

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
                    tracing::warn!(mailbox = %m.address, error = %e, "mailbox poll failed");
                    failed.push(format!("{}: {e}", m.address));
                }
            }
        }
        if failed.is_empty() { Ok(total) } else { Err(imap(failed.join("; "))) }
    }

    /// Fetches a mailbox's unseen messages, receives each, then flags or moves it.
    pub async fn poll_mailbox(&self, m: &MailboxRecord) -> Result<PollReport> {
        let host = m.imap_host.as_deref().ok_or_else(|| imap("the mailbox has no IMAP server"))?;
        let port = u16::try_from(m.imap_port.unwrap_or(143)).map_err(imap)?;
        match m.imap_tls.as_deref() {
            Some("plain") => {}
            // TLS and STARTTLS need a TLS stream under async-imap; not built yet.
            other => return Err(imap(format!("connection mode {} is not supported yet; use plain on loopback", other.unwrap_or("none")))),
        }
        let stream = timed(tokio::net::TcpStream::connect((host, port))).await?.map_err(imap)?;
        let mut client = async_imap::Client::new(stream);
        timed(client.read_response()).await?.map_err(imap)?.ok_or_else(|| imap("no greeting"))?;
        let user = m.imap_user.clone().unwrap_or_default();
        let secret = m.imap_secret.clone().unwrap_or_default();
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
