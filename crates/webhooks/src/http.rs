//! One POST over HTTP/1.1 to an address the [`crate::guard`] checked, with
//! TLS for `https` (rustls with ring, the process's one provider, and the
//! webpki roots). One connection per attempt; nothing is followed: a
//! redirect is an answer like any other non-2xx one.

use crate::guard::Target;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use tokio::net::TcpStream;

/// The deliverer's client.
#[derive(Clone)]
pub struct Client {
    tls: tokio_rustls::TlsConnector,
}

impl Client {
    pub fn new() -> Result<Self, rustls::Error> {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self { tls: tokio_rustls::TlsConnector::from(Arc::new(config)) })
    }

    /// POSTs `body` to `target` with `headers`; the response's status.
    pub async fn post(&self, target: &Target, headers: &[(&str, &str)], body: String) -> Result<u16, String> {
        let mut last = None;
        let mut tcp = None;
        for addr in &target.addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some(format!("{addr}: {e}")),
            }
        }
        let tcp = tcp.ok_or_else(|| format!("cannot connect to {}: {}", target.host, last.unwrap_or_default()))?;
        let path = &target.url[url::Position::BeforePath..url::Position::AfterQuery];
        let authority = &target.url[url::Position::BeforeHost..url::Position::AfterPort];
        let mut request = hyper::Request::post(if path.is_empty() { "/" } else { path }).header(hyper::header::HOST, authority);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body))).map_err(|e| format!("cannot make the request: {e}"))?;
        if target.https {
            let name = rustls::pki_types::ServerName::try_from(target.host.clone()).map_err(|e| format!("{}: {e}", target.host))?;
            let tls = self.tls.connect(name, tcp).await.map_err(|e| format!("TLS with {}: {e}", target.host))?;
            send(TokioIo::new(tls), request).await
        } else {
            send(TokioIo::new(tcp), request).await
        }
    }
}

async fn send<T>(io: T, request: hyper::Request<Full<Bytes>>) -> Result<u16, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.map_err(|e| format!("HTTP handshake: {e}"))?;
    let driver = tokio::spawn(connection);
    let answer = sender.send_request(request).await.map_err(|e| format!("sending: {e}"));
    driver.abort();
    Ok(answer?.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A local receiver that records what it gets and answers `status`.
    async fn receiver(status: u16) -> (std::net::SocketAddr, Arc<Mutex<Vec<(String, String, String)>>>) {
        let got: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
        let g = got.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: String| {
            let g = g.clone();
            async move {
                let signature = headers.get("x-jamuna-signature").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                g.lock().unwrap().push((uri.to_string(), signature, body));
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (addr, got)
    }

    fn target(url: &str, addr: std::net::SocketAddr) -> Target {
        let url = url::Url::parse(url).unwrap();
        Target { host: url.host_str().unwrap().to_owned(), https: url.scheme() == "https", url, addrs: vec![addr] }
    }

    #[tokio::test]
    async fn posts_the_body_and_headers_to_the_checked_address_and_returns_the_status() {
        let (addr, got) = receiver(201).await;
        let client = Client::new().unwrap();
        let status =
            client.post(&target(&format!("http://{addr}/hook?x=1"), addr), &[("x-jamuna-signature", "t=1,v1=ab")], "{}".into()).await;
        assert_eq!(status, Ok(201));
        assert_eq!(got.lock().unwrap().clone(), vec![("/hook?x=1".to_owned(), "t=1,v1=ab".to_owned(), "{}".to_owned())]);
        let (addr, _) = receiver(302).await;
        assert_eq!(client.post(&target(&format!("http://{addr}/"), addr), &[], "{}".into()).await, Ok(302), "a redirect is not followed");
    }

    #[tokio::test]
    async fn an_https_target_gets_tls_or_nothing() {
        // A plain-HTTP server behind an https URL: the TLS handshake fails and nothing reaches it in clear.
        let (addr, got) = receiver(200).await;
        let err = Client::new().unwrap().post(&target(&format!("https://{addr}/hook"), addr), &[], "secret body".into()).await;
        assert!(err.as_ref().is_err_and(|e| e.starts_with("TLS with")), "{err:?}");
        assert!(got.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_closed_port_is_a_failed_attempt() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = Client::new().unwrap().post(&target(&format!("http://{addr}/"), addr), &[], "{}".into()).await;
        assert!(err.is_err_and(|e| e.contains("cannot connect")));
    }
}
