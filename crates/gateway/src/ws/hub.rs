//! The hub: follows the event log from the head and pushes each new event of
//! a conversation to the sockets subscribed to it, and to the inboxes of the
//! tenant's agents. Each gateway replica runs its own hub over the same log,
//! so a socket on replica A sees what was appended through replica B.
//!
//! The hub also sees the users' events: one that ends a user's sessions (a
//! role change, erasure, "sign out everywhere") raises the session version
//! the replica checks tokens against ([`crate::auth::session`]) and closes
//! that user's sockets here (4004), on every replica alike.
//!
//! The hub routes; it does not decide what a socket may read: each socket
//! renders what it is given for its caller (a customer gets the customer
//! view of events and typing frames, and no staff-only event: [`crate::view`]).
//!
//! The hub is a best-effort push channel: a client that missed something
//! resumes from its last version over REST or `resume`. So an event the hub
//! cannot use is logged, counted in `jamuna_ws_push_skipped_total{reason}`
//! and skipped, never retried without end: one whose sealed data it cannot
//! open (`unopenable`), and a stored message whose envelope does not decode
//! (`undecodable`, [`LogError::Corrupt`]), which would otherwise meet the hub
//! again at every resubscription and hold back every push after it. (The
//! projections stop at such an event instead: a read model must not skip.)
//!
//! Every socket has a bounded queue. A socket that falls that far behind is
//! told to close (it reconnects and resumes from its last version) rather
//! than making the server buffer without bound.

use crate::auth::session::SessionCache;
use jamuna_commands::{EventLog, LogError, RecordedEvent, Sealer};
use jamuna_domain::conversation::ConversationEvent;
use jamuna_domain::{AggregateKind, ConversationId, StreamId, TenantId, UserId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc};

/// How many frames a socket may have queued before it is closed.
pub const SOCKET_QUEUE: usize = 512;

/// A conversation event, serialised once for every socket that gets it.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub stream: StreamId,
    pub version: u64,
    pub position: u64,
    pub occurred_at: jamuna_domain::Timestamp,
    /// The `event` frame staff get, as JSON text.
    pub frame: Arc<str>,
    pub event: Arc<ConversationEvent>,
}

/// Someone is typing in a conversation (not stored): rendered per socket.
#[derive(Debug, Clone)]
pub struct Typing {
    pub conversation_id: ConversationId,
    pub user: UserId,
    pub role: jamuna_domain::user::Role,
    pub typing: bool,
}

/// What a socket receives from the hub.
#[derive(Debug, Clone)]
pub enum Push {
    Event(Pushed),
    /// A ready-made frame (presence).
    Frame(Arc<str>),
    Typing(Arc<Typing>),
    /// The user's sessions ended (role changed, erased, signed out everywhere)
    /// at this session version: a socket whose token is older closes.
    SessionEnded(u64),
}

/// A socket's side of the hub.
#[derive(Clone)]
pub struct Outlet {
    id: u64,
    tx: mpsc::Sender<Push>,
    /// Notified when the queue overflowed: the socket must close.
    pub overflow: Arc<Notify>,
}

impl Outlet {
    pub fn id(&self) -> u64 {
        self.id
    }
}

#[derive(Default)]
struct Routes {
    conversations: HashMap<StreamId, HashMap<u64, Outlet>>,
    inboxes: HashMap<TenantId, HashMap<u64, Outlet>>,
    /// Every staff socket, with its user: presence goes to them.
    staff: HashMap<TenantId, HashMap<u64, (UserId, Outlet)>>,
    /// Every socket, by its user: ending the user's sessions closes them.
    users: HashMap<(TenantId, UserId), HashMap<u64, Outlet>>,
}

#[derive(Default)]
pub struct Hub {
    routes: Mutex<Routes>,
    next_id: AtomicU64,
    /// The last position pushed (for readiness and tests).
    pub position: AtomicU64,
    /// Poked when a staff socket opens or closes here (see [`super::presence`]).
    pub presence_changed: Notify,
    /// The users' session versions, raised by the events the hub follows.
    pub sessions: SessionCache,
}

impl Hub {
    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new outlet and the receiver the socket reads.
    pub fn outlet(&self) -> (Outlet, mpsc::Receiver<Push>) {
        let (tx, rx) = mpsc::channel(SOCKET_QUEUE);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        (Outlet { id, tx, overflow: Arc::new(Notify::new()) }, rx)
    }

    pub fn subscribe(&self, stream: &StreamId, outlet: &Outlet) {
        self.routes().conversations.entry(stream.clone()).or_default().insert(outlet.id, outlet.clone());
    }

