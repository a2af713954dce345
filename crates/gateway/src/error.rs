//! The gateway's one error type, mapped to HTTP in one `match`.
//!
//! The body is always `{"error": {"code": "...", "message": "..."}}` with a
//! stable, machine-readable code. Internal failures are logged with their
//! cause and answered with a generic message: nothing internal leaks.
//!
//! Errors reach HTTP one way: ports and libraries return their own errors
//! ([`StoreError`] from the read models and the refresh-token store,
//! [`LogError`] from the event log, [`CommandError`] from the write side,
//! whose business refusals name themselves through [`ErrorCode`]), and the
//! `From` impls below turn each into an [`ApiError`], so handlers use `?`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jamuna_commands::handler::CommandError;
use jamuna_commands::log::LogError;
use jamuna_commands::{KeyStoreError, SealError};
use jamuna_domain::ErrorCode;
use jamuna_domain::error_code::Refusal;
use jamuna_projections::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// A customer identity whose signature does not verify (or none): 401
    /// `invalid_signature`.
    #[error("{0}")]
    InvalidSignature(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A business rule refused the request (e.g. the conversation is resolved).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A business rule found the request itself invalid (e.g. an unknown placeholder): 422.
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// A business rule found no such thing in the aggregate (e.g. an unknown canned reply): 404.
    #[error("{message}")]
    Missing { message: String },
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// It existed, and is gone for good (e.g. a file of an erased user).
    #[error("{0} is gone")]
    Gone(&'static str),
    #[error("too many requests; retry in {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    #[error("the service is temporarily unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        ApiError::Internal(Box::new(e))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::InvalidSignature(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Missing { .. } => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::InvalidSignature(_) => "invalid_signature",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict { code, .. } | ApiError::Unprocessable { code, .. } => code,
            ApiError::Missing { .. } => "not_found",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Gone(_) => "gone",
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The message shown to the client (never an internal cause).
    pub fn public_message(&self) -> String {
        self.to_string()
    }
}

/// The body of every error answer. Built only by [`ErrorBody::of`], so the
/// OpenAPI schema derived from it is what is sent.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable: `bad_request`, `unauthorized`,
    /// `forbidden`, `not_found`, `gone`, `payload_too_large`, `unsupported_media_type`, `rate_limited`,
    /// `unavailable`, `internal`; on `409` the refusing rule's name
    /// (`already_resolved`, `article_exists`, …), or `conflict`/`busy` when a
    /// concurrent change won (retry); on `422` the rule that found the request
    /// itself invalid (`unknown_placeholder`, …).
    #[schema(example = "not_found")]
    pub code: &'static str,
    /// For people; never an internal cause.
    #[schema(example = "conversation not found")]
    pub message: String,
}

impl ErrorBody {
    pub fn of(e: &ApiError) -> Self {
        ErrorBody { error: ErrorDetail { code: e.code(), message: e.public_message() } }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(e) | ApiError::Unavailable(e) => tracing::error!(error = %e, source = ?e.source(), "request failed"),
            _ => {}
        }
        let status = self.status();
        let body = ErrorBody::of(&self);
        let mut response = (status, axum::Json(body)).into_response();
        if let ApiError::TooManyRequests { retry_after } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<LogError> for ApiError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::Conflict { .. } => ApiError::Conflict { code: "conflict", message: "the resource changed meanwhile; retry".into() },
            LogError::Invalid(m) => ApiError::BadRequest(m),
            LogError::Unavailable(e) => ApiError::Unavailable(e),
            LogError::Internal(e) => ApiError::Internal(e),
            e @ LogError::Corrupt { .. } => ApiError::Internal(Box::new(e)),
        }
    }
}

/// A read model (or another store the gateway reads) failed: a bad query is
/// the caller's mistake; a store that is down, or a write that raced another,
/// is worth retrying (503); anything else is a bug or a broken store (500).
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(m) => ApiError::BadRequest(m),
            e @ (StoreError::Unavailable(_) | StoreError::Conflict(_)) => ApiError::Unavailable(Box::new(e)),
            e @ StoreError::Internal(_) => ApiError::Internal(Box::new(e)),
        }
    }
}

