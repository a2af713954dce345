//! The notifier: e-mails that leave Jamuna when someone is waiting.
//!
//! It follows the log like the AI worker (a [`LogConsumer`] with a
//! checkpoint) and sends two kinds of mail ([`NotificationKind`]):
//!
//! * **unanswered** — to the assigned agent, when a customer message has had
//!   no agent reply for `notify.unanswered_after_secs` ([`due`]: the due
//!   times are derived from the log, so they survive a restart);
//! * **reply** — to the customer, the agent's reply, when the customer has no
//!   socket on the conversation (the presence port's `customer_present`,
//!   shared in Redis in the distributed mode) and we have their address
//!   ([`Addresses`]).
//!
//! **Record, then send; the log is the outbox.** The notifier never sends a
//! mail when it decides to: it records `NotificationSent` (the domain
//! records one per kind and message, whoever asks and however often), and
//! sends a mail when it *reads* a `NotificationSent` past its checkpoint,
//! storing the checkpoint at that event's position as soon as the mail is
//! handed to the relay. So:
//!
//! * a crash after recording and before sending: the restarted notifier
//!   reads the event past its checkpoint and sends it — the mail is late,
//!   not lost;
//! * a crash after sending and before the checkpoint is stored (one write,
//!   right after the relay's `250`): it is sent again, with the same
//!   `Message-ID` (the event's id), which mail systems use to drop the copy;
//! * a restart in any other state sends nothing twice: the events before the
//!   checkpoint are only folded into the state, never acted on.
//!
//! On start it folds the whole log from the beginning into its state
//! ([`due::Conversations`]: small, a few fields per conversation) and acts
//! only past its checkpoint. Text is opened from the log only when a mail is
//! sent; a message whose author was erased reads as erased, and then no
//! mail is sent (an erased user's data never leaves).
//!
//! **Where it runs.** In `jamuna serve`, in the process. In the distributed
//! mode, in the projector role: the role that already follows the whole
//! log without a model, has the read models (the users' addresses), and
//! shares its work by leases — the notifier is one unit, [`UNIT`], held by
//! one projector replica at a time; another takes it over from the
//! checkpoint when that one dies.

pub mod due;
pub mod smtp;

use crate::notify::due::Conversations;
use crate::notify::smtp::{Mail, MailError, Mailer};
use jamuna_ai_worker::worker::CheckpointStore;
use jamuna_commands::handler::{CommandContext, CommandHandler};
use jamuna_commands::{EventLog, LogError, RecordedEvent};
use jamuna_domain::conversation::{Author, Conversation, ConversationCommand, ConversationEvent, NotificationKind};
use jamuna_domain::{AggregateKind, ConversationId, StreamId, TenantId, UserId};
use jamuna_projections::runtime::follow::{Backoff, LogConsumer, Next, RetryPolicy, follow_log};
use jamuna_projections::sessions::PresenceStore;
use jamuna_projections::users::UserStore;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The notifier's unit of work among replicas, and its checkpoint's key.
pub const UNIT: &str = "notifier";

/// How many events a batch takes from the log.
const BATCH: usize = 256;

/// Back-off after a failure (the log or the relay unavailable).
const RETRY: RetryPolicy = RetryPolicy { initial: Duration::from_secs(1), max: Duration::from_secs(30), after_break: None };

/// How often, at most, due times are checked when nothing arrives.
const TICK: Duration = Duration::from_secs(1);

/// Where a user's e-mail address comes from: the users read model, which
/// holds a customer's identity (verified by the tenant's site, or typed into
/// the pre-chat form) and a registered account's address
/// ([`jamuna_projections::users::contact_email`] picks one).
#[async_trait::async_trait]
pub trait Addresses: Send + Sync {
    /// `user`'s address, if they gave one and were not erased.
    async fn email(&self, tenant: &TenantId, user: &UserId) -> Result<Option<String>, String>;
}

/// Addresses from the users read model: identified customers, the pre-chat
/// form, registered accounts.
pub struct RegisteredUsers(pub Arc<dyn UserStore>);

