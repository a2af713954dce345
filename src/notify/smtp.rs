//! A small SMTP client: enough to hand a plain-text message to a relay.
//!
//! `smtp://host:port` speaks plain SMTP and upgrades with STARTTLS when the
//! server offers it; `smtps://host:port` starts in TLS (implicit TLS, port
//! 465 by default). A user and password, when given (from the environment:
//! `JAMUNA_SMTP_USER`, `JAMUNA_SMTP_PASSWORD`), go as `AUTH PLAIN`, and only
//! over TLS. TLS is rustls with the process's ring provider and the
//! system's roots. Why not `lettre`: this is all Jamuna needs of it (one
//! message, one recipient, plain text), in some 150 lines over crates the
//! build has already, where lettre would bring its own stack of options.

use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    /// Plain text; lines are sent with CRLF and dot-stuffed.
    pub body: String,
    /// The same for every attempt at the same notification, so a receiver
    /// can drop a second copy (`<…@…>`).
    pub message_id: String,
}

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("cannot reach the SMTP server: {0}")]
    Io(#[from] std::io::Error),
    #[error("the SMTP server said {0}")]
    Refused(String),
    #[error("{0}")]
    Config(String),
}

/// Where mail goes: SMTP here, a fake in tests.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, mail: &Mail) -> Result<(), MailError>;
}

/// How to reach the relay.
#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// Implicit TLS (`smtps://`).
    pub tls: bool,
    pub from: String,
    pub credentials: Option<(String, SecretString)>,
}

impl SmtpConfig {
    /// `smtp://host[:port]` (port 25) or `smtps://host[:port]` (port 465).
    pub fn parse(url: &str, from: &str, credentials: Option<(String, SecretString)>) -> Result<Self, MailError> {
        let bad = || MailError::Config(format!("{url:?} is not smtp://host:port or smtps://host:port"));
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let tls = match scheme {
            "smtp" => false,
            "smtps" => true,
            _ => return Err(bad()),
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| bad())?),
            None => (rest, if tls { 465 } else { 25 }),
        };
        if host.is_empty() || from.trim().is_empty() {
            return Err(bad());
        }
        Ok(Self { host: host.trim_matches(['[', ']']).to_owned(), port, tls, from: from.trim().to_owned(), credentials })
    }

    /// The bare address of `from` (`Jamuna <a@b>` → `a@b`).
    fn sender_address(&self) -> &str {
        match (self.from.rfind('<'), self.from.rfind('>')) {
            (Some(a), Some(b)) if a < b => &self.from[a + 1..b],
            _ => &self.from,
        }
    }
}

/// Sends each message over a connection of its own.
pub struct Smtp {
    config: SmtpConfig,
    /// [`SEND_TIMEOUT`], shorter in tests.
    timeout: std::time::Duration,
}

impl Smtp {
    pub fn new(config: SmtpConfig) -> Self {
        Self { config, timeout: SEND_TIMEOUT }
    }

    /// The system's roots, read once per process.
    fn tls_connector() -> tokio_rustls::TlsConnector {
        static CONNECTOR: std::sync::OnceLock<tokio_rustls::TlsConnector> = std::sync::OnceLock::new();
        CONNECTOR
            .get_or_init(|| {
                jamuna_commands::tls::ensure_crypto_provider();
                let mut roots = rustls::RootCertStore::empty();
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
                let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
                tokio_rustls::TlsConnector::from(Arc::new(config))
            })
            .clone()
    }

    fn server_name(&self) -> Result<rustls::pki_types::ServerName<'static>, MailError> {
        rustls::pki_types::ServerName::try_from(self.config.host.clone()).map_err(|e| MailError::Config(format!("bad SMTP host: {e}")))
    }
}

/// The longest a whole delivery may take: a relay that stalls must not hold
/// the notifier (it follows the log one event at a time) for ever.
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// The longest reply line read (RFC 5321 allows 512 octets).
const MAX_REPLY_LINE: u64 = 4096;