/// A domain refusal becomes 409 with the rule's name ([`ErrorCode`]) as the
/// code (422 when the rule finds the request itself invalid, 404 with
/// `not_found` when it names nothing the aggregate holds: [`Refusal`]); the
/// rest maps by kind.
impl<E: ErrorCode + std::error::Error + Send + Sync + 'static> From<CommandError<E>> for ApiError {
    fn from(e: CommandError<E>) -> Self {
        match e {
            CommandError::Rejected(r) => match r.refusal() {
                Refusal::Conflict => ApiError::Conflict { code: r.code(), message: r.to_string() },
                Refusal::Invalid => ApiError::Unprocessable { code: r.code(), message: r.to_string() },
                Refusal::NotFound => ApiError::Missing { message: r.to_string() },
            },
            CommandError::Conflict(_) => ApiError::Conflict { code: "busy", message: "too many concurrent changes; retry".into() },
            CommandError::Log(l) => l.into(),
            CommandError::Seal(SealError::Keys(KeyStoreError::Erased(_))) => ApiError::Forbidden("this user has been erased".into()),
            CommandError::Seal(s) => ApiError::internal(s),
            CommandError::Decode(d) => ApiError::internal(d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jamuna_domain::UserId;
    use jamuna_domain::conversation::ConversationError;
    use jamuna_domain::knowledge_base::KnowledgeBaseError;

    /// The status and the JSON body an error is answered with.
    async fn answer(e: impl Into<ApiError>) -> (StatusCode, serde_json::Value) {
        let response = e.into().into_response();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("the body is read");
        (status, serde_json::from_slice(&body).expect("the body is JSON"))
    }

    #[tokio::test]
    async fn a_domain_refusal_is_409_with_its_code() {
        let (status, body) = answer(CommandError::Rejected(ConversationError::AlreadyResolved)).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["error"]["code"], "already_resolved");
        assert_eq!(body["error"]["message"], ConversationError::AlreadyResolved.to_string());
        let (status, body) = answer(CommandError::<KnowledgeBaseError>::Rejected(KnowledgeBaseError::NoExamples)).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["error"]["code"], "no_examples");
    }

    #[tokio::test]
    async fn an_invalid_request_is_422_and_a_missing_thing_404_with_their_codes() {
        use jamuna_domain::canned_reply::{CannedReplyError, CannedReplyId};
        let (status, body) = answer(CommandError::Rejected(CannedReplyError::UnknownPlaceholder("order.id".into()))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["code"], "unknown_placeholder");
        assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("{{order.id}}")), "{body}");
        let (status, body) =
            answer(CommandError::Rejected(CannedReplyError::UnknownReply(CannedReplyId::parse("r1").expect("an id")))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "not_found");
        let (status, body) = answer(CommandError::Rejected(CannedReplyError::ShortcutTaken("refund".into()))).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["error"]["code"], "shortcut_taken");
    }

    #[tokio::test]
    async fn a_command_that_keeps_losing_races_is_409_busy_and_an_erased_subject_403() {
        let (status, body) = answer(CommandError::<ConversationError>::Conflict("conversation-x".into())).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["error"]["code"], "busy");
        let erased = KeyStoreError::Erased(UserId::parse("u1").expect("an id"));
        let (status, body) = answer(CommandError::<ConversationError>::Seal(SealError::Keys(erased))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["error"]["code"], "forbidden");
    }

    #[tokio::test]
    async fn a_store_that_is_down_is_503_and_a_bad_query_400() {
        let (status, body) = answer(StoreError::unavailable(std::io::Error::other("connection refused"))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["code"], "unavailable");
        assert!(!body.to_string().contains("connection refused"), "the cause stays in the log: {body}");
        let (status, body) = answer(StoreError::Invalid("not a cursor".into())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["message"], "not a cursor");
    }

    #[tokio::test]
    async fn an_internal_failure_is_500_without_its_cause() {
        let (status, body) = answer(StoreError::internal(std::io::Error::other("secret table xyz is corrupt"))).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body, serde_json::json!({"error": {"code": "internal", "message": "internal error"}}));
        let (status, body) = answer(CommandError::<ConversationError>::Log(LogError::Internal("disk xyz failed".into()))).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("xyz"), "{body}");
    }
}
