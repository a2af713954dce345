//! `/api/v1/conversations`: start, list, read, write, and manage.
//!
//! A conversation's detail is read from its stream in the event log, so a
//! read right after a write always sees it; lists come from the read model.

use super::json::ApiJson;
use crate::AppState;
use crate::auth::Caller;
use crate::directory::{ListQuery, Page, View};
use crate::error::{ApiError, ErrorBody};
use crate::service::{self, Ack};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use jamuna_domain::conversation::{
    Assignee, Author, Channel, Conversation, ConversationCommand, ConversationEvent, Feedback, HandoffReason, Tag,
};
use jamuna_domain::user::Role;
use jamuna_domain::{ConversationId, Personal, UserId};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/conversations", post(start).get(list))
        .route("/api/v1/conversations/{id}", get(detail))
        .route("/api/v1/conversations/{id}/messages", post(post_message))
        .route("/api/v1/conversations/{id}/assign", post(assign))
        .route("/api/v1/conversations/{id}/unassign", post(unassign))
        .route("/api/v1/conversations/{id}/team", post(assign_team))
        .route("/api/v1/conversations/{id}/handoff", post(handoff))
        .route("/api/v1/conversations/{id}/resolve", post(resolve))
        .route("/api/v1/conversations/{id}/reopen", post(reopen))
        .route("/api/v1/conversations/{id}/tags", post(tags))
        .route("/api/v1/conversations/{id}/feedback", post(feedback))
}

fn parse_id(id: &str) -> Result<ConversationId, ApiError> {
    ConversationId::parse(id).map_err(|_| ApiError::NotFound("conversation"))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Start {
    #[serde(default = "web")]
    #[schema(value_type = super::schema::Channel, default = "web")]
    channel: Channel,
}

/// A new resource's id.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct Created {
    id: String,
}

fn web() -> Channel {
    Channel::Web
}

/// A customer starts a conversation.
#[utoipa::path(post, path = "/api/v1/conversations", tag = "conversations", operation_id = "startConversation",
    request_body = Start, security(("bearer" = [])),
    responses(
        (status = 201, description = "Started", body = Created),
        (status = 403, description = "Staff do not start conversations", body = ErrorBody),
    ))]
async fn start(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Start>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    let id = service::start(&state, &caller, body.channel).await?;
    Ok((StatusCode::CREATED, axum::Json(json!({"id": id}))))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// Which inbox (default `all`); customers always see only their own.
    view: Option<View>,
    /// Only conversations in this state.
    #[param(value_type = Option<super::schema::Status>)]
    status: Option<String>,
    /// Staff only (`403` for a customer: tags are staff-only).
    #[param(value_type = Option<super::schema::Tag>)]
    tag: Option<String>,
    /// Only conversations from this channel.
    #[param(value_type = Option<super::schema::Channel>)]
    channel: Option<String>,
    /// Staff only: only conversations given to this team (`403` for a customer).
    #[param(value_type = Option<super::schema::Id>)]
    team: Option<String>,
    /// Full-text search over message text: every word must occur. At most
    /// 256 characters and 16 words.
    #[param(value_type = Option<super::schema::Search>)]
    q: Option<String>,
    /// `next_cursor` of the previous page (opaque: a value the server did not answer is a `400`).
    cursor: Option<String>,
    /// 1 to 100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
}

