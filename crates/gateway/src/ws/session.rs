//! One WebSocket connection of `/api/v1/ws`: authenticate, then serve
//! frames and pushes until either side closes.
//!
//! A session lasts as long as its access token: when the token expires the
//! socket closes (4002) unless the client sent a fresh token of the same
//! user in an `auth` frame before then. It also ends when the user's
//! sessions end (role change, erasure, sign out everywhere: 4004), which
//! the hub learns from the log on every replica.
//!
//! What a socket sends is rendered for its caller: a customer gets the
//! customer view of each event and typing frame, and nothing of a staff-only
//! event, so a customer's versions have gaps ([`crate::view`]).
//!
//! Resume without loss or doubling: on `subscribe` the socket registers with
//! the hub *first*, then sends the stored events after the client's version;
//! every event frame (history or live) is sent only if its version is above
//! the last one sent for that conversation.

use super::hub::{Outlet, Push, Typing};
use super::limits::SocketPermits;
use super::presence::PRESENCE_TTL;
use super::protocol::{ClientFrame, ServerFrame, parse, parse_traced};
use crate::AppState;
use crate::auth::Caller;
use crate::auth::jwt::Verified;
use crate::error::ApiError;
use crate::service;
use crate::trace::{self, TraceContext};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::StreamExt;
use jamuna_domain::conversation::ConversationEvent;
use jamuna_domain::{ConversationId, StreamId};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const CLOSE_UNAUTHENTICATED: u16 = 4001;
pub const CLOSE_TOKEN_EXPIRED: u16 = 4002;
pub const CLOSE_SESSION_ENDED: u16 = 4004;
pub const CLOSE_FORBIDDEN_ORIGIN: u16 = 4003;
pub const CLOSE_TOO_SLOW: u16 = 4008;
pub const CLOSE_POLICY: u16 = 1008;
pub const CLOSE_RESTART: u16 = 1012;
pub const CLOSE_UNSUPPORTED: u16 = 1003;
pub const CLOSE_INVALID_PAYLOAD: u16 = 1007;
pub const CLOSE_TOO_BIG: u16 = 1009;
pub const CLOSE_PROTOCOL: u16 = 1002;

/// Frames a client may send per second (sustained), and the burst allowed.
const FRAMES_PER_SECOND: f64 = 20.0;
const FRAME_BURST: f64 = 40.0;
/// After this many frames over the limit the socket is closed.
const MAX_OVER_LIMIT: u32 = 20;
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
const PING_EVERY: Duration = Duration::from_secs(30);

/// A token bucket for incoming frames.
struct RateLimit {
    tokens: f64,
    at: Instant,
    over: u32,
}

impl RateLimit {
    fn new() -> Self {
        Self { tokens: FRAME_BURST, at: Instant::now(), over: 0 }
    }
    fn allow(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * FRAMES_PER_SECOND).min(FRAME_BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.over += 1;
            false
        }
    }
}

struct Session {
    state: AppState,
    caller: Caller,
    outlet: Outlet,
    /// Last event version sent, per conversation subscribed.
    sent: HashMap<StreamId, u64>,
    /// When the token of the session expires (Unix seconds): re-authentication extends it.
    expires_at: i64,
    /// The session version of the token.
    session: u64,
}

/// How long until `expires_at` (Unix seconds); zero if it has passed.
fn until(expires_at: i64) -> Duration {
    Duration::from_secs(u64::try_from(expires_at - chrono::Utc::now().timestamp()).unwrap_or(0))
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let kind = match code {
        CLOSE_RESTART => None,
        CLOSE_UNAUTHENTICATED => Some("unauthenticated"),
        CLOSE_TOKEN_EXPIRED => Some("token_expired"),
        CLOSE_SESSION_ENDED => Some("session_ended"),
        CLOSE_FORBIDDEN_ORIGIN => Some("origin"),
        CLOSE_TOO_SLOW => Some("too_slow"),
        CLOSE_UNSUPPORTED => Some("unsupported_frame"),
        _ => Some("policy"),
    };
    if let Some(kind) = kind {
        metrics::counter!("jamuna_ws_errors_total", "kind" => kind).increment(1);
    }
    let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from_static(reason) }))).await;
}

async fn send_text(socket: &mut WebSocket, text: impl Into<Utf8Bytes>) -> bool {
    socket.send(Message::Text(text.into())).await.is_ok()
}

async fn send_error(socket: &mut WebSocket, code: &str, message: &str) -> bool {
    metrics::counter!("jamuna_ws_errors_total", "kind" => "frame").increment(1);
    send_text(socket, ServerFrame::Error { code, message }.to_json()).await
}

