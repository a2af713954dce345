//! Blobs in an S3-compatible object store (the distributed mode).
//!
//! A deliberately small client: three operations (`PUT`, `GET`, `DELETE`
//! of one object), path-style URLs (`{endpoint}/{bucket}/{key}`, which every
//! S3-compatible server understands, unlike virtual-host buckets), each
//! request signed with AWS Signature Version 4 ([`sign`]) over reqwest,
//! with the HMAC-SHA256 and SHA-256 the workspace already has. The AWS SDK
//! would bring minutes of build for these three calls.
//!
//! Keys are [`BlobKey`]s: letters, digits, `-`, `_` and `/`, which need no
//! URI-encoding, so the signed path is the key as it is.

use super::{BlobError, BlobKey, BlobStore};
use async_trait::async_trait;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Where the bucket is and how to sign for it.
#[derive(Clone)]
pub struct S3Config {
    /// `http://127.0.0.1:9000`, `http://minio.internal:9000`, … (http only: S3
    /// over https is not built, [`S3Blobs::new`] refuses it)
    pub endpoint: String,
    pub bucket: String,
    /// `us-east-1` unless the server says otherwise.
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Blobs in one S3 bucket.
pub struct S3Blobs {
    http: reqwest::Client,
    config: S3Config,
    base: reqwest::Url,
    host: String,
}

impl S3Blobs {
    /// A client of `config`'s bucket (no request is made yet).
    pub fn new(config: S3Config) -> Result<Self, BlobError> {
        let invalid = |m: String| BlobError::Internal(m.into());
        let base = reqwest::Url::parse(config.endpoint.trim_end_matches('/'))
            .map_err(|e| invalid(format!("the S3 endpoint {:?} is not a URL: {e}", config.endpoint)))?;
        if base.scheme() != "http" {
            return Err(invalid(format!(
                "the S3 endpoint {:?} is not http://: S3 over https is not built yet (the HTTP client has no TLS); \
                 use an S3-compatible store reached over http on a private network, or the file store",
                config.endpoint
            )));
        }
        let host = match (base.host_str(), base.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => return Err(invalid(format!("the S3 endpoint {:?} names no host", config.endpoint))),
        };
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| BlobError::Internal(Box::new(e)))?;
        Ok(Self { http, config, base, host })
    }

    fn path(&self, key: &BlobKey) -> String {
        let prefix = self.base.path().trim_end_matches('/');
        format!("{prefix}/{}/{}", self.config.bucket, key.as_str())
    }

    async fn send(&self, method: reqwest::Method, key: &BlobKey, body: Bytes) -> Result<reqwest::Response, BlobError> {
        let path = self.path(key);
        let now = chrono::Utc::now();
        let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
        let payload_hash = hex(&Sha256::digest(&body));
        let headers = [
            ("host".to_owned(), self.host.clone()),
            ("x-amz-content-sha256".to_owned(), payload_hash.clone()),
            ("x-amz-date".to_owned(), amz_date.clone()),
        ];
        let authorization = sign(&Signing {
            method: method.as_str(),
            path: &path,
            query: "",
            headers: &headers,
            payload_hash: &payload_hash,
            access_key_id: &self.config.access_key_id,
            secret_access_key: &self.config.secret_access_key,
            region: &self.config.region,
            at: now,
        });
        let mut url = self.base.clone();
        url.set_path(&path);
        let mut request = self
            .http
            .request(method, url)
            .header("x-amz-content-sha256", payload_hash)
            .header("x-amz-date", amz_date)
            .header("authorization", authorization);
        if !body.is_empty() {
            request = request.body(body);
        } else {
            request = request.header("content-length", "0");
        }
        request.send().await.map_err(|e| BlobError::Unavailable(Box::new(e)))
    }
}

/// The store's answer as an error: 5xx and 503 are the store being
/// unavailable, anything else a failure (with S3's error code).
async fn failed(what: &str, r: reqwest::Response) -> BlobError {
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    let code = body.split("<Code>").nth(1).and_then(|s| s.split("</Code>").next()).unwrap_or("").to_owned();
    let message = format!("S3 {what}: {status} {code}");
    if status.is_server_error() { BlobError::Unavailable(message.into()) } else { BlobError::Internal(message.into()) }
}

