//! Incident management: the communication log of a major incident (重大事件) — updates to
//! customers, the service desk, management, stakeholders and suppliers, with the next update
//! promised and an overdue reminder. Updates to customers are what contacts of the ticket's
//! organisation may read; the rest is for staff.

use crate::incidents::{load_visible, major_of, state_of, time};
use crate::writer::snapshot;
use crate::{App, Principal, Result};
use chrono::{DateTime, Utc};
use keel_domain::audit::AuditAction;
use keel_domain::incident::{self as inc, Actor, Audience, CommunicationEntry, CommunicationMedium};
use keel_domain::notification::Audience as Recipients;
use keel_store::incidents::{self as store, CommunicationRecord, TicketRecord};

/// A communication as posted by the major incident team; times in ms since the epoch.
#[derive(Debug, Clone, Default)]
pub struct CommunicationPost {
    pub audience: String,
    pub medium: String,
    pub summary: String,
    pub sent_at: Option<i64>,
    pub next_update_due: Option<i64>,
}

/// The log of a ticket as the asker may read it, and whether the promised update is overdue.
#[derive(Debug, Clone)]
pub struct CommunicationLog {
    pub entries: Vec<CommunicationRecord>,
    pub next_update_overdue: bool,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Communications that go out through Keel (e-mail, the portal) are sent to the people the
/// audience stands for; phone calls, meetings, chat and SMS are only logged.
fn recipients(e: &CommunicationEntry) -> Option<Vec<Recipients>> {
    if !matches!(e.medium, CommunicationMedium::Email | CommunicationMedium::Portal) {
        return None;
    }
    Some(match e.audience {
        Audience::Customers => vec![Recipients::Reporter, Recipients::CustomerContacts, Recipients::Watchers],
        Audience::ServiceDesk => vec![Recipients::AssignmentTeam],
        Audience::Management | Audience::Stakeholders => vec![Recipients::ProjectManager, Recipients::TeamLead, Recipients::Watchers],
        Audience::Suppliers => return None,
    })
}

impl App {
    /// Logs a communication of a major incident (staff of the ticket's project only).
    pub async fn record_major_communication(&self, actor: &Principal, id: &str, post: CommunicationPost) -> Result<CommunicationRecord> {
        let mut w = self.write(actor).await?;
        let t = load_visible(&mut w.tx, actor, id).await?;
        let state = state_of(&t)?;
        let input = inc::CommunicationInput {
            audience: post.audience,
            medium: post.medium,
            summary: post.summary,
            sent_at: post.sent_at.map(time),
            next_update_due: post.next_update_due.map(time),
        };
        let entry = inc::record_communication(&state, major_of(&t).as_ref(), &input, &Actor::from(actor), time(w.now))?;
        let rec = store::insert_communication(
            &mut w.tx,
            &CommunicationRecord {
                id: keel_store::new_id(),
                ticket_id: t.id.clone(),
                seq: 0,
                audience: entry.audience.as_str().into(),
                medium: entry.medium.as_str().into(),
                summary: entry.summary.clone(),
                sent_at: ms(entry.sent_at),
                next_update_due: entry.next_update_due.map(ms),
                author_id: actor.user_id.clone(),
                created_at: w.now,
                author_name: None,
            },
        )
        .await?;
        w.record("major_incident_communication", &rec.id, AuditAction::Create, None, Some(&snapshot(&rec))).await?;
        if let Some(to) = recipients(&entry) {
            let next_update = entry.next_update_due.map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string());
            let vars = serde_json::json!({ "summary": rec.summary, "audience": rec.audience, "next_update": next_update });
            crate::notifications::announce_ticket(&mut w, "incident.major_update", &t, to, vars).await?;
        }
        w.commit().await?;
        Ok(CommunicationRecord { author_name: Some(actor.display_name.clone()), ..rec })
    }

    /// The communication log: all of it for staff, the communications to customers for the
    /// contacts of the ticket's organisation.
    pub async fn major_communications(&self, actor: &Principal, id: &str) -> Result<CommunicationLog> {
        let mut c = self.read().await?;
        let t = load_visible(&mut c, actor, id).await?;
        self.communications_in(&mut c, actor, &t).await
    }

    /// The same for a ticket the caller has already loaded through [`App::get_ticket`] (the ticket page).
    pub async fn major_communications_of(&self, actor: &Principal, t: &TicketRecord) -> Result<CommunicationLog> {
        if !actor.can_see_project(&t.project_id, Some(&t.organization_id)) {
            return Err(crate::AppError::NotFound);
        }
        let mut c = self.read().await?;
        self.communications_in(&mut c, actor, t).await
    }

    pub(crate) async fn communications_in(
        &self,
        c: &mut sqlx::AnyConnection,
        actor: &Principal,
        t: &TicketRecord,
    ) -> Result<CommunicationLog> {
        let entries = store::list_communications(c, &t.id, !actor.is_staff()).await?;
        let promised = entries.last().and_then(|r| r.next_update_due).map(time);
        let overdue = actor.is_staff() && t.major && inc::communication_overdue(&state_of(t)?, promised, time(self.now()));
        Ok(CommunicationLog { entries, next_update_overdue: overdue })
    }
}