/// Serves one socket: its first frame must be `auth`; then the caller takes
/// its place among the sockets of its user (a socket over the cap closes).
pub async fn run(mut socket: WebSocket, state: AppState, origin: Option<String>, mut permits: SocketPermits) {
    let Some(Verified { caller, session, expires_at }) = authenticate(&mut socket, &state).await else { return };
    if let Err(too_many) = permits.authenticated(&state.limiter, &caller) {
        close(&mut socket, super::limits::CLOSE_TOO_MANY_SOCKETS, too_many.message()).await;
        return;
    }
    if !state.origin_allowed(&caller.tenant, origin.as_deref()).await {
        close(&mut socket, CLOSE_FORBIDDEN_ORIGIN, "origin not allowed").await;
        return;
    }
    let (outlet, mut pushes) = state.hub.outlet();
    state.hub.join_user(&caller.tenant, &caller.user, &outlet);
    // A session-ending event may have passed the hub before the socket joined: check once more.
    if state.hub.sessions.check(state.commands.log().as_ref(), &caller, session).await.is_err() {
        state.hub.forget(&outlet);
        close(&mut socket, CLOSE_SESSION_ENDED, "the session has ended: sign in again").await;
        return;
    }
    let ready =
        ServerFrame::Ready { user_id: caller.user.as_str(), tenant: caller.tenant.as_str(), role: caller.role, expires_at }.to_json();
    if !send_text(&mut socket, ready).await {
        state.hub.forget(&outlet);
        return;
    }
    metrics::gauge!("jamuna_ws_connections").increment(1.0);
    let staff = caller.require_staff().is_ok();
    if staff {
        session_heartbeat(&state, &caller).await;
        state.hub.join_staff(&caller.tenant, &caller.user, &outlet);
        // The socket learns who is online now; changes follow as `presence` frames.
        match state.presence.online(&caller.tenant).await {
            Ok(online) => {
                if !send_text(&mut socket, super::presence::frame(&online).to_string()).await {
                    state.hub.forget(&outlet);
                    metrics::gauge!("jamuna_ws_connections").decrement(1.0);
                    return;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read who is online"),
        }
    }
    let mut session = Session { state: state.clone(), caller, outlet: outlet.clone(), sent: HashMap::new(), expires_at, session };
    let mut armed = expires_at;
    let expiry = tokio::time::sleep(until(armed));
    tokio::pin!(expiry);
    let mut limit = RateLimit::new();
    let mut last_seen = Instant::now();
    let mut ping = tokio::time::interval(PING_EVERY);
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            incoming = socket.next() => {
                let msg = match incoming {
                    Some(Ok(msg)) => msg,
                    Some(Err(e)) => {
                        let (code, reason) = read_error(&e);
                        tracing::info!(error = %e, code, "closing a socket that sent an unreadable frame");
                        metrics::counter!("jamuna_ws_errors_total", "reason" => reason).increment(1);
                        close(&mut socket, code, reason).await;
                        break;
                    }
                    None => break,
                };
                last_seen = Instant::now();
                match msg {
                    Message::Text(text) => {
                        if !limit.allow() {
                            if limit.over > MAX_OVER_LIMIT {
                                close(&mut socket, CLOSE_POLICY, "too many frames").await;
                                break;
                            }
                            if !send_error(&mut socket, "rate_limited", "too many frames; slow down").await { break }
                            continue;
                        }
                        metrics::counter!("jamuna_ws_frames_in_total").increment(1);
                        if until(session.expires_at).is_zero() {
                            close(&mut socket, CLOSE_TOKEN_EXPIRED, "the token has expired: reconnect with a fresh one").await;
                            break;
                        }
                        if !session.handle(&mut socket, text.as_str()).await { break }
                        if session.expires_at != armed {
                            armed = session.expires_at;
                            expiry.as_mut().reset(tokio::time::Instant::now() + until(armed));
                        }
                    }
                    Message::Binary(_) => {
                        close(&mut socket, CLOSE_UNSUPPORTED, "binary frames are not accepted").await;
                        break;
                    }
                    Message::Ping(_) | Message::Pong(_) => {}
                    Message::Close(_) => break,
                }
            }
            push = pushes.recv() => {
                let Some(push) = push else { break };
                if !session.forward(&mut socket, push).await { break }
            }
            _ = &mut expiry => {
                close(&mut socket, CLOSE_TOKEN_EXPIRED, "the token has expired: reconnect with a fresh one").await;
                break;
            }
            _ = outlet.overflow.notified() => {
                close(&mut socket, CLOSE_TOO_SLOW, "too slow: reconnect and resume").await;
                break;
            }
            _ = ping.tick() => {
                if last_seen.elapsed() > IDLE_TIMEOUT {
                    close(&mut socket, CLOSE_POLICY, "idle").await;
                    break;
                }
                if staff {
                    session_heartbeat(&session.state, &session.caller).await;
                } else {
                    customer_presence(&session.state, &session.caller, session.sent.keys(), true).await;
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() { break }
            }
            _ = shutdown.changed() => {
                close(&mut socket, CLOSE_RESTART, "server restarting: reconnect").await;
                break;
            }
        }
    }
    state.hub.forget(&outlet);
    if !staff {
        customer_presence(&state, &session.caller, session.sent.keys(), false).await;
    }
    if staff && !state.hub.staff_connected(&session.caller.tenant, &session.caller.user) {
        if let Err(e) = state.presence.leave(&session.caller.tenant, &session.caller.user).await {
            tracing::warn!(error = %e, "cannot mark a user offline");
        }
        state.hub.presence_changed.notify_one();
    }
    metrics::gauge!("jamuna_ws_connections").decrement(1.0);
}

/// Keeps a staff user online for another [`PRESENCE_TTL`].
async fn session_heartbeat(state: &AppState, caller: &Caller) {
    if let Err(e) = state.presence.heartbeat(&caller.tenant, &caller.user, PRESENCE_TTL).await {
        tracing::warn!(error = %e, "cannot record a heartbeat");
    }
}

/// Marks the conversations of `streams` as open by their customer for
/// another [`PRESENCE_TTL`] (`here`), or as left: the notifier e-mails an
/// agent's reply only to a customer who is not on the conversation. (Two
/// sockets of one customer on one conversation: the first to close marks it
/// left until the other's next ping, at most a ping interval later.)
async fn customer_presence<'a>(state: &AppState, caller: &Caller, streams: impl Iterator<Item = &'a StreamId>, here: bool) {
    for stream in streams {
        let Ok(id) = ConversationId::parse(stream.id()) else { continue };
        let done = if here {
            state.presence.customer_here(&caller.tenant, &id, PRESENCE_TTL).await
        } else {
            state.presence.customer_left(&caller.tenant, &id).await
        };
        if let Err(e) = done {
            tracing::warn!(error = %e, "cannot record whether a customer is on a conversation");
        }
    }
}

