//! `/api/v1/auth`: login, refresh, logout, self-service registration, and
//! visitor tokens for the chat widget.

use super::json::ApiJson;
use crate::AppState;
use crate::auth::{Caller, password};
use crate::error::{ApiError, ErrorBody};
use crate::{identity, service};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use jamuna_domain::user::{Email, Role, User, UserCommand, UserError};
use jamuna_domain::{StreamId, TenantId, UserId};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/refresh", post(refresh))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/auth/logout-all", post(logout_all))
        .route("/api/v1/auth/register", post(register))
        .route("/api/v1/auth/visitor", post(visitor))
        .route("/api/v1/auth/socket-ticket", post(socket_ticket))
}

/// A single-use socket ticket.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SocketTicket {
    /// Goes in the socket's URL (`/ws/{client_id}?ticket=…`); opens one socket, once.
    pub ticket: String,
    /// Seconds it stays valid.
    pub expires_in: u64,
}

/// A single-use ticket for a socket whose protocol has no room for a first
/// `auth` frame (the seed socket `/ws/{client_id}`, where every frame is a
/// message): it goes in the URL instead of the access token, which would
/// end up in proxy logs. It opens one socket within 30 seconds, as the
/// caller, and nothing else.
#[utoipa::path(post, path = "/api/v1/auth/socket-ticket", tag = "auth", operation_id = "socketTicket", security(("bearer" = [])),
    responses(
        (status = 201, description = "A ticket", body = SocketTicket),
        (status = 401, description = "No valid token", body = ErrorBody),
    ))]
async fn socket_ticket(State(state): State<AppState>, caller: Caller) -> Result<(StatusCode, axum::Json<SocketTicket>), ApiError> {
    let (ticket, _) = state.tokens.issue_ticket(&caller, crate::auth::session_version(&state, &caller).await?)?;
    Ok((StatusCode::CREATED, axum::Json(SocketTicket { ticket, expires_in: crate::auth::jwt::TICKET_TTL.as_secs() })))
}

/// A caller's tokens.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// A JWT for `Authorization: Bearer …`.
    pub access_token: String,
    /// Single use: `/refresh` answers a new one.
    pub refresh_token: String,
    #[schema(example = "bearer")]
    pub token_type: &'static str,
    /// Seconds the access token is valid.
    pub expires_in: u64,
    pub user_id: String,
    pub tenant: String,
    #[schema(value_type = super::schema::Role)]
    pub role: Role,
}

/// Access and refresh tokens for a caller who just signed in: the refresh
/// token starts a new family.
pub async fn tokens_for(state: &AppState, caller: &Caller) -> Result<TokenResponse, ApiError> {
    let refresh_token = state.refresh.issue(caller).await?;
    tokens_with(state, caller, refresh_token).await
}

/// An access token for a caller, beside their refresh token.
async fn tokens_with(state: &AppState, caller: &Caller, refresh_token: String) -> Result<TokenResponse, ApiError> {
    Ok(TokenResponse {
        access_token: state.tokens.issue(caller, crate::auth::session_version(state, caller).await?)?,
        refresh_token,
        token_type: "bearer",
        expires_in: state.tokens.access_ttl.as_secs(),
        user_id: caller.user.to_string(),
        tenant: caller.tenant.to_string(),
        role: caller.role,
    })
}

/// Checks e-mail and password against the users read model, within the
/// account's sign-in attempts ([`super::limits::LOGIN_TIERS`]): over them,
/// `429` without looking at the password.
pub async fn authenticate(state: &AppState, tenant: &str, email: &str, password: &str) -> Result<Caller, ApiError> {
    state.limiter.login_attempt(tenant, email).await?;
    let caller = check_password(state, tenant, email, password).await?;
    state.limiter.login_succeeded(tenant, email).await;
    Ok(caller)
}

async fn check_password(state: &AppState, tenant: &str, email: &str, password: &str) -> Result<Caller, ApiError> {
    let bad = || ApiError::Unauthorized("incorrect e-mail, password or tenant".into());
    let tenant = TenantId::parse(tenant).map_err(|_| bad())?;
    let email = Email::parse(email).map_err(|_| bad())?;
    let user = state.directory.user_by_email(&tenant, email.as_str()).await?;
    let hash = user.as_ref().and_then(|u| u.password_hash.clone()).filter(|_| user.as_ref().is_some_and(|u| !u.erased));
    // Verify even without a user, so timing does not reveal which addresses exist.
    let ok = password::verify(password.to_owned(), hash.clone().unwrap_or_else(|| password::dummy_hash().into())).await;
    match (user, ok && hash.is_some()) {
        (Some(u), true) => Ok(Caller { user: u.id, tenant: u.tenant, role: u.role, visitor: false }),
        _ => Err(bad()),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Login {
    tenant: String,
    email: String,
    password: String,
}

/// Signs in with e-mail and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", operation_id = "login", request_body = Login,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 401, description = "Incorrect e-mail, password or tenant", body = ErrorBody),
        (status = 429, description = "Too many sign-in attempts for this account (or from this client): wait `Retry-After` seconds; the count grows with each attempt and a successful sign-in clears it", body = ErrorBody),
    ))]
