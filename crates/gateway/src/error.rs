//! The gateway's one error type, mapped to HTTP in one `match`.
//!
//! The body is always `{"error": {"code": "...", "message": "..."}}` with a
//! stable, machine-readable code. Internal failures are logged with their
//! cause and answered with a generic message: nothing internal leaks.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jamuna_commands::handler::CommandError;
use jamuna_commands::log::LogError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A business rule refused the request (e.g. the conversation is resolved).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("the request body is too large")]
    PayloadTooLarge,
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
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
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
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict { code, .. } => code,
            ApiError::PayloadTooLarge => "payload_too_large",
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
    /// `forbidden`, `not_found`, `payload_too_large`, `rate_limited`,
    /// `unavailable`, `internal`; on `409` the refusing rule's name
    /// (`already_resolved`, `article_exists`, …), or `conflict`/`busy` when a
    /// concurrent change won (retry).
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
        }
    }
}

/// A domain refusal becomes 409 with the rule's name as the code; the rest
/// maps by kind.
pub fn from_command<E: std::error::Error + Send + Sync + 'static>(e: CommandError<E>, code: impl Fn(&E) -> &'static str) -> ApiError {
    match e {
        CommandError::Rejected(r) => ApiError::Conflict { code: code(&r), message: r.to_string() },
        CommandError::Conflict(_) => ApiError::Conflict { code: "busy", message: "too many concurrent changes; retry".into() },
        CommandError::Log(l) => l.into(),
        CommandError::Seal(jamuna_commands::SealError::Keys(jamuna_commands::KeyStoreError::Erased(_))) => {
            ApiError::Forbidden("this user has been erased".into())
        }
        CommandError::Seal(s) => ApiError::internal(s),
        CommandError::Decode(d) => ApiError::internal(d),
    }
}