/// The close code for a frame the socket could not read: 1007 for a text
/// frame that is not UTF-8, 1009 for one over the size limit, 1002 otherwise.
fn read_error(e: &axum::Error) -> (u16, &'static str) {
    // axum hides tungstenite's error type; its message names the cause.
    let text = e.to_string();
    if text.contains("UTF-8") {
        (CLOSE_INVALID_PAYLOAD, "text frames must be valid UTF-8")
    } else if text.contains("Space limit") {
        (CLOSE_TOO_BIG, "frame too big")
    } else {
        (CLOSE_PROTOCOL, "protocol error")
    }
}

async fn authenticate(socket: &mut WebSocket, state: &AppState) -> Option<Verified> {
    let first = tokio::time::timeout(AUTH_TIMEOUT, socket.next()).await;
    let text = match first {
        Ok(Some(Ok(Message::Text(t)))) => t,
        _ => {
            close(socket, CLOSE_UNAUTHENTICATED, "authenticate first").await;
            return None;
        }
    };
    match parse(text.as_str()) {
        Ok(ClientFrame::Auth { token }) => match crate::auth::authenticate(state, &token).await {
            Ok(v) => Some(v),
            Err(e) => {
                let _ = send_error(socket, "unauthorized", &e.public_message()).await;
                close(socket, CLOSE_UNAUTHENTICATED, "invalid token").await;
                None
            }
        },
        _ => {
            close(socket, CLOSE_UNAUTHENTICATED, "the first frame must be auth").await;
            None
        }
    }
}

impl Session {
    /// Handles one client frame; `false` ends the session.
    async fn handle(&mut self, socket: &mut WebSocket, text: &str) -> bool {
        let (frame, traceparent) = match parse_traced(text) {
            Ok(f) => f,
            Err((code, message)) => return send_error(socket, code, &message).await,
        };
        // Each frame is its own trace (or continues the client's).
        let trace = TraceContext::from_optional(traceparent.as_deref());
        trace::scope(trace, "ws_frame", self.handle_frame(socket, frame)).await
    }