/// Lists conversations, newest activity first, a page at a time. A customer
/// gets the customer view of each summary: no tags, handoff reason,
/// first-response time or log position, staff known by alias.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "conversations", operation_id = "listConversations",
    params(ListParams), security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of conversation summaries", body = Page),
        (status = 400, description = "`limit` out of range, `q` over 256 characters or 16 words, a `cursor` the server did not answer, or an unknown or malformed parameter", body = ErrorBody),
        (status = 403, description = "A customer filtered by `tag` or `team`", body = ErrorBody),
    ))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    super::json::ApiQuery(p): super::json::ApiQuery<ListParams>,
) -> Result<axum::Json<Page>, ApiError> {
    let limit = p.limit.unwrap_or(25);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::BadRequest("limit is between 1 and 100".into()));
    }
    // Tags are staff-only: a customer filtering by one would learn their conversation's tags.
    if p.tag.is_some() && !caller.is_staff() {
        return Err(ApiError::Forbidden("filtering by tag is for staff".into()));
    }
    // Teams are staff business too.
    if p.team.is_some() && !caller.is_staff() {
        return Err(ApiError::Forbidden("filtering by team is for staff".into()));
    }
    let query = ListQuery {
        view: p.view.unwrap_or(View::All),
        agent: Some(caller.user.clone()),
        // Customers see only their own conversations, whatever they ask for.
        customer: (!caller.is_staff()).then(|| caller.user.clone()),
        status: p.status,
        tag: p.tag,
        team: p.team,
        channel: p.channel,
        search: search_text(p.q)?,
        cursor: p.cursor,
        limit,
    };
    let mut page = state.conversations.list(&caller.tenant, &query).await?;
    if let Some(view) = crate::view::for_caller(&state, &caller) {
        page.items = page.items.iter().map(|s| view.summary(s)).collect();
    }
    Ok(axum::Json(page))
}

/// The longest search, in characters and in words: each word is a full-text
/// lookup, so the words bound the query's cost (1,200 words made a query too
/// large for SQLite).
pub const MAX_SEARCH_CHARS: usize = 256;
pub const MAX_SEARCH_WORDS: usize = 16;

/// The search text of `q`: none when blank, `400` when over the bounds.
pub(crate) fn search_text(q: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(q) = q.filter(|q| !q.trim().is_empty()) else { return Ok(None) };
    if q.chars().count() > MAX_SEARCH_CHARS {
        return Err(ApiError::BadRequest(format!("q has at most {MAX_SEARCH_CHARS} characters")));
    }
    if q.split_whitespace().count() > MAX_SEARCH_WORDS {
        return Err(ApiError::BadRequest(format!("q has at most {MAX_SEARCH_WORDS} words")));
    }
    Ok(Some(q))
}

/// The conversation's state and its whole timeline, as event frames (the same
/// shape the WebSocket pushes). A customer gets the customer view
/// ([`crate::view`]): no `tags`, no staff-only events, staff known by alias.
#[utoipa::path(get, path = "/api/v1/conversations/{id}", tag = "conversations", operation_id = "getConversation",
    params(("id" = String, Path, description = "The conversation id")), security(("bearer" = [])),
    responses((status = 200, description = "The conversation and its timeline (a customer gets no `tags`)", body = ConversationDetail), (status = 404, description = "No such conversation, or not the caller's", body = ErrorBody)))]
async fn detail(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<axum::Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let (stream, conversation) = service::authorize(&state, &caller, &id).await?;
    let view = crate::view::for_caller(&state, &caller);
    let mut events = Vec::new();
    let mut staff: Vec<UserId> = Vec::new();
    for recorded in state.commands.log().read_stream(&stream, 0).await? {
        let Some(p) = crate::ws::hub::to_pushed(state.commands.sealer(), &recorded).await else { continue };
        let agent = match &*p.event {
            ConversationEvent::AgentAssigned { agent } => Some(agent),
            ConversationEvent::MessagePosted { author: Author::Agent { id }, .. } => Some(id),
            _ => None,
        };
        if let Some(agent) = agent.filter(|a| !staff.contains(a)) {
            staff.push(agent.clone());
        }
        let frame = match &view {
            None => p.frame.to_string(),
            Some(view) => match view.frame(&p) {
                Some(frame) => frame,
                None => continue,
            },
        };
        events.push(serde_json::from_str::<Value>(&frame).map_err(ApiError::internal)?);
    }
    let started = conversation.started();
    // Staff see user ids; a customer sees their own and the staff's aliases.
    let person = |u: &UserId| view.as_ref().map_or_else(|| u.to_string(), |v| v.person(id.as_str(), u.as_str()));
    let mut agents = Vec::with_capacity(staff.len());
    for agent in &staff {
        agents.push(json!({"id": person(agent), "name": display_name(&state, &caller, agent).await?}));
    }
    let mut body = json!({
        "id": id,
        "customer": started.map(|s| person(&s.customer)),
        "channel": started.map(|s| s.channel),
        "status": conversation.status(),
        "assignee": conversation.assignee().map(person),
        "human_involved": conversation.human_involved(),
        "csat": conversation.csat(),
        "version": jamuna_domain::Aggregate::version(&*conversation),
        "agents": agents,
        "events": events,
    });
    if view.is_none() {
        body["tags"] = json!(conversation.tags());
        body["team"] = json!(conversation.team());
    }
    Ok(axum::Json(body))
}

