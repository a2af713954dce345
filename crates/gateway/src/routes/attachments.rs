//! `/api/v1/conversations/{id}/attachments`: upload a file, download one.
//!
//! An upload is the file's bytes as the request body (any `Content-Type`:
//! the type is found in the bytes) and its name in `?name=`. The gateway
//! checks who may write to the conversation (its customer, or staff of its
//! tenant), the size (`attachments.max_bytes`, else `413`), the type by
//! content (images, PDF, plain text, else `415`) and, for a customer, how
//! many files they uploaded today (`attachments.customer_uploads_per_day`,
//! else `429`: what a visitor can make the server keep for free). It stores
//! the file sealed with the data key of the conversation's customer ([`AttachmentStore`]) and
//! answers its id, which a message then refers to
//! (`POST …/messages` with `attachments`).
//!
//! A download is checked against the conversation's access rules (its
//! customer, staff of its tenant; anyone else gets `404`, as for the
//! conversation itself) and is served with the sniffed type, `nosniff`,
//! `Content-Disposition: attachment` for anything but an image, and a CSP
//! that lets nothing in it run (`default-src 'none'; sandbox`). A file whose
//! conversation's customer was erased (their key seals every file of it, whoever sent it) is `410 gone`: its bytes are ciphertext nobody can open.
//!
//! These routes sit outside the API's 256 KiB body limit
//! ([`super::router_with`]) with a limit of their own.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jamuna_commands::attachments::{AttachmentError, AttachmentStore, Opened, StoredAttachment};
use jamuna_domain::attachment::FileName;
use jamuna_domain::{AttachmentId, ConversationId};
use serde::{Deserialize, Serialize};

/// The attachment store and its limits, as configured.
pub struct Attachments {
    pub store: AttachmentStore,
    /// The largest upload, in bytes.
    pub max_bytes: usize,
    /// Uploads per customer (or visitor) per day.
    pub customer_uploads_per_day: u32,
}

/// The window customer uploads are counted in.
const DAY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/conversations/{id}/attachments", post(upload))
        .route("/api/v1/conversations/{id}/attachments/{attachment_id}", get(download))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct UploadParams {
    /// The file's name (its directories are dropped): 1 to 255 characters, no control characters.
    #[param(min_length = 1, max_length = 255)]
    name: String,
}

/// An uploaded file, ready to be attached to a message.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Uploaded {
    /// Refer to it in `POST …/messages` (`attachments`).
    pub id: String,
    pub name: String,
    /// Found in the bytes, whatever the name or the request said.
    #[schema(value_type = String, example = "image/png")]
    pub content_type: &'static str,
    /// In bytes.
    pub size: u64,
}

impl From<&StoredAttachment> for Uploaded {
    fn from(a: &StoredAttachment) -> Self {
        Self { id: a.id.to_string(), name: a.name.clone(), content_type: a.content_type.mime(), size: a.size }
    }
}

fn parse_id(id: &str) -> Result<ConversationId, ApiError> {
    ConversationId::parse(id).map_err(|_| ApiError::NotFound("conversation"))
}

/// Uploads a file to a conversation, by its customer or by staff.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/attachments", tag = "conversations", operation_id = "uploadAttachment",
    params(("id" = String, Path, description = "The conversation id"), UploadParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The file's bytes (at most `attachments.max_bytes`, 10 MiB by default). Accepted: PNG, JPEG, GIF, WebP, PDF, plain text (UTF-8), recognised by content."),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Stored, sealed with the key of the conversation's customer", body = Uploaded),
        (status = 400, description = "No or an invalid `name`, or an empty file", body = ErrorBody),
        (status = 403, description = "The caller has been erased", body = ErrorBody),
        (status = 404, description = "No such conversation, or not the caller's", body = ErrorBody),
        (status = 413, description = "Larger than `attachments.max_bytes`", body = ErrorBody),
        (status = 415, description = "Not an accepted type (by content: a renamed program is refused)", body = ErrorBody),
        (status = 429, description = "A customer over `attachments.customer_uploads_per_day`", body = ErrorBody),
    ))]
async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    super::json::ApiQuery(params): super::json::ApiQuery<UploadParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, axum::Json<Uploaded>), ApiError> {
    let limits = &state.attachments;
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_bytes as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    let name = FileName::parse(&params.name).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let id = parse_id(&id)?;
    let (_, conversation) = crate::service::authorize(&state, &caller, &id).await?;
    let customer = conversation.started().map(|s| s.customer.clone()).ok_or(ApiError::NotFound("conversation"))?;
    // Read at most the limit, whatever the headers said.
    let bytes = axum::body::to_bytes(body, limits.max_bytes).await.map_err(|_| ApiError::PayloadTooLarge)?;
    if bytes.is_empty() {
        return Err(ApiError::BadRequest("the file is empty".into()));
    }
    if jamuna_domain::attachment::ContentType::sniff(&bytes).is_none() {
        return Err(AttachmentError::UnsupportedType.into());
    }
    if !caller.is_staff() {
        let key = format!("uploads:{}:{}", caller.tenant, caller.user);
        if let Err(wait) = state.limiter.count(&key, limits.customer_uploads_per_day, DAY).await? {
            return Err(ApiError::TooManyRequests { retry_after: wait });
        }
    }
    let stored = limits.store.store(&caller.tenant, &id, &caller.user, &customer, &name, &bytes).await?;
    metrics::counter!("jamuna_attachments_uploaded_total", "type" => stored.content_type.mime()).increment(1);
    Ok((StatusCode::CREATED, axum::Json(Uploaded::from(&stored))))
}