#[async_trait::async_trait]
impl Mailer for Smtp {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        tokio::time::timeout(self.timeout, self.send_once(mail)).await.map_err(|_| {
            MailError::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no delivery within {:?}", self.timeout)))
        })?
    }
}

impl Smtp {
    async fn send_once(&self, mail: &Mail) -> Result<(), MailError> {
        if mail.to.is_empty() || mail.to.chars().any(|c| c.is_control() || c.is_whitespace() || "<>,;".contains(c)) {
            return Err(MailError::Config(format!("{:?} is not an address to send to", mail.to)));
        }
        let tcp = TcpStream::connect((self.config.host.as_str(), self.config.port)).await?;
        if self.config.tls {
            let tls = Self::tls_connector().connect(self.server_name()?, tcp).await?;
            let mut s = Session::new(tls);
            s.expect(220).await?;
            let _ = s.command(&format!("EHLO {}", ehlo_name()), 250).await?;
            return s.deliver(&self.config, mail, true).await;
        }
        let mut s = Session::new(tcp);
        s.expect(220).await?;
        let offered = s.command(&format!("EHLO {}", ehlo_name()), 250).await?;
        if offered.iter().any(|l| l.eq_ignore_ascii_case("STARTTLS")) {
            s.command("STARTTLS", 220).await?;
            let tcp = s.into_inner();
            let tls = Self::tls_connector().connect(self.server_name()?, tcp).await?;
            let mut s = Session::new(tls);
            let _ = s.command(&format!("EHLO {}", ehlo_name()), 250).await?;
            return s.deliver(&self.config, mail, true).await;
        }
        s.deliver(&self.config, mail, false).await
    }
}

fn ehlo_name() -> &'static str {
    "jamuna.localhost"
}

/// One SMTP conversation over a stream.
struct Session<S> {
    stream: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    fn new(stream: S) -> Self {
        Self { stream: BufReader::new(stream) }
    }

    fn into_inner(self) -> S {
        self.stream.into_inner()
    }

    /// Reads a reply (all its lines); returns the text after the codes.
    async fn expect(&mut self, code: u16) -> Result<Vec<String>, MailError> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = (&mut self.stream).take(MAX_REPLY_LINE).read_line(&mut line).await?;
            if n == 0 {
                return Err(MailError::Refused("nothing (the connection closed)".into()));
            }
            if !line.ends_with('\n') && n as u64 == MAX_REPLY_LINE {
                return Err(MailError::Refused(format!("a reply line longer than {MAX_REPLY_LINE} bytes")));
            }
            let line = line.trim_end();
            let got: Option<u16> = line.get(..3).and_then(|c| c.parse().ok());
            if got != Some(code) {
                return Err(MailError::Refused(line.to_owned()));
            }
            lines.push(line.get(4..).unwrap_or_default().to_owned());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(lines);
            }
        }
    }

    async fn command(&mut self, line: &str, code: u16) -> Result<Vec<String>, MailError> {
        self.stream.get_mut().write_all(format!("{line}\r\n").as_bytes()).await?;
        self.stream.get_mut().flush().await?;
        self.expect(code).await
    }

    async fn deliver(&mut self, config: &SmtpConfig, mail: &Mail, secure: bool) -> Result<(), MailError> {
        if let Some((user, password)) = &config.credentials {
            if !secure {
                return Err(MailError::Config("the SMTP server offers no STARTTLS: not sending the password in clear".into()));
            }
            use base64::Engine;
            let plain = format!("\0{user}\0{}", password.expose_secret());
            self.command(&format!("AUTH PLAIN {}", base64::engine::general_purpose::STANDARD.encode(plain)), 235).await?;
        }
        self.command(&format!("MAIL FROM:<{}>", config.sender_address()), 250).await?;
        self.command(&format!("RCPT TO:<{}>", mail.to), 250).await?;
        self.command("DATA", 354).await?;
        let data = message(&config.from, mail, chrono::Utc::now());
        self.stream.get_mut().write_all(data.as_bytes()).await?;
        self.command(".", 250).await?;
        let _ = self.command("QUIT", 221).await;
        Ok(())
    }
}