/// The name a customer may see of a staff member: the display name, never
/// the e-mail address (none once erased).
async fn display_name(state: &AppState, caller: &Caller, user: &UserId) -> Result<Option<String>, ApiError> {
    Ok(state.directory.user(&caller.tenant, user).await?.filter(|u| !u.erased).and_then(|u| u.name))
}

/// `GET /api/v1/conversations/{id}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct ConversationDetail {
    id: String,
    customer: Option<String>,
    #[schema(value_type = Option<super::schema::Channel>)]
    channel: Option<()>,
    #[schema(value_type = Option<super::schema::Status>)]
    status: Option<()>,
    /// The assigned agent's user id (for a customer, the agent's alias in this conversation).
    assignee: Option<String>,
    human_involved: bool,
    /// Staff only: absent for a customer.
    tags: Option<Vec<String>>,
    /// Staff only (absent for a customer): the team the conversation is given to, if any.
    team: Option<String>,
    /// The customer's satisfaction score, once given.
    csat: Option<u8>,
    version: u64,
    /// `{"id", "name"}` of every agent who was assigned or wrote; `name` is the display name (null if none),
    /// `id` the user id (for a customer, the alias the customer's events use).
    agents: Vec<serde_json::Value>,
    /// `event` frames: `{"type":"event","conversation_id","version","position","occurred_at","event"}`,
    /// `event` being the conversation event (`type`-tagged). A customer gets the customer view:
    /// no `position`, no `TagsChanged`, no intent, confidence, source score, handoff reason or `why`
    /// (which score decided a bot answer or a bot handoff: staff only). A `HandoffRequested`'s
    /// `reason` is a `HandoffReason`, a `why`'s `basis` a `DecisionBasis` (see the schemas).
    events: Vec<serde_json::Value>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PostMessage {
    /// The client's id for this message (a retry sends the same one).
    #[schema(value_type = super::schema::Id)]
    client_message_id: String,
    /// May be absent when the message has `attachments`.
    #[serde(default)]
    #[schema(value_type = Option<super::schema::MessageText>)]
    text: Option<String>,
    /// Ids of files the caller uploaded to this conversation
    /// (`POST …/attachments`), each attached to one message only.
    #[serde(default)]
    #[schema(value_type = Vec<super::schema::Id>, max_items = 10)]
    attachments: Vec<String>,
}

/// Posts a message as the caller, idempotently by `client_message_id`.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages", tag = "conversations", operation_id = "postMessage",
    params(("id" = String, Path, description = "The conversation id")), request_body = PostMessage, security(("bearer" = [])),
    responses(
        (status = 201, description = "Stored", body = Ack),
        (status = 200, description = "This `client_message_id` was stored before; nothing new was stored", body = Ack),
        (status = 400, description = "Empty (no text and no attachments) or too long text, or an invalid client message id", body = ErrorBody),
        (status = 404, description = "No such conversation, or not the caller's", body = ErrorBody),
        (status = 409, description = "A business rule refused it (e.g. `already_resolved`, `unknown_attachment`, `attachment_already_posted`, `too_many_attachments`)", body = ErrorBody),
    ))]