    async fn handle_frame(&mut self, socket: &mut WebSocket, frame: ClientFrame) -> bool {
        let result = match frame {
            ClientFrame::Ping {} => {
                if self.caller.require_staff().is_ok() {
                    session_heartbeat(&self.state, &self.caller).await;
                }
                return send_text(socket, ServerFrame::Pong.to_json()).await;
            }
            ClientFrame::Auth { token } => self.reauthenticate(socket, &token).await,
            ClientFrame::Subscribe { conversation_id, after_version } => self.subscribe(socket, &conversation_id, after_version).await,
            ClientFrame::Unsubscribe { conversation_id } => {
                let stream = StreamId::conversation(&self.caller.tenant, &conversation_id);
                self.state.hub.unsubscribe(&stream, &self.outlet);
                if self.sent.remove(&stream).is_some() && self.caller.require_staff().is_err() {
                    customer_presence(&self.state, &self.caller, [&stream].into_iter(), false).await;
                }
                Ok(true)
            }
            ClientFrame::Send { conversation_id, client_message_id, text } => {
                match service::post_message(&self.state, &self.caller, &conversation_id, &client_message_id, &text, &[]).await {
                    Ok(ack) => {
                        let frame = ServerFrame::Ack {
                            conversation_id: &ack.conversation_id,
                            client_message_id: &ack.client_message_id,
                            version: ack.version,
                            duplicate: ack.duplicate,
                        };
                        Ok(send_text(socket, frame.to_json()).await)
                    }
                    Err(e) => Err(e),
                }
            }
            ClientFrame::Typing { conversation_id, typing } => {
                let stream = StreamId::conversation(&self.caller.tenant, &conversation_id);
                if !self.sent.contains_key(&stream) {
                    Err(ApiError::BadRequest("subscribe to the conversation first".into()))
                } else {
                    let typing = Typing { conversation_id, user: self.caller.user.clone(), role: self.caller.role, typing };
                    self.state.hub.broadcast_typing(&stream, Arc::new(typing), Some(self.outlet.id()));
                    Ok(true)
                }
            }
            ClientFrame::SubscribeInbox {} => match self.caller.require_staff() {
                Ok(()) => {
                    self.state.hub.subscribe_inbox(&self.caller.tenant, &self.outlet);
                    Ok(true)
                }
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(open) => open,
            Err(e) => send_error(socket, e.code(), &e.public_message()).await,
        }
    }

    /// A fresh token of the same user, role and tenant extends the session;
    /// any other token is refused (the session keeps its old expiry).
    async fn reauthenticate(&mut self, socket: &mut WebSocket, token: &str) -> Result<bool, ApiError> {
        let v = crate::auth::authenticate(&self.state, token).await?;
        if v.caller != self.caller {
            return Err(ApiError::Forbidden("the token is for another user or role: open a new socket".into()));
        }
        self.expires_at = self.expires_at.max(v.expires_at);
        self.session = self.session.max(v.session);
        Ok(send_text(socket, ServerFrame::Authenticated { expires_at: self.expires_at }.to_json()).await)
    }

    async fn subscribe(&mut self, socket: &mut WebSocket, id: &ConversationId, after_version: u64) -> Result<bool, ApiError> {
        let (stream, _) = service::authorize(&self.state, &self.caller, id).await?;
        // Register first, then send history: nothing appended in between is missed.
        self.state.hub.subscribe(&stream, &self.outlet);
        if self.caller.require_staff().is_err() {
            customer_presence(&self.state, &self.caller, [&stream].into_iter(), true).await;
        }
        let last = self.sent.entry(stream.clone()).or_insert(after_version);
        *last = (*last).max(after_version);
        let history = self.state.commands.log().read_stream(&stream, after_version).await?;
        for recorded in history {
            if let Some(p) = super::hub::to_pushed(self.state.commands.sealer(), &recorded).await
                && !self.forward(socket, Push::Event(p)).await
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Sends a push unless it was sent already; `false` if the socket is gone.
    async fn forward(&mut self, socket: &mut WebSocket, push: Push) -> bool {
        match push {
            Push::Frame(f) => send_text(socket, f.to_string()).await,
            Push::Typing(t) => {
                // A customer knows staff by their alias only.
                let user = match crate::view::for_caller(&self.state, &self.caller) {
                    Some(view) => view.person(t.conversation_id.as_str(), t.user.as_str()),
                    None => t.user.to_string(),
                };
                let frame =
                    ServerFrame::Typing { conversation_id: t.conversation_id.as_str(), user_id: &user, role: t.role, typing: t.typing };
                send_text(socket, frame.to_json()).await
            }
            Push::SessionEnded(version) if version > self.session => {
                close(socket, CLOSE_SESSION_ENDED, "the session has ended: sign in again").await;
                false
            }
            Push::SessionEnded(_) => true,
            Push::Event(p) => {
                match self.sent.get_mut(&p.stream) {
                    Some(last) if p.version <= *last => return true,
                    Some(last) => *last = p.version,
                    // An inbox push for a conversation this socket does not follow.
                    None => {}
                }
                // A customer gets the customer view, and nothing of a staff-only event.
                let frame = match crate::view::for_caller(&self.state, &self.caller) {
                    None => p.frame.to_string(),
                    Some(view) => match view.frame(&p) {
                        Some(frame) => frame,
                        None => return true,
                    },
                };
                if matches!(*p.event, ConversationEvent::BotAnswered { .. } | ConversationEvent::MessagePosted { .. }) {
                    metrics::counter!("jamuna_ws_messages_out_total").increment(1);
                }
                send_text(socket, frame).await
            }
        }
    }
}
