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

/// A whole JSON number in `T`'s range, written `137` or `137.0`: JSON
/// Schema's `integer` (what the document declares) counts both as integers,
/// where serde takes only the first. For `#[serde(deserialize_with = …)]`.
pub fn whole_number<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::de::Error;
    let n = <serde_json::Number as serde::Deserialize>::deserialize(d)?;
    let whole = n.as_u64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 2f64.powi(64)).map(|f| f as u64));
    let whole = whole.ok_or_else(|| D::Error::custom(format!("expected a whole number, got {n}")))?;
    T::try_from(whole).map_err(|_| D::Error::custom(format!("{n} is out of range")))
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Score(#[serde(deserialize_with = "super::whole_number")] u8);

    #[test]
    fn a_whole_number_may_be_written_as_a_float() {
        let parse = |s: &str| serde_json::from_str::<Score>(s).map(|s| s.0).ok();
        assert_eq!(parse("5"), Some(5));
        assert_eq!(parse("5.0"), Some(5));
        assert_eq!(parse("5.5"), None);
        assert_eq!(parse("-1"), None);
        assert_eq!(parse("256"), None);
        assert_eq!(parse("1e300"), None);
        assert_eq!(parse("\"5\""), None);
    }
}