/// Downloads an attachment of a conversation.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/attachments/{attachment_id}", tag = "conversations", operation_id = "downloadAttachment",
    params(("id" = String, Path, description = "The conversation id"), ("attachment_id" = String, Path, description = "The attachment id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The file, with its sniffed `Content-Type`, `X-Content-Type-Options: nosniff`, `Content-Disposition` (`attachment` unless an image) and `Content-Security-Policy: default-src 'none'; sandbox`",
            content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, description = "No such conversation or attachment, or not the caller's", body = ErrorBody),
        (status = 410, description = "The conversation's customer has been erased: the file is gone", body = ErrorBody),
    ))]
async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, attachment_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let attachment_id = AttachmentId::parse(attachment_id).map_err(|_| ApiError::NotFound("attachment"))?;
    crate::service::authorize(&state, &caller, &id).await?;
    let (attachment, bytes) = match state.attachments.store.open(&caller.tenant, &id, &attachment_id).await? {
        None => return Err(ApiError::NotFound("attachment")),
        Some(Opened::Erased { .. }) => return Err(ApiError::Gone("attachment")),
        Some(Opened::Readable { attachment, bytes }) => (attachment, bytes),
    };
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(attachment.content_type.mime()));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    let disposition = if attachment.content_type.is_image() { "inline" } else { "attachment" };
    if let Ok(v) = HeaderValue::from_str(&content_disposition(disposition, &attachment.name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// `inline` or `attachment` with the file name: an ASCII fallback
/// (`filename=`) and the exact name (`filename*=`, RFC 6266 / 8187).
fn content_disposition(kind: &str, name: &str) -> String {
    let ascii: String = name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let encoded: String = name
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

impl From<AttachmentError> for ApiError {
    fn from(e: AttachmentError) -> Self {
        match e {
            AttachmentError::UnsupportedType => ApiError::UnsupportedMediaType(e.to_string()),
            AttachmentError::Keys(jamuna_commands::KeyStoreError::Erased(_)) => ApiError::Forbidden("this user has been erased".into()),
            AttachmentError::Keys(k) => ApiError::Unavailable(Box::new(k)),
            AttachmentError::Blobs(b @ jamuna_commands::blobs::BlobError::Unavailable(_)) => ApiError::Unavailable(Box::new(b)),
            e => ApiError::internal(e),
        }
    }
}

/// The uploads `ids` as attachments of a message by `caller` in
/// `conversation`: each must be an upload of the caller's to that
/// conversation (else `409 unknown_attachment`).
pub async fn attachments_of(
    state: &AppState,
    caller: &Caller,
    conversation: &ConversationId,
    ids: &[String],
) -> Result<Vec<jamuna_domain::attachment::Attachment>, ApiError> {
    let unknown = |id: &str| ApiError::Conflict {
        code: "unknown_attachment",
        message: format!("{id:?} is not a file you uploaded to this conversation"),
    };
    let max = jamuna_domain::attachment::MAX_ATTACHMENTS_PER_MESSAGE;
    if ids.len() > max {
        let refused = jamuna_domain::conversation::ConversationError::TooManyAttachments(max);
        return Err(ApiError::Conflict { code: jamuna_domain::ErrorCode::code(&refused), message: refused.to_string() });
    }
    let mut out = Vec::with_capacity(ids.len());
    for raw in ids {
        let id = AttachmentId::parse(raw.as_str()).map_err(|_| unknown(raw))?;
        match state.attachments.store.open(&caller.tenant, conversation, &id).await? {
            Some(Opened::Readable { attachment, .. }) if attachment.uploader == caller.user => {
                out.push(jamuna_domain::attachment::Attachment {
                    id,
                    name: jamuna_domain::Personal::plain(attachment.name),
                    content_type: attachment.content_type,
                    size: attachment.size,
                });
            }
            _ => return Err(unknown(raw)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::content_disposition;

    #[test]
    fn file_names_are_quoted_safely_in_the_disposition() {
        assert_eq!(content_disposition("attachment", "label.pdf"), "attachment; filename=\"label.pdf\"; filename*=UTF-8''label.pdf");
        assert_eq!(
            content_disposition("inline", "reçu \"1\".png"),
            "inline; filename=\"re_u _1_.png\"; filename*=UTF-8''re%C3%A7u%20%221%22.png"
        );
    }
}