async fn post_message(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PostMessage>,
) -> Result<(StatusCode, axum::Json<Ack>), ApiError> {
    if body.text.is_none() && body.attachments.is_empty() {
        // Schema-valid (both are optional) but no message: the domain's rule, 409 `empty_message`.
        return Err(jamuna_commands::CommandError::Rejected(jamuna_domain::conversation::ConversationError::EmptyMessage).into());
    }
    let mut ack = service::post_message(
        &state,
        &caller,
        &parse_id(&id)?,
        &body.client_message_id,
        body.text.as_deref().unwrap_or_default(),
        &body.attachments,
    )
    .await?;
    if !caller.is_staff() {
        // A log position tells of every tenant's traffic: staff only.
        ack.position = None;
    }
    let status = if ack.duplicate { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, axum::Json(ack)))
}

/// Runs a command on an authorised conversation and answers its new version.
async fn run(state: &AppState, caller: &Caller, id: &str, command: ConversationCommand) -> Result<axum::Json<Value>, ApiError> {
    let id = parse_id(id)?;
    let (stream, _) = service::authorize(state, caller, &id).await?;
    let done = state.commands.execute::<Conversation>(&stream, &command, &service::ctx(caller)).await?;
    Ok(axum::Json(json!({"id": id, "version": done.version(), "changed": !done.events.is_empty()})))
}

/// The result of a command on a conversation.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents `run`'s `json!` body
struct CommandResult {
    id: String,
    /// The conversation's version after the command.
    version: u64,
    /// False when the command changed nothing (it was already so).
    changed: bool,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Assign {
    /// The agent to assign; the caller when absent ("assign to me").
    #[schema(value_type = Option<super::schema::Id>)]
    agent_id: Option<String>,
}

/// Staff assign an agent (the caller when `agent_id` is absent).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/assign", tag = "conversations", operation_id = "assignConversation",
    params(("id" = String, Path, description = "The conversation id")), request_body = Assign, security(("bearer" = [])),
    responses(
        (status = 200, description = "Assigned", body = CommandResult),
        (status = 400, description = "An invalid agent id", body = ErrorBody),
        (status = 403, description = "Agents and admins only", body = ErrorBody),
        (status = 404, description = "No such conversation, or no such agent", body = ErrorBody),
        (status = 409, description = "A business rule refused it (e.g. `not_an_agent`, `already_resolved`)", body = ErrorBody),
    ))]
async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Assign>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require_staff()?;
    let agent_id = match body.agent_id {
        Some(a) => UserId::parse(a).map_err(|e| ApiError::BadRequest(e.to_string()))?,
        None => caller.user.clone(),
    };
    let agent = state.directory.user(&caller.tenant, &agent_id).await?.filter(|u| !u.erased).ok_or(ApiError::NotFound("agent"))?;
    let command = ConversationCommand::AssignAgent { agent: Assignee { id: agent.id, tenant: agent.tenant, role: agent.role } };
    run(&state, &caller, &id, command).await
}

/// Staff unassign the conversation: nobody has it any more. One a human was
/// asked for waits for a human again (the router may give it to someone);
/// the bot does not come back.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/unassign", tag = "conversations", operation_id = "unassignConversation",
    params(("id" = String, Path, description = "The conversation id")), security(("bearer" = [])),
    responses(
        (status = 200, description = "Unassigned (or nobody was assigned: `changed` false)", body = CommandResult),
        (status = 403, description = "Agents and admins only", body = ErrorBody),
        (status = 404, description = "No such conversation", body = ErrorBody),
        (status = 409, description = "A business rule refused it (e.g. `already_resolved`)", body = ErrorBody),
    ))]
async fn unassign(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<axum::Json<Value>, ApiError> {
    caller.require_staff()?;
    run(&state, &caller, &id, ConversationCommand::Unassign { by: Some(caller.user.clone()) }).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AssignTeam {
    /// A team of the caller's tenant; `null` gives the conversation to no team.
    #[schema(value_type = Option<super::schema::Id>)]
    team_id: Option<String>,
}

/// Staff give the conversation to a team (or to none).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/team", tag = "conversations", operation_id = "assignConversationTeam",
    params(("id" = String, Path, description = "The conversation id")), request_body = AssignTeam, security(("bearer" = [])),
    responses(
        (status = 200, description = "Given to the team (or already)", body = CommandResult),
        (status = 403, description = "Agents and admins only", body = ErrorBody),
        (status = 404, description = "No such conversation, or no such team in the caller's tenant", body = ErrorBody),
        (status = 409, description = "A business rule refused it (e.g. `already_resolved`)", body = ErrorBody),
    ))]