async fn login(State(state): State<AppState>, ApiJson(body): ApiJson<Login>) -> Result<axum::Json<TokenResponse>, ApiError> {
    let caller = authenticate(&state, &body.tenant, &body.email, &body.password).await?;
    Ok(axum::Json(tokens_for(&state, &caller).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Refresh {
    refresh_token: String,
}

/// Exchanges a refresh token (used up) for new tokens, with the user's current role.
///
/// The new refresh token continues the old one's family. A token that was
/// used before is a replay (someone else has a copy): the whole family is
/// revoked, the newer tokens included, and the answer is 401.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", operation_id = "refresh", request_body = Refresh,
    responses(
        (status = 200, description = "New tokens; the refresh token given is used up", body = TokenResponse),
        (status = 401, description = "The refresh token is unknown, revoked or expired, or the user no longer exists; or it was used before, which revokes every token of its sign-in", body = ErrorBody),
    ))]
async fn refresh(State(state): State<AppState>, ApiJson(body): ApiJson<Refresh>) -> Result<axum::Json<TokenResponse>, ApiError> {
    let (caller, next) = state.refresh.rotate(&body.refresh_token).await?;
    // The role may have changed, or the user been erased, since the token was made.
    if !caller.visitor {
        let user = state.directory.user(&caller.tenant, &caller.user).await?;
        match user {
            Some(u) if !u.erased => {
                let caller = Caller { role: u.role, ..caller };
                return Ok(axum::Json(tokens_with(&state, &caller, next).await?));
            }
            _ => return Err(ApiError::Unauthorized("the user no longer exists".into())),
        }
    }
    Ok(axum::Json(tokens_with(&state, &caller, next).await?))
}

/// Signs out this sign-in: every refresh token of the given one's family
/// (the older and the newer ones of its chain) stops working.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", operation_id = "logout", request_body = Refresh,
    responses((status = 204, description = "Revoked (also when it was unknown)")))]
async fn logout(State(state): State<AppState>, ApiJson(body): ApiJson<Refresh>) -> Result<StatusCode, ApiError> {
    state.refresh.revoke(&body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Signs the caller out everywhere: every access and refresh token of theirs
/// stops working and their sockets close (4004), on every replica.
#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "auth", operation_id = "logoutAll", security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out everywhere"),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 409, description = "`erased`: the user has been erased", body = ErrorBody),
    ))]
async fn logout_all(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    let stream = StreamId::user(&caller.tenant, &caller.user);
    state.commands.execute::<User>(&stream, &UserCommand::RevokeSessions, &service::ctx(&caller)).await?;
    state.refresh.revoke_all(&caller.tenant, &caller.user).await?;
    state.hub.sessions.forget(&caller.tenant, &caller.user);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Register {
    #[schema(value_type = super::schema::Id)]
    tenant: String,
    #[schema(value_type = super::schema::Email)]
    email: String,
    #[schema(value_type = super::schema::Password)]
    password: String,
    /// The display name (trimmed; at most 200 characters).
    #[schema(max_length = 200)]
    name: Option<String>,
}

/// The one answer of `/register`, whether the address was new or taken.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RegistrationAccepted {
    #[schema(example = "accepted")]
    pub status: &'static str,
    /// What to do next: sign in with `/api/v1/auth/login`.
    #[schema(example = "/api/v1/auth/login")]
    pub next: &'static str,
}

const ACCEPTED: RegistrationAccepted = RegistrationAccepted { status: "accepted", next: "/api/v1/auth/login" };

/// Self-service registration of a customer, where the tenant allows it.
///
/// Reveals nothing about who exists: a new address and a taken one get the
/// same answer, after the same work (the password is hashed either way), and
/// no tokens; the client signs in next with `/login`, which succeeds only for
/// the address's owner. A tenant that does not exist and one without
/// self-service registration get the same `403`.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", operation_id = "register", request_body = Register,
    responses(
        (status = 202, description = "Accepted, for a new address and a taken one alike: sign in with `/api/v1/auth/login` next", body = RegistrationAccepted),
        (status = 400, description = "Invalid tenant id or e-mail, weak password, or a malformed body", body = ErrorBody),
        (status = 403, description = "No self-service registration here (the tenant does not allow it, or does not exist)", body = ErrorBody),
        (status = 409, description = "`name_too_long`", body = ErrorBody),
    ))]
