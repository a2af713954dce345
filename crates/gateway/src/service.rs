//! What the REST routes and the WebSocket both do: one implementation each
//! of "may this caller see this conversation", "post a message", "start a
//! conversation", so the two transports cannot drift apart.

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use jamuna_commands::handler::{CommandContext, Executed};
use jamuna_domain::conversation::{Author, Channel, Conversation, ConversationCommand};
use jamuna_domain::{Aggregate, ClientMessageId, ConversationId, MessageText, StreamId};
use std::sync::Arc;

/// The command context of the caller's request: the request's trace id
/// (see [`crate::trace`]) becomes the events' correlation id.
pub fn ctx(caller: &Caller) -> CommandContext {
    tenant_ctx(&caller.tenant)
}

/// The command context of a request in `tenant` by no signed-in caller
/// (a self-service registration).
pub fn tenant_ctx(tenant: &jamuna_domain::TenantId) -> CommandContext {
    let mut ctx = CommandContext::new(tenant.clone(), chrono::Utc::now());
    if let Some(t) = crate::trace::current() {
        ctx.correlation_id = t.correlation_id();
    }
    ctx
}

/// The conversation, if the caller may see it: staff of its tenant, or its
/// own customer. Anything else is "not found", so ids cannot be probed.
pub async fn authorize(state: &AppState, caller: &Caller, id: &ConversationId) -> Result<(StreamId, Arc<Conversation>), ApiError> {
    let stream = StreamId::conversation(&caller.tenant, id);
    let conversation = state.commands.load::<Conversation>(&stream).await?;
    let Some(started) = conversation.started() else {
        return Err(ApiError::NotFound("conversation"));
    };
    if started.tenant != caller.tenant || (!caller.is_staff() && started.customer != caller.user) {
        return Err(ApiError::NotFound("conversation"));
    }
    Ok((stream, conversation))
}

/// Starts a conversation for a customer (its id is new, made here).
pub async fn start(state: &AppState, caller: &Caller, channel: Channel) -> Result<ConversationId, ApiError> {
    if caller.is_staff() {
        return Err(ApiError::Forbidden("conversations are started by customers".into()));
    }
    crate::contact::require_prechat(state, caller).await?;
    let id = ConversationId::from_uuid(uuid::Uuid::now_v7());
    let stream = StreamId::conversation(&caller.tenant, &id);
    let command =
        ConversationCommand::Start { tenant: caller.tenant.clone(), conversation_id: id.clone(), customer: caller.user.clone(), channel };
    state.commands.execute::<Conversation>(&stream, &command, &ctx(caller)).await?;
    metrics::counter!("jamuna_conversations_started_total").increment(1);
    Ok(id)
}

/// An acknowledged message.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Ack {
    pub conversation_id: String,
    pub client_message_id: String,
    /// The conversation's version with this message.
    pub version: u64,
    /// The message's position in the event log (staff only: absent for a customer, and for a duplicate).
    pub position: Option<u64>,
    /// True when this client message id was stored before: nothing new was stored.
    pub duplicate: bool,
}

/// Posts a message as the caller (customer or agent), idempotently by
/// client message id. `attachments` are ids of the caller's uploads to the
/// conversation; with some, the text may be blank (an attachments-only message).
pub async fn post_message(
    state: &AppState,
    caller: &Caller,
    id: &ConversationId,
    client_message_id: &str,
    text: &str,
    attachments: &[String],
) -> Result<Ack, ApiError> {
    let text = if text.trim().is_empty() && !attachments.is_empty() {
        None
    } else {
        Some(MessageText::parse(text).map_err(|e| ApiError::BadRequest(e.to_string()))?)
    };
    let cmid = ClientMessageId::parse(client_message_id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let (stream, conversation) = authorize(state, caller, id).await?;
    crate::contact::require_prechat(state, caller).await?;
    let attachments = if attachments.is_empty() || conversation.client_message_version(&cmid).is_some() {
        // A retry of a stored message changes nothing: no need to look its files up again.
        Vec::new()
    } else {
        crate::routes::attachments::attachments_of(state, caller, id, attachments).await?
    };
    // The conversation's own customer writes as the customer (also a staff
    // member chatting through the seed API); other staff write as agents.
    let own = conversation.started().is_some_and(|s| s.customer == caller.user);
    let author = if own || !caller.is_staff() { Author::Customer } else { Author::Agent { id: caller.user.clone() } };
    let author_kind = author.clone();
    let command = ConversationCommand::PostMessage { author, text, client_message_id: Some(cmid.clone()), attachments };
    let started = std::time::Instant::now();
    let executed: Executed<Conversation> = state.commands.execute(&stream, &command, &ctx(caller)).await?;
    metrics::histogram!("jamuna_gateway_append_seconds").record(started.elapsed().as_secs_f64());
    metrics::counter!("jamuna_messages_in_total", "author" => if matches!(author_kind, Author::Customer) { "customer" } else { "agent" })
        .increment(1);
    let (version, position, duplicate) = match executed.events.first() {
        Some(e) => (e.version, Some(e.position), false),
        None => (executed.state.client_message_version(&cmid).unwrap_or(executed.state.version()), None, true),
    };
    Ok(Ack { conversation_id: id.to_string(), client_message_id: cmid.to_string(), version, position, duplicate })
}