async fn assign_team(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AssignTeam>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require_staff()?;
    let team = match body.team_id {
        Some(t) => Some(super::teams::existing(&state, &caller, &t).await?),
        None => None,
    };
    run(&state, &caller, &id, ConversationCommand::AssignTeam { team }).await
}

/// The customer asks for a human (reason `customer_asked`), or staff take the
/// conversation over from the bot (`agent_took_over`).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/handoff", tag = "conversations", operation_id = "handoffConversation",
    params(("id" = String, Path, description = "The conversation id")), security(("bearer" = [])),
    responses((status = 200, description = "Handed off (or already)", body = CommandResult), (status = 404, description = "No such conversation, or not the caller's", body = ErrorBody),
        (status = 409, description = "A business rule refused it (e.g. `already_resolved`)", body = ErrorBody)))]
async fn handoff(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<axum::Json<Value>, ApiError> {
    let reason = HandoffReason::asked_by(caller.role);
    let done = run(&state, &caller, &id, ConversationCommand::RequestHandoff { reason, why: None }).await?;
    if done.0["changed"] == true {
        let label = if reason == HandoffReason::CustomerAsked { "customer_asked" } else { "agent_took_over" };
        metrics::counter!("jamuna_handoffs_total", "reason" => label).increment(1);
    }
    Ok(done)
}

/// Resolves the conversation.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/resolve", tag = "conversations", operation_id = "resolveConversation",
    params(("id" = String, Path, description = "The conversation id")), security(("bearer" = [])),
    responses((status = 200, description = "Resolved (or already)", body = CommandResult), (status = 404, description = "No such conversation, or not the caller's", body = ErrorBody),
        (status = 409, description = "A business rule refused it", body = ErrorBody)))]
async fn resolve(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<axum::Json<Value>, ApiError> {
    run(&state, &caller, &id, ConversationCommand::Resolve { by: Some(caller.user.clone()) }).await
}

/// Reopens a resolved conversation.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/reopen", tag = "conversations", operation_id = "reopenConversation",
    params(("id" = String, Path, description = "The conversation id")), security(("bearer" = [])),
    responses((status = 200, description = "Reopened", body = CommandResult), (status = 404, description = "No such conversation, or not the caller's", body = ErrorBody),
        (status = 409, description = "`not_resolved`, or another rule refused it", body = ErrorBody)))]
async fn reopen(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<axum::Json<Value>, ApiError> {
    run(&state, &caller, &id, ConversationCommand::Reopen { by: Some(caller.user.clone()) }).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Tags {
    #[serde(default)]
    #[schema(value_type = Vec<super::schema::Tag>)]
    add: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Vec<super::schema::Tag>)]
    remove: Vec<String>,
}

/// Staff add and remove tags (trimmed, lower case, 1 to 32 characters).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/tags", tag = "conversations", operation_id = "changeTags",
    params(("id" = String, Path, description = "The conversation id")), request_body = Tags, security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed", body = CommandResult),
        (status = 400, description = "An invalid tag", body = ErrorBody),
        (status = 403, description = "Agents and admins only", body = ErrorBody),
        (status = 404, description = "No such conversation, or not the caller's", body = ErrorBody),
        (status = 409, description = "A business rule refused it", body = ErrorBody),
    ))]
async fn tags(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Tags>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require_staff()?;
    let parse =
        |v: Vec<String>| v.iter().map(|t| Tag::parse(t).map_err(|e| ApiError::BadRequest(e.to_string()))).collect::<Result<Vec<_>, _>>();
    run(&state, &caller, &id, ConversationCommand::ChangeTags { add: parse(body.add)?, remove: parse(body.remove)? }).await
}