#[async_trait::async_trait]
impl Addresses for RegisteredUsers {
    async fn email(&self, tenant: &TenantId, user: &UserId) -> Result<Option<String>, String> {
        let record = self.0.user(tenant, user).await.map_err(|e| e.to_string())?;
        Ok(record.and_then(|r| jamuna_projections::users::contact_email(r.identity.as_ref(), r.email.as_deref(), r.erased)))
    }
}

/// Every source of addresses the notifier asks. The one place to add one.
pub fn addresses(users: Arc<dyn UserStore>) -> Arc<dyn Addresses> {
    Arc::new(RegisteredUsers(users))
}

/// What the notifier is told.
#[derive(Clone)]
pub struct Settings {
    /// How long a customer message waits for an agent before the assignee
    /// is e-mailed; `None`: never.
    pub unanswered_after: Option<Duration>,
    /// Where the dashboard is (`http.public_origin`): links in mails.
    pub origin: String,
}

pub struct Notifier {
    pub commands: Arc<CommandHandler>,
    pub presence: Arc<dyn PresenceStore>,
    pub addresses: Arc<dyn Addresses>,
    pub mailer: Arc<dyn Mailer>,
    pub checkpoint: Arc<dyn CheckpointStore>,
    pub settings: Settings,
}

impl Notifier {
    /// Runs while this process holds [`UNIT`] in `held`, until `stop` turns true.
    pub async fn run_until(self, mut held: watch::Receiver<BTreeSet<String>>, mut stop: watch::Receiver<bool>) {
        let log: Arc<dyn EventLog> = self.commands.log().clone();
        let mut backoff = Backoff::new(RETRY);
        loop {
            // Wait for the lease (at once when alone).
            tokio::select! {
                r = held.wait_for(|h| h.contains(UNIT)) => if r.is_err() { return },
                _ = stop.wait_for(|s| *s) => return,
            }
            let from = match self.start_from(log.as_ref()).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "the notifier cannot read its checkpoint; retrying");
                    if backoff.pause(&mut stop).await {
                        return;
                    }
                    continue;
                }
            };
            tracing::info!(checkpoint = from, "notifier following the log");
            let mut following = Following {
                notifier: &self,
                state: Conversations::default(),
                position: 0,
                acting_after: from,
                stored: from,
                held: held.clone(),
            };
            let ended = follow_log(log.as_ref(), &mut stop, BATCH, &mut backoff, &mut following).await;
            following.store().await;
            if matches!(ended, jamuna_projections::runtime::follow::Followed::Stopped) {
                tracing::info!(position = following.position, "notifier stopped");
                return;
            }
            tracing::info!("the notifier's lease went to another replica");
        }
    }

    /// The checkpoint; on the very first start, the head of the log: a
    /// notifier turned on in an installation with a history folds it but
    /// does not e-mail every customer about every past reply.
    async fn start_from(&self, log: &dyn EventLog) -> Result<u64, String> {
        match self.checkpoint.load(UNIT).await.map_err(|e| e.to_string())? {
            0 => {
                let head = log.head().await.map_err(|e| e.to_string())?;
                self.checkpoint.store(UNIT, head).await.map_err(|e| e.to_string())?;
                Ok(head)
            }
            p => Ok(p),
        }
    }

    /// Records a notification (the domain keeps it to one per kind and
    /// message); `Err`: the log is unavailable, try again.
    async fn record(&self, stream: &StreamId, kind: NotificationKind, recipient: &UserId, about_version: u64) -> Result<(), String> {
        let command = ConversationCommand::RecordNotification { kind, recipient: recipient.clone(), about_version };
        let ctx = CommandContext::new(stream.tenant().clone(), chrono::Utc::now());
        match self.commands.execute::<Conversation>(stream, &command, &ctx).await {
            Ok(_) => Ok(()),
            // A business refusal will not change by retrying: say so and go on.
            Err(jamuna_commands::handler::CommandError::Rejected(e)) => {
                tracing::warn!(error = %e, %stream, "a notification could not be recorded");
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Sends the mail a `NotificationSent` stands for. `Ok(false)`: nothing to
    /// send (no address, the text was erased); `Err`: try again later.
    async fn send(&self, recorded: &RecordedEvent, kind: NotificationKind, recipient: &UserId, about: u64) -> Result<bool, MailError> {
        let tenant = &recorded.meta.tenant;
        let Some(to) = self.addresses.email(tenant, recipient).await.map_err(MailError::Config)? else {
            tracing::info!(%recipient, "no e-mail address: notification not sent");
            return Ok(false);
        };
        let events = self.commands.log().read_stream(&recorded.stream, about.saturating_sub(1)).await.map_err(log_error)?;
        let Some(source) = events.into_iter().find(|e| e.version == about) else { return Ok(false) };
        let opened = self.commands.sealer().open::<ConversationEvent>(&source).await.map_err(|e| MailError::Config(e.to_string()))?;
        let ConversationEvent::MessagePosted { text, .. } = &opened.data else { return Ok(false) };
        let Some(text) = text.text() else {
            tracing::info!(stream = %recorded.stream, "the message was erased: notification not sent");
            return Ok(false);
        };
        let conversation = recorded.stream.id();
        let mail = compose(kind, &to, conversation, text, &self.settings.origin, &recorded.meta.event_id);
        self.mailer.send(&mail).await?;
        metrics::counter!("jamuna_notifications_sent_total", "kind" => kind_name(kind)).increment(1);
        Ok(true)
    }
}

fn log_error(e: LogError) -> MailError {
    MailError::Io(std::io::Error::other(e.to_string()))
}

fn kind_name(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::Unanswered => "unanswered",
        NotificationKind::Reply => "reply",
    }
}

/// The mail of a notification: plain text, the message quoted, and for an
/// agent a link to the conversation in the dashboard. Its Message-ID is the
/// recording event's id, the same at every attempt.
pub fn compose(kind: NotificationKind, to: &str, conversation: &str, text: &str, origin: &str, event_id: &uuid::Uuid) -> Mail {
    let quoted: String = text.lines().map(|l| format!("> {l}\n")).collect();
    let (subject, body) = match kind {
        NotificationKind::Unanswered => (
            "A customer is waiting for your answer".to_owned(),
            format!(
                "A customer in a conversation assigned to you has had no answer yet. They wrote:\n\n{quoted}\nAnswer them in the dashboard:\n{}/admin/#/inbox/mine/{conversation}\n",
                origin.trim_end_matches('/')
            ),
        ),
        NotificationKind::Reply => (
            "You have a reply from our support team".to_owned(),
            format!("Our support team answered you while you were away:\n\n{quoted}\nOpen the chat again to reply.\n"),
        ),
    };
    Mail { to: to.to_owned(), subject, body, message_id: format!("<{}@notify.jamuna>", event_id.simple()) }
}

/// One pass over the log while the lease is held.
struct Following<'a> {
    notifier: &'a Notifier,
    state: Conversations,
    position: u64,
    /// Events after this position are acted on; those up to it only folded.
    acting_after: u64,
    stored: u64,
    held: watch::Receiver<BTreeSet<String>>,
}