#[async_trait]
impl BlobStore for S3Blobs {
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<(), BlobError> {
        let r = self.send(reqwest::Method::PUT, key, bytes).await?;
        if !r.status().is_success() {
            return Err(failed("PUT", r).await);
        }
        Ok(())
    }

    async fn get(&self, key: &BlobKey) -> Result<Option<Bytes>, BlobError> {
        let r = self.send(reqwest::Method::GET, key, Bytes::new()).await?;
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !r.status().is_success() {
            return Err(failed("GET", r).await);
        }
        Ok(Some(r.bytes().await.map_err(|e| BlobError::Unavailable(Box::new(e)))?))
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        let r = self.send(reqwest::Method::DELETE, key, Bytes::new()).await?;
        // S3 answers 204 whether or not the key existed; some servers say 404.
        if !(r.status().is_success() || r.status() == reqwest::StatusCode::NOT_FOUND) {
            return Err(failed("DELETE", r).await);
        }
        Ok(())
    }
}

/// What a request's signature covers.
pub struct Signing<'a> {
    pub method: &'a str,
    /// The URI path, already encoded.
    pub path: &'a str,
    /// The canonical query string (sorted, encoded), or empty.
    pub query: &'a str,
    /// Every signed header, names in lower case (`host`, `x-amz-date`,
    /// `x-amz-content-sha256`, …), in any order.
    pub headers: &'a [(String, String)],
    /// Hex SHA-256 of the body.
    pub payload_hash: &'a str,
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub region: &'a str,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// The `Authorization` header of a request, by AWS Signature Version 4
/// (service `s3`).
pub fn sign(s: &Signing<'_>) -> String {
    let mut headers: Vec<(String, String)> = s.headers.iter().map(|(k, v)| (k.to_lowercase(), v.trim().to_owned())).collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(";");
    let canonical_request = format!("{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}", s.method, s.path, s.query, s.payload_hash);
    let date = s.at.format("%Y%m%d").to_string();
    let scope = format!("{date}/{}/s3/aws4_request", s.region);
    let string_to_sign =
        format!("AWS4-HMAC-SHA256\n{}\n{scope}\n{}", s.at.format("%Y%m%dT%H%M%SZ"), hex(&Sha256::digest(canonical_request.as_bytes())));
    let k_date = hmac(format!("AWS4{}", s.secret_access_key).as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, s.region.as_bytes());
    let k_service = hmac(&k_region, b"s3");
    let k_signing = hmac(&k_service, b"aws4_request");
    let signature = hex(&hmac(&k_signing, string_to_sign.as_bytes()));
    format!("AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}", s.access_key_id)
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of AWS's Signature Version 4 documentation for S3
    /// ("GET Object": examplebucket, `/test.txt`, a `Range` header).
    #[test]
    fn signatures_match_aws_worked_example() {
        use chrono::TimeZone;
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let headers = [
            ("Host".to_owned(), "examplebucket.s3.amazonaws.com".to_owned()),
            ("Range".to_owned(), "bytes=0-9".to_owned()),
            ("x-amz-content-sha256".to_owned(), empty.to_owned()),
            ("x-amz-date".to_owned(), "20130524T000000Z".to_owned()),
        ];
        let auth = sign(&Signing {
            method: "GET",
            path: "/test.txt",
            query: "",
            headers: &headers,
            payload_hash: empty,
            access_key_id: "AKIAIOSFODNN7EXAMPLE",
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            region: "us-east-1",
            at: chrono::Utc.with_ymd_and_hms(2013, 5, 24, 0, 0, 0).unwrap(),
        });
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn the_secret_is_not_printed() {
        let c = S3Config {
            endpoint: "http://s3".into(),
            bucket: "b".into(),
            region: "r".into(),
            access_key_id: "AK".into(),
            secret_access_key: "very-secret".into(),
        };
        assert!(!format!("{c:?}").contains("very-secret"));
    }
}