/// A satisfaction score for the conversation, or a verdict on one bot answer.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum FeedbackBody {
    /// Once the conversation is resolved: a score of 1 to 5, and a comment.
    Csat {
        #[schema(minimum = 1, maximum = 5)]
        #[serde(deserialize_with = "super::json::whole_number")]
        score: u8,
        #[schema(max_length = 1000)]
        comment: Option<String>,
    },
    /// On one bot answer: the conversation's version at that answer.
    Answer {
        #[serde(deserialize_with = "super::json::whole_number")]
        answer_version: u64,
        helpful: bool,
    },
}

/// [`FeedbackBody`]'s schema, its variants closed as serde closes them.
struct FeedbackRequest;
impl utoipa::PartialSchema for FeedbackRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        super::schema::closed(<FeedbackBody as utoipa::PartialSchema>::schema())
    }
}
impl utoipa::ToSchema for FeedbackRequest {
    fn name() -> std::borrow::Cow<'static, str> {
        "FeedbackBody".into()
    }
}

/// The customer gives feedback.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/feedback", tag = "conversations", operation_id = "giveFeedback",
    params(("id" = String, Path, description = "The conversation id")), request_body = FeedbackRequest, security(("bearer" = [])),
    responses(
        (status = 200, description = "Recorded", body = CommandResult),
        (status = 403, description = "Feedback comes from the customer", body = ErrorBody),
        (status = 404, description = "No such conversation, or not the caller's", body = ErrorBody),
        (status = 409, description = "`invalid_score`, `comment_too_long`, `unknown_answer`, …", body = ErrorBody),
    ))]
async fn feedback(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<FeedbackBody>,
) -> Result<axum::Json<Value>, ApiError> {
    if caller.role != Role::Customer {
        return Err(ApiError::Forbidden("feedback comes from the customer".into()));
    }
    let feedback = match body {
        FeedbackBody::Csat { score, comment } => {
            Feedback::Csat { score, comment: comment.filter(|c| !c.trim().is_empty()).map(Personal::plain) }
        }
        FeedbackBody::Answer { answer_version, helpful } => Feedback::Answer { answer_version, helpful },
    };
    run(&state, &caller, &id, ConversationCommand::GiveFeedback { feedback }).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedback_numbers_may_be_written_as_floats() {
        let body: FeedbackBody = serde_json::from_str(r#"{"kind":"answer","answer_version":137.0,"helpful":true}"#).expect("137.0");
        assert!(matches!(body, FeedbackBody::Answer { answer_version: 137, .. }));
        let body: FeedbackBody = serde_json::from_str(r#"{"kind":"csat","score":5.0}"#).expect("5.0");
        assert!(matches!(body, FeedbackBody::Csat { score: 5, .. }));
        assert!(serde_json::from_str::<FeedbackBody>(r#"{"kind":"csat","score":5,"x":1}"#).is_err(), "unknown fields are refused");
    }

    #[test]
    fn search_text_is_bounded_in_characters_and_words() {
        assert!(matches!(search_text(None), Ok(None)));
        assert!(matches!(search_text(Some("  ".into())), Ok(None)));
        assert_eq!(search_text(Some("card delivery".into())).ok().flatten().as_deref(), Some("card delivery"));
        let words = vec!["w"; MAX_SEARCH_WORDS].join(" ");
        assert!(search_text(Some(words.clone())).is_ok_and(|q| q.is_some()), "at the bound");
        let err = search_text(Some(format!("{words} w"))).expect_err("one word over");
        assert!(err.public_message().contains("16 words"), "{}", err.public_message());
        let long = "x".repeat(MAX_SEARCH_CHARS + 1);
        assert!(search_text(Some(long)).expect_err("too long").public_message().contains("256 characters"));
        assert!(search_text(Some("é".repeat(MAX_SEARCH_CHARS))).is_ok(), "characters, not bytes");
    }
}