    pub fn unsubscribe(&self, stream: &StreamId, outlet: &Outlet) {
        let mut r = self.routes();
        if let Some(subs) = r.conversations.get_mut(stream) {
            subs.remove(&outlet.id);
            if subs.is_empty() {
                r.conversations.remove(stream);
            }
        }
    }

    pub fn subscribe_inbox(&self, tenant: &TenantId, outlet: &Outlet) {
        self.routes().inboxes.entry(tenant.clone()).or_default().insert(outlet.id, outlet.clone());
    }

    /// A socket of `user` opened: it closes when the user's sessions end.
    pub fn join_user(&self, tenant: &TenantId, user: &UserId, outlet: &Outlet) {
        self.routes().users.entry((tenant.clone(), user.clone())).or_default().insert(outlet.id, outlet.clone());
    }

    /// A user event from the log: a session-ending one raises the user's
    /// session version and closes the user's sockets here.
    pub fn user_event(&self, tenant: &TenantId, user: &UserId, event_type: &str, version: u64) {
        self.sessions.observe(tenant, user, event_type, version);
        if !jamuna_domain::user::ends_sessions(event_type) {
            return;
        }
        let targets: Vec<Outlet> =
            self.routes().users.get(&(tenant.clone(), user.clone())).map(|s| s.values().cloned().collect()).unwrap_or_default();
        for o in targets {
            self.deliver(&o, Push::SessionEnded(version));
        }
    }

    /// A staff socket of `user` opened: it gets `presence` frames.
    pub fn join_staff(&self, tenant: &TenantId, user: &UserId, outlet: &Outlet) {
        self.routes().staff.entry(tenant.clone()).or_default().insert(outlet.id, (user.clone(), outlet.clone()));
        self.presence_changed.notify_one();
    }

    /// Does `user` still have a staff socket on this replica?
    pub fn staff_connected(&self, tenant: &TenantId, user: &UserId) -> bool {
        self.routes().staff.get(tenant).is_some_and(|s| s.values().any(|(u, _)| u == user))
    }

    /// The tenants with staff sockets here.
    pub fn staff_tenants(&self) -> Vec<TenantId> {
        self.routes().staff.keys().cloned().collect()
    }

    /// Sends a ready-made frame to every staff socket of `tenant`.
    pub fn send_to_staff(&self, tenant: &TenantId, frame: Arc<str>) {
        let targets: Vec<Outlet> =
            self.routes().staff.get(tenant).map(|s| s.values().map(|(_, o)| o.clone()).collect()).unwrap_or_default();
        for o in targets {
            self.deliver(&o, Push::Frame(frame.clone()));
        }
    }

    /// Removes every route of a socket (it closed).
    pub fn forget(&self, outlet: &Outlet) {
        let mut r = self.routes();
        r.staff.retain(|_, subs| {
            subs.remove(&outlet.id);
            !subs.is_empty()
        });
        r.conversations.retain(|_, subs| {
            subs.remove(&outlet.id);
            !subs.is_empty()
        });
        r.inboxes.retain(|_, subs| {
            subs.remove(&outlet.id);
            !subs.is_empty()
        });
        r.users.retain(|_, subs| {
            subs.remove(&outlet.id);
            !subs.is_empty()
        });
    }

    /// Sends a typing indicator to a conversation's sockets except `except`.
    pub fn broadcast_typing(&self, stream: &StreamId, typing: Arc<Typing>, except: Option<u64>) {
        let targets: Vec<Outlet> = self
            .routes()
            .conversations
            .get(stream)
            .map(|s| s.values().filter(|o| Some(o.id) != except).cloned().collect())
            .unwrap_or_default();
        for o in targets {
            self.deliver(&o, Push::Typing(typing.clone()));
        }
    }

