//! A JSON body extractor whose rejections use the API's error shape.

use crate::error::ApiError;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};

/// Like `axum::Json`, but a malformed body, or one sent without the JSON
/// content type, is a `400 bad_request` with the reason.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::BadRequest("send the body as application/json".into())),
            Err(JsonRejection::BytesRejection(_)) => Err(ApiError::PayloadTooLarge),
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

/// Like `axum::extract::Query`, but a bad query string is a `400
/// bad_request` in the API's error shape.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}