/// The message as sent after `DATA`: headers, a blank line, the body with
/// CRLF line ends and leading dots doubled (the final `.` line is not included).
pub fn message(from: &str, mail: &Mail, date: chrono::DateTime<chrono::Utc>) -> String {
    let mut out = format!(
        "From: {from}\r\nTo: <{}>\r\nSubject: {}\r\nDate: {}\r\nMessage-ID: {}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\nAuto-Submitted: auto-generated\r\n\r\n",
        mail.to,
        header_text(&mail.subject),
        date.to_rfc2822(),
        mail.message_id,
    );
    for line in mail.body.lines() {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

/// A header value: one line; non-ASCII as an RFC 2047 encoded word.
fn header_text(s: &str) -> String {
    let one_line: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if one_line.is_ascii() {
        return one_line;
    }
    use base64::Engine;
    format!("=?utf-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(one_line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_relay_and_its_tls() {
        let c = SmtpConfig::parse("smtp://mail.example.com:2525", "Jamuna <n@example.com>", None).unwrap();
        assert_eq!((c.host.as_str(), c.port, c.tls, c.sender_address()), ("mail.example.com", 2525, false, "n@example.com"));
        let c = SmtpConfig::parse("smtps://mail.example.com", "n@example.com", None).unwrap();
        assert_eq!((c.port, c.tls, c.sender_address()), (465, true, "n@example.com"));
        assert_eq!(SmtpConfig::parse("smtp://relay", "n@x.io", None).unwrap().port, 25);
        for bad in ["http://mail:25", "mail:25", "smtp://:25", "smtp://mail:port"] {
            assert!(SmtpConfig::parse(bad, "n@x.io", None).is_err(), "{bad}");
        }
    }

    /// A relay on a free port that writes `greeting` (if any) and then stalls.
    async fn relay(greeting: Vec<u8>) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            socket.write_all(&greeting).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        });
        port
    }

    fn mail() -> Mail {
        Mail { to: "ann@example.com".into(), subject: "s".into(), body: "b".into(), message_id: "<x@jamuna>".into() }
    }

    #[tokio::test]
    async fn a_relay_that_stalls_is_given_up_on_and_an_endless_line_refused() {
        let config = |port| SmtpConfig::parse(&format!("smtp://127.0.0.1:{port}"), "n@x.io", None).unwrap();
        let stalled = Smtp { config: config(relay(b"220-hello\r\n".to_vec()).await), timeout: std::time::Duration::from_millis(300) };
        match stalled.send(&mail()).await {
            Err(MailError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut),
            other => panic!("{other:?}"),
        }
        let endless = Smtp::new(config(relay(vec![b'2'; 10_000]).await));
        match endless.send(&mail()).await {
            Err(MailError::Refused(why)) => assert!(why.contains("longer than"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_message_has_one_line_headers_crlf_and_stuffed_dots() {
        let mail = Mail {
            to: "ann@example.com".into(),
            subject: "Waiting\r\nBcc: evil@example.com".into(),
            body: "Hello\n.hidden\nbye".into(),
            message_id: "<x@jamuna>".into(),
        };
        let m = message("Jamuna <n@example.com>", &mail, chrono::DateTime::from_timestamp(0, 0).unwrap());
        assert!(m.contains("Subject: Waiting  Bcc: evil@example.com\r\n"), "{m}");
        assert!(!m.contains("\r\nBcc:"));
        assert!(m.contains("Message-ID: <x@jamuna>\r\n"));
        assert!(m.ends_with("\r\n\r\nHello\r\n..hidden\r\nbye\r\n"), "{m}");
        let accented = Mail { subject: "Réponse".into(), ..mail };
        assert!(message("n@x.io", &accented, chrono::Utc::now()).contains("Subject: =?utf-8?B?"));
    }
}