    fn deliver(&self, outlet: &Outlet, push: Push) {
        match outlet.tx.try_send(push) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("jamuna_ws_slow_consumers_total").increment(1);
                self.forget(outlet);
                outlet.overflow.notify_one();
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.forget(outlet),
        }
    }

    /// Routes one stored event.
    pub fn publish(&self, pushed: Pushed) {
        let (subs, inbox): (Vec<Outlet>, Vec<Outlet>) = {
            let r = self.routes();
            (
                r.conversations.get(&pushed.stream).map(|s| s.values().cloned().collect()).unwrap_or_default(),
                r.inboxes.get(pushed.stream.tenant()).map(|s| s.values().cloned().collect()).unwrap_or_default(),
            )
        };
        let mut sent = std::collections::HashSet::new();
        for o in subs.iter().chain(inbox.iter()) {
            if sent.insert(o.id) {
                self.deliver(o, Push::Event(pushed.clone()));
            }
        }
        self.position.fetch_max(pushed.position, Ordering::Relaxed);
    }

    /// Follows the log from its head until the process stops, resubscribing
    /// after an error, and past an event whose envelope does not decode.
    ///
    /// Events are opened (decrypted: in the distributed mode each opening asks
    /// the key store, a database round trip) up to [`OPENING_AHEAD`] at a time,
    /// and published strictly in log order.
    pub async fn run(self: Arc<Self>, log: Arc<dyn EventLog>, sealer: Sealer) {
        use futures::StreamExt;
        let mut after = match log.head().await {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "the push hub cannot read the log head");
                0
            }
        };
        self.position.store(after, Ordering::Relaxed);
        loop {
            let mut skipped = false;
            match log.subscribe_all(after).await {
                Ok(sub) => {
                    let events = futures::stream::unfold(sub, |mut sub| async move { sub.next().await.map(|next| (next, sub)) });
                    let sealer = &sealer;
                    let mut opened = std::pin::pin!(
                        events.map(|next| async move { Ok::<_, LogError>(open_for_push(sealer, next?).await) }).buffered(OPENING_AHEAD)
                    );
                    while let Some(next) = opened.next().await {
                        match next {
                            Ok((recorded, pushed, span)) => {
                                after = recorded.position;
                                if recorded.stream.kind() == AggregateKind::User
                                    && let Ok(user) = UserId::parse(recorded.stream.id())
                                {
                                    self.user_event(recorded.stream.tenant(), &user, &recorded.event_type, recorded.version);
                                }
                                let _entered = span.as_ref().map(|s| s.enter());
                                if let Some(p) = pushed {
                                    // From the event's command to its push (the sockets' queues).
                                    let since = (chrono::Utc::now() - recorded.meta.occurred_at).to_std().unwrap_or_default();
                                    metrics::histogram!("jamuna_ws_push_seconds").record(since.as_secs_f64());
                                    self.publish(p);
                                } else {
                                    if recorded.stream.kind() == AggregateKind::Conversation {
                                        metrics::counter!("jamuna_ws_push_skipped_total", "reason" => "unopenable").increment(1);
                                    }
                                    self.position.fetch_max(after, Ordering::Relaxed);
                                }
                            }
                            // Everything before it has been delivered: go on after it.
                            Err(LogError::Corrupt { position, reason }) if position > after => {
                                tracing::error!(position, error = %reason, "the push hub skips a stored event it cannot decode");
                                metrics::counter!("jamuna_ws_push_skipped_total", "reason" => "undecodable").increment(1);
                                after = position;
                                self.position.fetch_max(after, Ordering::Relaxed);
                                skipped = true;
                                break;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "push subscription failed; resubscribing");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "push hub cannot subscribe; retrying"),
            }
            if !skipped {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }
}

/// `recorded` opened for its push ([`to_pushed`]), with the span its push runs in: a
/// conversation event's push continues the event's trace, as a child of the span that
/// appended it (see `EventMeta::span_id_hex`).
async fn open_for_push(sealer: &Sealer, recorded: RecordedEvent) -> (RecordedEvent, Option<Pushed>, Option<tracing::Span>) {
    let span = (recorded.stream.kind() == AggregateKind::Conversation).then(|| {
        tracing::info_span!("push", otel.kind = "consumer", trace_id = %recorded.meta.trace_id_hex(), parent_id = %recorded.meta.span_id_hex(), event_type = %recorded.event_type, stream = %recorded.stream, position = recorded.position)
    });
    let pushed = match &span {
        Some(span) => tracing::Instrument::instrument(to_pushed(sealer, &recorded), span.clone()).await,
        None => to_pushed(sealer, &recorded).await,
    };
    (recorded, pushed, span)
}

/// Events the push hub opens ahead of the one it publishes: their openings (a key
/// store round trip each in the distributed mode) overlap, their pushes keep log order.
const OPENING_AHEAD: usize = 32;

/// A conversation event with its staff `event` frame (other aggregates are
/// not pushed); [`crate::view::CustomerView::frame`] gives a customer's.
pub async fn to_pushed(sealer: &Sealer, recorded: &RecordedEvent) -> Option<Pushed> {
    if recorded.stream.kind() != AggregateKind::Conversation {
        return None;
    }
    let opened = match sealer.open::<ConversationEvent>(recorded).await {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(position = recorded.position, error = %e, "cannot open an event for push");
            return None;
        }
    };
    let frame = serde_json::json!({
        "type": "event",
        "conversation_id": recorded.stream.id(),
        "version": recorded.version,
        "position": recorded.position,
        "occurred_at": recorded.meta.occurred_at,
        "event": &opened.data,
    });
    Some(Pushed {
        stream: recorded.stream.clone(),
        version: recorded.version,
        position: recorded.position,
        occurred_at: recorded.meta.occurred_at,
        frame: frame.to_string().into(),
        event: Arc::new(opened.data),
    })
}