impl Following<'_> {
    async fn store(&mut self) {
        if self.position > self.stored {
            match self.notifier.checkpoint.store(UNIT, self.position).await {
                Ok(()) => self.stored = self.position,
                Err(e) => tracing::warn!(error = %e, "the notifier cannot store its checkpoint"),
            }
        }
    }

    /// Acts on one event past the checkpoint; `Err`: retry it.
    async fn act(&mut self, recorded: &RecordedEvent, event: &ConversationEvent) -> Result<(), String> {
        match event {
            ConversationEvent::MessagePosted { author: Author::Agent { .. }, .. } => {
                let stream = &recorded.stream;
                let Some(customer) = self.state.customer(stream).cloned() else { return Ok(()) };
                if self.state.notified(stream, NotificationKind::Reply, recorded.version) {
                    return Ok(());
                }
                let Ok(conversation) = ConversationId::parse(stream.id()) else { return Ok(()) };
                let n = self.notifier;
                if n.presence.customer_present(stream.tenant(), &conversation).await.map_err(|e| e.to_string())? {
                    return Ok(());
                }
                if n.addresses.email(stream.tenant(), &customer).await?.is_none() {
                    return Ok(());
                }
                n.record(stream, NotificationKind::Reply, &customer, recorded.version).await
            }
            ConversationEvent::NotificationSent { kind, recipient, about_version } => {
                match self.notifier.send(recorded, *kind, recipient, *about_version).await {
                    Ok(_) => {}
                    Err(MailError::Io(e)) => return Err(format!("cannot send a notification: {e}")),
                    Err(e) => tracing::warn!(error = %e, stream = %recorded.stream, "a notification was not sent"),
                }
                // Sent (or given up): never again.
                self.position = recorded.position;
                self.store().await;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Records what is due now.
    async fn record_due(&mut self) -> Result<(), String> {
        let Some(after) = self.notifier.settings.unanswered_after else { return Ok(()) };
        for due in self.state.due(chrono::Utc::now(), after) {
            self.notifier.record(&due.stream, due.kind, &due.recipient, due.about_version).await?;
            // Until the event comes back through the log, do not ask again.
            self.state.apply(
                &due.stream,
                0,
                chrono::Utc::now(),
                &ConversationEvent::NotificationSent { kind: due.kind, recipient: due.recipient, about_version: due.about_version },
            );
        }
        Ok(())
    }
}

#[derive(Debug)]
struct LeaseLost;

#[async_trait::async_trait]
impl LogConsumer for Following<'_> {
    type Halt = LeaseLost;

    fn position(&self) -> u64 {
        self.position
    }

    async fn handle(&mut self, batch: &[RecordedEvent]) -> Next<LeaseLost> {
        for recorded in batch {
            if recorded.stream.kind() == AggregateKind::Conversation {
                match jamuna_commands::seal::decode::<ConversationEvent>(recorded) {
                    Ok(event) => {
                        self.state.apply(&recorded.stream, recorded.version, recorded.meta.occurred_at, &event);
                        if recorded.position > self.acting_after
                            && let Err(e) = self.act(recorded, &event).await
                        {
                            return Next::Retry(e);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, position = recorded.position, "the notifier skips an event it cannot read"),
                }
            }
            self.position = recorded.position;
        }
        if self.position > self.acting_after {
            self.store().await;
        }
        Next::Continue
    }

    async fn interrupted(&mut self) {
        let wait = match self.notifier.settings.unanswered_after.and_then(|a| self.state.next_due(a)) {
            Some(at) => (at - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO).min(TICK),
            None => TICK,
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = self.held.changed() => {}
        }
    }

    async fn on_interrupt(&mut self) -> Next<LeaseLost> {
        if !self.held.borrow().contains(UNIT) {
            return Next::Halt(LeaseLost);
        }
        match self.record_due().await {
            Ok(()) => Next::Continue,
            Err(e) => Next::Retry(e),
        }
    }

    async fn undecodable(&mut self, position: u64, error: &LogError) -> Next<LeaseLost> {
        tracing::error!(position, error = %error, "the notifier skips an event that does not decode");
        self.position = position;
        Next::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_mail_quotes_the_customer_and_links_the_conversation() {
        let id = uuid::Uuid::now_v7();
        let m = compose(NotificationKind::Unanswered, "ann@example.com", "c42", "Where is\nmy card?", "http://chat.example.com/", &id);
        assert_eq!(m.to, "ann@example.com");
        assert!(m.body.contains("> Where is\n> my card?\n"), "{}", m.body);
        assert!(m.body.contains("http://chat.example.com/admin/#/inbox/mine/c42"), "{}", m.body);
        assert_eq!(m.message_id, format!("<{}@notify.jamuna>", id.simple()));
        assert_eq!(
            compose(NotificationKind::Unanswered, "a@b.io", "c42", "x", "o", &id).message_id,
            m.message_id,
            "the same at every attempt"
        );
    }

    #[test]
    fn a_customer_mail_carries_the_reply_and_no_dashboard_link() {
        let m = compose(
            NotificationKind::Reply,
            "cust@example.com",
            "c42",
            "It ships today.",
            "http://chat.example.com",
            &uuid::Uuid::now_v7(),
        );
        assert!(m.body.contains("> It ships today.\n"));
        assert!(!m.body.contains("/admin/"));
    }
}
