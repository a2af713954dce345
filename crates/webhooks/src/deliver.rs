//! The deliverer: a consumer of the log that POSTs subscribed events.
//!
//! It reads the whole log in order. Subscription events
//! ([`WebhooksEvent`]) are folded into its list of subscribers (their secrets
//! opened with the key store), so an event is delivered to the webhooks that
//! existed at its place in the log. Conversation events after its checkpoint
//! are delivered to every subscriber of their type, concurrently; each
//! delivery is attempted until the receiver answers 2xx or the attempts are
//! used up ([`Backoff`]), and its outcome is recorded as an event on the
//! webhook's deliveries stream ([`Deliveries`]). Then the checkpoint moves
//! past the event.
//!
//! **At least once.** The delivery id is derived from the webhook and the
//! event ([`payload::delivery_id`]), so it is the same on every attempt and
//! after a restart. A deliverer killed after a receiver accepted a delivery
//! but before its outcome was recorded sends it again when it restarts (one
//! duplicate per delivery in flight, with the same `X-Jamuna-Delivery`: a
//! receiver de-duplicates by it); one killed after recording skips it (the
//! outcome is checked before sending). Attempts are counted per run, so a
//! restart begins a delivery's attempts again.
//!
//! Events are delivered one after the other: a slow receiver delays the
//! deliveries after it (by at most its attempts' time-outs and back-off).
//!
//! With replicas, the deliverer runs only while its process holds the
//! [`UNIT`] lease ([`Deliverer::run_until`]'s `held`), and resumes from the
//! shared checkpoint when it takes over.

use crate::backoff::Backoff;
use crate::guard;
use crate::http::Client;
use crate::{payload, sign};
use jamuna_commands::handler::CommandContext;
use jamuna_commands::{CommandHandler, RecordedEvent};
use jamuna_domain::conversation::ConversationEvent;
use jamuna_domain::webhook::{Deliveries, DeliveriesEvent, RecordDelivery, WebhooksEvent};
use jamuna_domain::{AggregateKind, Personal, StreamId, TenantId};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The unit of work replicas hold a lease on.
pub const UNIT: &str = "webhooks";
/// The key of the deliverer's checkpoint.
pub const CHECKPOINT: &str = "webhook-deliverer";

/// Where the deliverer remembers the last event it delivered.
#[async_trait::async_trait]
pub trait Checkpoints: Send + Sync + 'static {
    /// The position stored under `key` (0: none).
    async fn load(&self, key: &str) -> std::io::Result<u64>;
    async fn store(&self, key: &str, position: u64) -> std::io::Result<()>;
}

#[derive(Debug, Clone)]
pub struct DelivererConfig {
    /// Hosts that may use `http` and any address (tests, local setups).
    pub allow_insecure_hosts: Vec<String>,
    pub backoff: Backoff,
    /// How long one attempt may take, connection included.
    pub timeout: Duration,
}