async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Register>,
) -> Result<(StatusCode, axum::Json<RegistrationAccepted>), ApiError> {
    let tenant = TenantId::parse(&body.tenant).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Email::parse(&body.email).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    password::check_strength(&body.password)?;
    let open = state.directory.tenant(&tenant).await?.is_some_and(|t| t.settings.self_signup);
    if !open {
        return Err(ApiError::Forbidden("self-service registration is not open for this tenant".into()));
    }
    // New or taken, the answer is the same.
    create_user(&state, &tenant, Role::Customer, &body.email, &body.password, body.name).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(ACCEPTED)))
}

/// Registers a user with a password and a new random id (self-service, or by
/// an admin): `None` when the address is taken. The password is hashed
/// before anything else either way.
pub async fn create_user(
    state: &AppState,
    tenant: &TenantId,
    role: Role,
    email: &str,
    pw: &str,
    name: Option<String>,
) -> Result<Option<Caller>, ApiError> {
    let email = Email::parse(email).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    password::check_strength(pw)?;
    let hash = password::hash(pw.to_owned()).await?;
    let ctx = service::tenant_ctx(tenant);
    let new = identity::NewUser { tenant: tenant.clone(), role, name, email, password_hash: Some(hash) };
    match identity::register(&state.commands, &ctx, new).await? {
        identity::Registered::New { user, appended } => {
            if let Some(a) = appended {
                state.directory.caught_up(a.last_position).await?;
            }
            Ok(Some(Caller { user, tenant: tenant.clone(), role, visitor: false }))
        }
        identity::Registered::Taken => Ok(None),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Visitor {
    widget_key: String,
}

/// Exchanges a tenant's public widget key for a new visitor identity: a
/// customer without an account, who sees only their own conversations.
#[utoipa::path(post, path = "/api/v1/auth/visitor", tag = "auth", operation_id = "visitor", request_body = Visitor,
    responses(
        (status = 201, description = "A new visitor identity and its tokens", body = TokenResponse),
        (status = 401, description = "Unknown widget key", body = ErrorBody),
        (status = 403, description = "Called from a page whose origin is not one of the tenant's allowed origins", body = ErrorBody),
        (status = 429, description = "Too many new visitors from this address, or for this widget key, this hour", body = ErrorBody),
    ))]
async fn visitor(
    State(state): State<AppState>,
    ip: Option<axum::Extension<super::limits::ClientIp>>,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<Visitor>,
) -> Result<(StatusCode, axum::Json<TokenResponse>), ApiError> {
    let tenant =
        state.directory.tenant_by_widget_key(&body.widget_key).await?.ok_or_else(|| ApiError::Unauthorized("unknown widget key".into()))?;
    // A browser names the page's origin: only the tenant's sites may embed its chat.
    if let Some(origin) = crate::foreign_origin(&headers, &state.config.public_origin)
        && !state.origin_allowed(&tenant.id, Some(&origin)).await
    {
        return Err(ApiError::Forbidden("this page's origin is not one of the tenant's allowed origins".into()));
    }
    state.limiter.visitor_minted(ip.map(|i| i.0.0), &body.widget_key).await?;
    let caller = register_visitor(&state, &tenant.id, UserId::from_uuid(uuid::Uuid::now_v7())).await?;
    Ok((StatusCode::CREATED, axum::Json(tokens_for(&state, &caller).await?)))
}

/// Registers a visitor (idempotent: an existing visitor is reused).
pub async fn register_visitor(state: &AppState, tenant: &TenantId, user_id: UserId) -> Result<Caller, ApiError> {
    let caller = Caller { user: user_id.clone(), tenant: tenant.clone(), role: Role::Customer, visitor: true };
    let stream = StreamId::user(tenant, &user_id);
    let command =
        UserCommand::Register { tenant: tenant.clone(), user_id, role: Role::Customer, name: None, email: None, password_hash: None };
    match state.commands.execute::<User>(&stream, &command, &service::ctx(&caller)).await {
        Ok(_) | Err(jamuna_commands::CommandError::Rejected(UserError::AlreadyRegistered)) => Ok(caller),
        Err(e) => Err(e.into()),
    }
}