impl Default for DelivererConfig {
    fn default() -> Self {
        Self { allow_insecure_hosts: vec![], backoff: Backoff::default(), timeout: Duration::from_secs(10) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("the event log: {0}")]
    Log(#[from] jamuna_commands::LogError),
    #[error("a webhook event could not be opened: {0}")]
    Seal(#[from] jamuna_commands::SealError),
    #[error("a delivery could not be recorded: {0}")]
    Record(String),
    #[error("the checkpoint: {0}")]
    Checkpoint(#[from] std::io::Error),
}

/// A subscriber as the deliverer knows it.
#[derive(Debug, Clone)]
struct Subscriber {
    url: String,
    event_types: Vec<String>,
    /// `None` once removed (its key erased).
    secret: Option<String>,
}

/// Why an attempt failed.
#[derive(Debug, Clone)]
struct Failure {
    status: Option<u16>,
    error: String,
    /// Not worth another attempt (the target is forbidden).
    permanent: bool,
}

enum Ended {
    Stopped,
    LeaseLost,
}

pub struct Deliverer {
    commands: Arc<CommandHandler>,
    checkpoint: Arc<dyn Checkpoints>,
    client: Client,
    config: DelivererConfig,
}

impl Deliverer {
    pub fn new(commands: Arc<CommandHandler>, checkpoint: Arc<dyn Checkpoints>, config: DelivererConfig) -> Result<Self, rustls::Error> {
        Ok(Self { commands, checkpoint, client: Client::new()?, config })
    }

    /// Delivers until `stop` turns true; with `held`, only while the set it
    /// watches contains [`UNIT`] (replicas share the work by a lease).
    pub async fn run_until(self, mut stop: watch::Receiver<bool>, mut held: Option<watch::Receiver<BTreeSet<String>>>) {
        loop {
            if *stop.borrow() {
                return;
            }
            if let Some(h) = held.as_mut() {
                tokio::select! {
                    r = h.wait_for(|s| s.contains(UNIT)) => if r.is_err() { return },
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
            match self.session(&mut stop, held.clone()).await {
                Ok(Ended::Stopped) => return,
                Ok(Ended::LeaseLost) => tracing::info!("webhook deliverer: lease lost; standing by"),
                Err(e) => {
                    tracing::warn!(error = %e, "webhook deliverer: restarting from its checkpoint in 1 s");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            }
        }
    }

    async fn session(
        &self,
        stop: &mut watch::Receiver<bool>,
        held: Option<watch::Receiver<BTreeSet<String>>>,
    ) -> Result<Ended, DeliverError> {
        let checkpoint = self.checkpoint.load(CHECKPOINT).await?;
        let mut stored = checkpoint;
        let mut subscribers: HashMap<TenantId, BTreeMap<String, Subscriber>> = HashMap::new();
        let mut position = 0;
        let lost = || {
            let held = held.clone();
            async move {
                match held {
                    Some(mut h) => {
                        let _ = h.wait_for(|s| !s.contains(UNIT)).await;
                    }
                    None => std::future::pending().await,
                }
            }
        };
        loop {
            let mut sub = self.commands.log().subscribe_all(position).await?;
            loop {
                let next = tokio::select! {
                    n = sub.next() => n,
                    _ = stop.wait_for(|s| *s) => return Ok(Ended::Stopped),
                    _ = lost() => return Ok(Ended::LeaseLost),
                };
                let recorded = match next {
                    Some(Ok(r)) => r,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, position, "webhook deliverer: the subscription failed; resubscribing in 1 s");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(1)) => break,
                            _ = stop.wait_for(|s| *s) => return Ok(Ended::Stopped),
                        }
                    }
                    // The log ended the subscription: again, after a pause (never a spin).
                    None => tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => break,
                        _ = stop.wait_for(|s| *s) => return Ok(Ended::Stopped),
                    },
                };
                position = recorded.position;
                match recorded.stream.kind() {
                    AggregateKind::Webhooks => self.fold(&mut subscribers, &recorded).await?,
                    AggregateKind::Conversation if recorded.position > checkpoint => {
                        let targets: Vec<(String, Subscriber)> = subscribers
                            .get(&recorded.meta.tenant)
                            .into_iter()
                            .flatten()
                            .filter(|(_, s)| s.event_types.contains(&recorded.event_type))
                            .map(|(id, s)| (id.clone(), s.clone()))
                            .collect();
                        if !targets.is_empty() {
                            let all = futures::future::join_all(targets.iter().map(|(id, s)| self.deliver(id, s, &recorded)));
                            let results = tokio::select! {
                                r = all => r,
                                _ = stop.wait_for(|s| *s) => return Ok(Ended::Stopped),
                                _ = lost() => return Ok(Ended::LeaseLost),
                            };
                            results.into_iter().collect::<Result<Vec<()>, _>>()?;
                            self.checkpoint.store(CHECKPOINT, position).await?;
                            stored = position;
                        }
                    }
                    _ => {}
                }
                if position > stored + 1000 {
                    self.checkpoint.store(CHECKPOINT, position).await?;
                    stored = position;
                }
            }
        }
    }

    async fn fold(
        &self,
        subscribers: &mut HashMap<TenantId, BTreeMap<String, Subscriber>>,
        recorded: &RecordedEvent,
    ) -> Result<(), DeliverError> {
        let opened = self.commands.sealer().open::<WebhooksEvent>(recorded).await?;
        let tenant = subscribers.entry(recorded.meta.tenant.clone()).or_default();
        let secret = |p: &Personal| match p {
            Personal::Plain(s) => Some(s.clone()),
            _ => None,
        };
        match opened.data {
            WebhooksEvent::WebhookRegistered { webhook, url, event_types, secret: s } => {
                tenant.insert(webhook, Subscriber { url, event_types, secret: secret(&s) });
            }
            WebhooksEvent::WebhookChanged { webhook, url, event_types } => {
                if let Some(sub) = tenant.get_mut(&webhook) {
                    sub.url = url;
                    sub.event_types = event_types;
                }
            }
            WebhooksEvent::WebhookSecretRotated { webhook, secret: s } => {
                if let Some(sub) = tenant.get_mut(&webhook) {
                    sub.secret = secret(&s);
                }
            }
            WebhooksEvent::WebhookRemoved { webhook } => {
                tenant.remove(&webhook);
            }
        }
        Ok(())
    }

    /// Delivers one event to one webhook and records the outcome.
    async fn deliver(&self, webhook: &str, subscriber: &Subscriber, recorded: &RecordedEvent) -> Result<(), DeliverError> {
        let tenant = &recorded.meta.tenant;
        let id = payload::delivery_id(webhook, recorded.meta.event_id);
        let stream = StreamId::webhook_deliveries(tenant, webhook);
        let done = self.commands.load::<Deliveries>(&stream).await.map_err(|e| DeliverError::Record(e.to_string()))?;
        if done.delivered(&id) {
            return Ok(());
        }
        let mut attempt = 0;
        let failure = loop {
            attempt += 1;
            let Some(wait) = self.config.backoff.before(attempt) else { break None };
            tokio::time::sleep(wait).await;
            match self.attempt(&id, subscriber, recorded).await {
                Ok(status) => {
                    let event = DeliveriesEvent::WebhookDelivered {
                        delivery_id: id.clone(),
                        event_id: recorded.meta.event_id,
                        event_type: recorded.event_type.clone(),
                        attempts: attempt,
                        status,
                    };
                    tracing::info!(webhook, delivery = %id, attempt, status, "webhook delivered");
                    return self.record(tenant, &stream, event, recorded).await;
                }
                Err(f) => {
                    tracing::info!(webhook, delivery = %id, attempt, status = ?f.status, error = %f.error, "webhook attempt failed");
                    let permanent = f.permanent;
                    if permanent {
                        break Some(f);
                    }
                    if self.config.backoff.before(attempt + 1).is_none() {
                        break Some(f);
                    }
                }
            }
        };
        let f = failure.unwrap_or(Failure { status: None, error: "no attempt was made".into(), permanent: true });
        let event = DeliveriesEvent::WebhookDeliveryFailed {
            delivery_id: id,
            event_id: recorded.meta.event_id,
            event_type: recorded.event_type.clone(),
            attempts: attempt,
            status: f.status,
            error: f.error,
        };
        self.record(tenant, &stream, event, recorded).await
    }

    async fn record(
        &self,
        tenant: &TenantId,
        stream: &StreamId,
        event: DeliveriesEvent,
        cause: &RecordedEvent,
    ) -> Result<(), DeliverError> {
        let ctx = CommandContext {
            tenant: tenant.clone(),
            now: chrono::Utc::now(),
            correlation_id: cause.meta.correlation_id,
            causation_id: Some(cause.meta.event_id),
        };
        self.commands.execute::<Deliveries>(stream, &RecordDelivery(event), &ctx).await.map_err(|e| DeliverError::Record(e.to_string()))?;
        Ok(())
    }

    /// One POST: the event opened now (an erased user's data reads erased).
    async fn attempt(&self, id: &str, subscriber: &Subscriber, recorded: &RecordedEvent) -> Result<u16, Failure> {
        let permanent = |error: String| Failure { status: None, error, permanent: true };
        let secret = subscriber.secret.as_deref().ok_or_else(|| permanent("the webhook has no secret".into()))?;
        let opened = self.commands.sealer().open::<ConversationEvent>(recorded).await.map_err(|e| Failure {
            status: None,
            error: format!("the event could not be opened: {e}"),
            permanent: false,
        })?;
        let body = payload::body(id, &opened);
        let signature = sign::header(secret.as_bytes(), chrono::Utc::now().timestamp(), body.as_bytes());
        let headers = [
            ("content-type", "application/json"),
            ("user-agent", "Jamuna-Webhooks/1"),
            ("x-jamuna-signature", signature.as_str()),
            ("x-jamuna-delivery", id),
            ("x-jamuna-event", recorded.event_type.as_str()),
        ];
        let sent = tokio::time::timeout(self.config.timeout, async {
            let target = guard::resolve(&subscriber.url, &self.config.allow_insecure_hosts).await.map_err(|e| match e {
                guard::GuardError::Unresolved(..) => Failure { status: None, error: e.to_string(), permanent: false },
                refused => permanent(refused.to_string()),
            })?;
            self.client.post(&target, &headers, body).await.map_err(|error| Failure { status: None, error, permanent: false })
        })
        .await
        .unwrap_or_else(|_| {
            Err(Failure { status: None, error: format!("no answer within {} s", self.config.timeout.as_secs()), permanent: false })
        })?;
        if (200..300).contains(&sent) {
            Ok(sent)
        } else {
            Err(Failure { status: Some(sent), error: format!("the receiver answered {sent}"), permanent: false })
        }
    }
}
