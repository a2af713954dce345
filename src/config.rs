//! Configuration, loaded once in `main` in four layers, each over the last:
//! the embedded defaults (`config/default.toml`), an optional file of the
//! same shape (`--config FILE` or `JAMUNA_CONFIG`), the `JAMUNA_*`
//! environment variables, then the command-line flags.
//!
//! [`KEYS`] is the one list of the keys: each names its place in the file and
//! in [`Config`] (`section.key`), its environment variable and its flag. The
//! variables keep the flat names they had before the file had sections
//! (`JAMUNA_EVENT_LOG` sets `event_log.url`), which the Helm chart, the
//! scripts and the tests use. `--help` is built from the list, and the tests
//! below hold the list, the struct, `config/default.toml` and the README's
//! table to each other. The layers are merged by `figment`; its errors name
//! the variable or flag a bad value came from.
//!
//! An empty value turns an optional key off (`JAMUNA_MONGODB_URL=` keeps the
//! read models in SQLite): in [`Config`] it is `None`. The JWT secret is not a
//! key: it comes only from `JAMUNA_JWT_SECRET`, never from a file or a flag.

use anyhow::{Context, Result, bail};
use clap::{Arg, ArgAction, ArgMatches};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use jamuna_commands::log::LogUrl;
use serde::{Deserialize, Deserializer, Serialize};
use std::path::PathBuf;

const DEFAULTS: &str = include_str!("../config/default.toml");

/// One configuration key.
#[derive(Debug, PartialEq, Eq)]
pub struct Key {
    /// Its place in the file and in [`Config`]: `key` or `section.key`.
    pub path: &'static str,
    /// Its environment variable.
    pub env: &'static str,
    /// Its flag (the variable's name without `JAMUNA_`, in kebab case).
    pub flag: &'static str,
    /// What it sets, for `--help`.
    pub help: &'static str,
    /// A switch (`--dev`) rather than a flag with a value.
    pub switch: bool,
}

const fn key(path: &'static str, env: &'static str, flag: &'static str, help: &'static str) -> Key {
    Key { path, env, flag, help, switch: false }
}

/// Every key, in the order of `config/default.toml`.
pub const KEYS: &[Key] = &[
    key("data_dir", "JAMUNA_DATA_DIR", "data-dir", "Where the embedded mode keeps its files"),
    key("model_dir", "JAMUNA_MODEL_DIR", "model-dir", "Where the embedding model lives"),
    Key { switch: true, ..key("dev", "JAMUNA_DEV", "dev", "Dev mode: generated secret, demo tenant and admin, anonymous seed socket") },
    key("model.threads", "JAMUNA_MODEL_THREADS", "model-threads", "Threads the embedding model runs on; 0: every core"),
    key(
        "model.precision",
        "JAMUNA_MODEL_PRECISION",
        "model-precision",
        "The encoder's matrix products: auto (bf16 on AMX tiles where the CPU has them, else f32) or f32",
    ),
    key(
        "event_log.url",
        "JAMUNA_EVENT_LOG",
        "event-log",
        "The event log: sqlite:///path/events.db or nats://host:port; off: <data-dir>/events.db",
    ),
    key("nats.stream", "JAMUNA_NATS_STREAM", "nats-stream", "The NATS JetStream stream of the event log"),
    key("nats.subject_prefix", "JAMUNA_NATS_SUBJECT_PREFIX", "nats-subject-prefix", "The prefix of the event log's NATS subjects"),
    key("http.listen", "JAMUNA_LISTEN", "listen", "Where to listen (host:port; port 0 picks a free one)"),
    key("http.public_origin", "JAMUNA_PUBLIC_ORIGIN", "public-origin", "The origin browsers see the server at; off: http://<listen>"),
    key("http.static_dir", "JAMUNA_STATIC_DIR", "static-dir", "The built web clients, served at /; off: none"),
    key("http.rate_limit_per_minute", "JAMUNA_RATE_LIMIT_PER_MINUTE", "rate-limit-per-minute", "HTTP requests per minute per client"),
    key(
        "http.access_token_ttl_secs",
        "JAMUNA_ACCESS_TOKEN_TTL_SECS",
        "access-token-ttl-secs",
        "How long an access token (and a socket without re-authentication) lasts, in seconds",
    ),
    key(
        "http.metrics_listen",
        "JAMUNA_METRICS_LISTEN",
        "metrics-listen",
        "Serve /metrics on this address only (host:port), not on the API's; off: on the API's listener",
    ),
    key(
        "http.trusted_proxies",
        "JAMUNA_TRUSTED_PROXIES",
        "trusted-proxies",
        "Reverse proxies (CIDRs, comma-separated) whose X-Forwarded-For names the client; off: none",
    ),
    key(
        "http.visitors_per_ip_per_hour",
        "JAMUNA_VISITORS_PER_IP_PER_HOUR",
        "visitors-per-ip-per-hour",
        "New visitor identities per client IP per hour",
    ),
    key(
        "http.visitors_per_widget_key_per_hour",
        "JAMUNA_VISITORS_PER_WIDGET_KEY_PER_HOUR",
        "visitors-per-widget-key-per-hour",
        "New visitor identities per widget key per hour",
    ),
    key("http.sockets_per_user", "JAMUNA_SOCKETS_PER_USER", "sockets-per-user", "Open WebSockets per user (per gateway process)"),
    key("http.sockets_per_ip", "JAMUNA_SOCKETS_PER_IP", "sockets-per-ip", "Open WebSockets per client IP (per gateway process)"),
    key(
        "http.unauthenticated_sockets_per_ip",
        "JAMUNA_UNAUTHENTICATED_SOCKETS_PER_IP",
        "unauthenticated-sockets-per-ip",
        "WebSockets per client IP that have not authenticated yet",
    ),
    key(
        "visitors.idle_secs",
        "JAMUNA_VISITOR_IDLE_SECS",
        "visitor-idle-secs",
        "Erase a visitor identity that has not refreshed its tokens for this long (seconds; 0: never)",
    ),
    key(
        "attachments.max_bytes",
        "JAMUNA_ATTACHMENT_MAX_BYTES",
        "attachment-max-bytes",
        "The largest attachment, in bytes (a larger upload is refused with 413)",
    ),
    key(
        "attachments.customer_uploads_per_day",
        "JAMUNA_ATTACHMENT_CUSTOMER_UPLOADS_PER_DAY",
        "attachment-customer-uploads-per-day",
        "Attachments a customer or visitor may upload per day",
    ),
    key("router.capacity", "JAMUNA_ROUTER_CAPACITY", "router-capacity", "The router gives an agent at most this many open conversations"),
    key(
        "router.offline_after_secs",
        "JAMUNA_ROUTER_OFFLINE_AFTER_SECS",
        "router-offline-after-secs",
        "The router reassigns the conversations of an agent offline this long (seconds; 0: never)",
    ),
    key("mongodb.url", "JAMUNA_MONGODB_URL", "mongodb-url", "MongoDB for the read models, data keys and refresh tokens; off: SQLite"),
    key("mongodb.database", "JAMUNA_MONGODB_DATABASE", "mongodb-database", "The MongoDB database"),
    key("redis.url", "JAMUNA_REDIS_URL", "redis-url", "Redis for sessions, presence, rate limits and leases; off: in memory"),
    key("redis.lease_ttl_ms", "JAMUNA_LEASE_TTL_MS", "lease-ttl-ms", "How long a silent replica keeps its leases (ms, at least 100)"),
    key("qdrant.url", "JAMUNA_QDRANT_URL", "qdrant-url", "A Qdrant server (gRPC) for the knowledge-base vectors; off: qdrant-edge"),
    key("qdrant.collection", "JAMUNA_QDRANT_COLLECTION", "qdrant-collection", "The Qdrant collection"),
    key("blobs.url", "JAMUNA_BLOBS_URL", "blobs-url", "The blob store of attachments: file:///dir or s3://bucket; off: <data-dir>/blobs"),
    key(
        "blobs.s3_endpoint",
        "JAMUNA_BLOBS_S3_ENDPOINT",
        "blobs-s3-endpoint",
        "The S3-compatible server (http(s)://host:port) of an s3:// blob store; off: AWS S3 in blobs.s3_region",
    ),
    key("blobs.s3_region", "JAMUNA_BLOBS_S3_REGION", "blobs-s3-region", "The S3 region requests are signed for"),
    key(
        "smtp.url",
        "JAMUNA_SMTP_URL",
        "smtp-url",
        "An SMTP relay for notification e-mails: smtp://host:port (STARTTLS when offered) or smtps://host:port; off: no e-mail",
    ),
    key("smtp.from", "JAMUNA_SMTP_FROM", "smtp-from", "The From of notification e-mails"),
    key(
        "notify.unanswered_after_secs",
        "JAMUNA_NOTIFY_UNANSWERED_AFTER_SECS",
        "notify-unanswered-after-secs",
        "E-mail the assigned agent when a customer message has had no agent reply for this long (seconds; 0: never)",
    ),
    key("demo.admin_email", "JAMUNA_DEMO_ADMIN_EMAIL", "demo-admin-email", "Dev mode: the demo admin's email"),
    key("demo.admin_password", "JAMUNA_DEMO_ADMIN_PASSWORD", "demo-admin-password", "Dev mode: the demo admin's password; off: random"),
    key(
        "webhooks.allow_insecure_hosts",
        "JAMUNA_WEBHOOKS_ALLOW_INSECURE_HOSTS",
        "webhooks-allow-insecure-hosts",
        "Hosts (comma-separated) webhooks may reach over http and at private addresses; off: none",
    ),
];

/// The configuration file to read over the defaults: `--config FILE` or this.
pub const CONFIG_FILE_ENV: &str = "JAMUNA_CONFIG";
/// The SMTP relay's user and password: from the environment only.
pub const SMTP_USER_ENV: &str = "JAMUNA_SMTP_USER";
pub const SMTP_PASSWORD_ENV: &str = "JAMUNA_SMTP_PASSWORD";
/// The JWT signing secret: from the environment only.
pub const JWT_SECRET_ENV: &str = "JAMUNA_JWT_SECRET";
/// The S3 credentials of an `s3://` blob store: from the environment only,
/// under the names every S3 tool reads.
pub const S3_ACCESS_KEY_ENV: &str = "AWS_ACCESS_KEY_ID";
pub const S3_SECRET_KEY_ENV: &str = "AWS_SECRET_ACCESS_KEY";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub model_dir: PathBuf,
    #[serde(deserialize_with = "switch")]
    pub dev: bool,
    pub model: ModelConfig,
    pub event_log: EventLogConfig,
    pub nats: NatsSection,
    pub http: HttpConfig,
    pub visitors: VisitorsConfig,
    pub attachments: AttachmentsConfig,
    pub router: RouterSection,
    pub mongodb: MongoConfig,
    pub redis: RedisConfig,
    pub qdrant: QdrantConfig,
    pub blobs: BlobsConfig,
    pub smtp: SmtpSection,
    pub notify: NotifyConfig,
    pub demo: DemoConfig,
    pub webhooks: WebhooksConfig,
    /// Never in a file: only from JAMUNA_JWT_SECRET.
    #[serde(skip)]
    pub jwt_secret: Option<secrecy::SecretString>,
    /// Never in a file: only from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
    #[serde(skip)]
    pub s3_credentials: Option<(String, secrecy::SecretString)>,
    /// Never in a file: only from JAMUNA_SMTP_USER and JAMUNA_SMTP_PASSWORD.
    #[serde(skip)]
    pub smtp_credentials: Option<(String, secrecy::SecretString)>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EventLogConfig {
    /// `None`: SQLite at `<data_dir>/events.db`.
    #[serde(default, deserialize_with = "url")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSection {
    pub stream: String,
    pub subject_prefix: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: String,
    /// `None`: `http://<the address listened on>`.
    #[serde(default, deserialize_with = "blank_is_none")]
    pub public_origin: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub static_dir: Option<PathBuf>,
    pub rate_limit_per_minute: u32,
    /// How long an access token lasts; a socket closes (4002) when its token's time is up.
    pub access_token_ttl_secs: u64,
    /// `None`: `/metrics` is served on `listen` with the API.
    #[serde(default, deserialize_with = "blank_is_none")]
    pub metrics_listen: Option<String>,
    /// `None`: no proxy is trusted; the client is the peer.
    #[serde(default, deserialize_with = "blank_is_none")]
    pub trusted_proxies: Option<String>,
    pub visitors_per_ip_per_hour: u32,
    pub visitors_per_widget_key_per_hour: u32,
    pub sockets_per_user: usize,
    pub sockets_per_ip: usize,
    pub unauthenticated_sockets_per_ip: usize,
}

impl HttpConfig {
    /// The gateway's limits, as configured.
    pub fn limits(&self) -> Result<jamuna_gateway::routes::limits::LimitsConfig> {
        let trusted_proxies = jamuna_gateway::routes::limits::parse_cidrs(self.trusted_proxies.as_deref().unwrap_or_default())
            .with_context(|| format!("{} (http.trusted_proxies)", env_of("http.trusted_proxies")))?;
        Ok(jamuna_gateway::routes::limits::LimitsConfig {
            visitors_per_ip_per_hour: self.visitors_per_ip_per_hour,
            visitors_per_widget_key_per_hour: self.visitors_per_widget_key_per_hour,
            sockets_per_user: self.sockets_per_user,
            sockets_per_ip: self.sockets_per_ip,
            unauthenticated_sockets_per_ip: self.unauthenticated_sockets_per_ip,
            trusted_proxies,
        })
    }
}

/// How the embedding model runs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Threads of the encoder's pool; 0: every core this process may use.
    pub threads: usize,
    /// The encoder's matrix products: `auto` (bf16 on AMX tiles where the CPU has them,
    /// else f32) or `f32`.
    pub precision: String,
}

impl ModelConfig {
    /// The encoder's thread count, 0 resolved to every core.
    pub fn threads(&self) -> usize {
        if self.threads == 0 { jamuna_ai_worker::embed::default_threads() } else { self.threads }
    }

    /// The encoder's precision (checked when the configuration is loaded).
    pub fn precision(&self) -> Result<jamuna_ai_worker::Precision> {
        self.precision.parse().map_err(|e: String| anyhow::anyhow!("{} (model.precision): {e}", env_of("model.precision")))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VisitorsConfig {
    /// A visitor identity idle this long is erased; 0: never.
    pub idle_secs: u64,
}

impl VisitorsConfig {
    /// How long a visitor may be idle before the gateway erases it; `None`: forever.
    pub fn idle(&self) -> Option<std::time::Duration> {
        (self.idle_secs > 0).then(|| std::time::Duration::from_secs(self.idle_secs))
    }
}

/// The router that assigns handed-off conversations (`jamuna_ai_worker::router`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouterSection {
    /// Open conversations the router gives one agent at most.
    pub capacity: u32,
    /// An agent offline this long loses their conversations to others; 0: never.
    pub offline_after_secs: u64,
}

impl RouterSection {
    pub fn config(&self) -> jamuna_ai_worker::router::RouterConfig {
        let offline_after = (self.offline_after_secs > 0).then(|| std::time::Duration::from_secs(self.offline_after_secs));
        jamuna_ai_worker::router::RouterConfig { capacity: self.capacity, offline_after, ..Default::default() }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MongoConfig {
    /// `None`: the read models, data keys, refresh tokens and the worker's
    /// checkpoint in SQLite files under `data_dir`.
    #[serde(default, deserialize_with = "url")]
    pub url: Option<String>,
    pub database: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `None`: sessions, presence and rate limits in memory, and no leases.
    #[serde(default, deserialize_with = "url")]
    pub url: Option<String>,
    /// How long a silent replica keeps its leases on shared work.
    pub lease_ttl_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QdrantConfig {
    /// `None`: qdrant-edge in-process under `data_dir/vectors`.
    #[serde(default, deserialize_with = "url")]
    pub url: Option<String>,
    pub collection: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentsConfig {
    /// The largest upload, in bytes.
    pub max_bytes: usize,
    /// Uploads per customer (or visitor) per day.
    pub customer_uploads_per_day: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BlobsConfig {
    /// `None`: files under `data_dir/blobs`.
    #[serde(default, deserialize_with = "url")]
    pub url: Option<String>,
    /// `None`: AWS S3 itself, `https://s3.<region>.amazonaws.com`.
    #[serde(default, deserialize_with = "blank_is_none")]
    pub s3_endpoint: Option<String>,
    pub s3_region: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSection {
    /// `None`: no notification e-mails.
    #[serde(default, deserialize_with = "url")]
    pub url: Option<String>,
    pub from: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// 0: the assignee is never e-mailed about an unanswered message.
    pub unanswered_after_secs: u64,
}

impl NotifyConfig {
    pub fn unanswered_after(&self) -> Option<std::time::Duration> {
        (self.unanswered_after_secs > 0).then(|| std::time::Duration::from_secs(self.unanswered_after_secs))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DemoConfig {
    pub admin_email: String,
    /// `None`: a random one, printed when the demo admin is created.
    #[serde(default, deserialize_with = "blank_is_none")]
    pub admin_password: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Comma-separated hosts exempt from the https and public-address rules.
    #[serde(default, deserialize_with = "blank_is_none")]
    pub allow_insecure_hosts: Option<String>,
}

impl WebhooksConfig {
    /// The allowed hosts, lower case.
    pub fn allowed_hosts(&self) -> Vec<String> {
        self.allow_insecure_hosts
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect()
    }
}

impl Config {
    /// The embedded defaults alone.
    #[cfg(test)]
    pub fn defaults() -> Result<Self> {
        Self::load_from(&Flags::default(), |_| None)
    }

    pub fn load(flags: &Flags) -> Result<Self> {
        Self::load_from(flags, |k| std::env::var(k).ok())
    }

    fn load_from(flags: &Flags, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut figment = Figment::from(TomlText { name: "the built-in defaults (config/default.toml)".into(), text: DEFAULTS.into() });
        if let Some(path) = flags.file.clone().or_else(|| env(CONFIG_FILE_ENV).filter(|f| !f.is_empty()).map(PathBuf::from)) {
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read the configuration file {}", path.display()))?;
            figment = figment.merge(TomlText { name: path.display().to_string(), text });
        }
        let from_env = KEYS.iter().filter_map(|k| Some((k, env(k.env)?))).collect();
        figment = figment
            .merge(Layer { source: Source::Env, values: from_env })
            .merge(Layer { source: Source::Flag, values: flags.given.clone() });
        // Lossy: a number or a switch may arrive as text (from a variable or a flag).
        let mut config: Config = figment.extract_lossy().map_err(|e| anyhow::anyhow!("bad configuration: {e}"))?;
        config.jwt_secret = env(JWT_SECRET_ENV).filter(|s| !s.is_empty()).map(secrecy::SecretString::from);
        config.s3_credentials = env(S3_ACCESS_KEY_ENV)
            .filter(|s| !s.is_empty())
            .zip(env(S3_SECRET_KEY_ENV).filter(|s| !s.is_empty()).map(secrecy::SecretString::from));
        config.smtp_credentials = env(SMTP_USER_ENV)
            .filter(|s| !s.is_empty())
            .map(|user| (user, secrecy::SecretString::from(env(SMTP_PASSWORD_ENV).unwrap_or_default())));
        config.check()?;
        Ok(config)
    }

    /// What the types do not say.
    fn check(&self) -> Result<()> {
        if self.redis.lease_ttl_ms < 100 {
            bail!("{} (redis.lease_ttl_ms) is {}: give at least 100 milliseconds", env_of("redis.lease_ttl_ms"), self.redis.lease_ttl_ms);
        }
        if self.http.access_token_ttl_secs == 0 {
            bail!("{} (http.access_token_ttl_secs) is 0: give at least 1 second", env_of("http.access_token_ttl_secs"));
        }
        self.event_log_url()?;
        self.model.precision()?;
        self.http.limits()?;
        self.blob_url()?;
        if self.attachments.max_bytes == 0 {
            bail!("{} (attachments.max_bytes) is 0: give at least 1 byte", env_of("attachments.max_bytes"));
        }
        if let Some(url) = &self.smtp.url {
            crate::notify::smtp::SmtpConfig::parse(url, &self.smtp.from, None)
                .with_context(|| format!("{} (smtp.url) or {} (smtp.from)", env_of("smtp.url"), env_of("smtp.from")))?;
        }
        for (path, url) in [("mongodb.url", &self.mongodb.url), ("redis.url", &self.redis.url), ("qdrant.url", &self.qdrant.url)] {
            if let Some(url) = url {
                let (scheme, rest) = url.split_once("://").unwrap_or_default();
                let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                    && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
                if !scheme_ok || rest.is_empty() {
                    bail!("{} ({path}) is {url:?}, not a URL (scheme://host…); leave it empty for the embedded adapter", env_of(path));
                }
            }
        }
        Ok(())
    }

    /// The event log's URL: the configured one, or SQLite in the data directory.
    pub fn event_log_url(&self) -> Result<LogUrl> {
        match &self.event_log.url {
            None => Ok(LogUrl::Sqlite(self.data_dir.join("events.db"))),
            Some(url) => LogUrl::parse(url).with_context(|| format!("{} (event_log.url) names no event log", env_of("event_log.url"))),
        }
    }
}

impl Config {
    /// The blob store's URL: the configured one, or files in the data directory.
    pub fn blob_url(&self) -> Result<jamuna_commands::blobs::BlobUrl> {
        use jamuna_commands::blobs::BlobUrl;
        match &self.blobs.url {
            None => Ok(BlobUrl::Dir(self.data_dir.join("blobs"))),
            Some(url) => BlobUrl::parse(url).map_err(|e| anyhow::anyhow!("{} (blobs.url): {e}", env_of("blobs.url"))),
        }
    }
}

fn env_of(path: &str) -> &'static str {
    KEYS.iter().find(|k| k.path == path).map_or("?", |k| k.env)
}

/// `dev`: what `JAMUNA_DEV` always meant — `1`, `true` or `yes` — or a TOML boolean.
fn switch<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Switch {
        Bool(bool),
        Number(i64),
        Text(String),
    }
    Ok(match Switch::deserialize(d)? {
        Switch::Bool(b) => b,
        Switch::Number(n) => n == 1,
        Switch::Text(s) => matches!(s.as_str(), "1" | "true" | "yes"),
    })
}

/// An optional value: empty is off.
fn blank_is_none<'de, D: Deserializer<'de>, T: From<String>>(d: D) -> Result<Option<T>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.trim().is_empty()).map(T::from))
}

/// An optional URL, trimmed: empty is off.
fn url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()))
}

/// The flags: `--config FILE` and one per key, global (given before or after
/// the command). Declared from [`KEYS`], so there is no flag without a key.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    file: Option<PathBuf>,
    given: Vec<(&'static Key, String)>,
}

const HEADING: &str = "Configuration (over config/default.toml and the environment)";

impl clap::Args for Flags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let file = Arg::new("config")
            .long("config")
            .global(true)
            .value_name("FILE")
            .value_parser(clap::value_parser!(PathBuf))
            .help_heading(HEADING)
            .help(format!("A TOML file read over the built-in defaults [env: {CONFIG_FILE_ENV}]"));
        KEYS.iter().fold(cmd.arg(file), |cmd, k| {
            let arg = Arg::new(k.flag).long(k.flag).global(true).help_heading(HEADING).help(format!("{} [env: {}]", k.help, k.env));
            cmd.arg(if k.switch { arg.action(ArgAction::SetTrue) } else { arg.value_name("VALUE").action(ArgAction::Set) })
        })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl clap::FromArgMatches for Flags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = Self::default();
        flags.update_from_arg_matches(matches)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        if let Some(file) = matches.get_one::<PathBuf>("config") {
            self.file = Some(file.clone());
        }
        for k in KEYS {
            if matches.value_source(k.flag) != Some(clap::parser::ValueSource::CommandLine) {
                continue;
            }
            // Raw: a command may declare a flag of the same id with a type of its own (`bench answer --data-dir`).
            let value = if k.switch {
                Some("true".to_owned())
            } else {
                matches.try_get_raw(k.flag).ok().flatten().and_then(|mut v| v.next()).map(|v| v.to_string_lossy().into_owned())
            };
            if let Some(value) = value {
                self.given.retain(|(g, _)| g.path != k.path);
                self.given.push((k, value));
            }
        }
        Ok(())
    }
}

/// The embedded defaults or a configuration file, read with the workspace's `toml`.
struct TomlText {
    name: String,
    text: String,
}

impl Provider for TomlText {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let dict: Dict = toml::from_str(&self.text).map_err(|e| figment::Error::from(format!("{}: {e}", self.name)))?;
        Ok(Profile::Default.collect(dict))
    }
}

#[derive(Clone, Copy)]
enum Source {
    Env,
    Flag,
}

/// The variables or the flags that were given, each at its key's place.
struct Layer {
    source: Source,
    values: Vec<(&'static Key, String)>,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        let source = self.source;
        let name = match source {
            Source::Env => "the environment",
            Source::Flag => "the command line",
        };
        // Errors name the variable or the flag, not the key's path.
        Metadata::named(name).interpolater(move |_: &Profile, path: &[&str]| {
            let path = path.join(".");
            match (KEYS.iter().find(|k| k.path == path), source) {
                (Some(k), Source::Env) => k.env.to_owned(),
                (Some(k), Source::Flag) => format!("--{}", k.flag),
                (None, _) => path,
            }
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (k, v) in &self.values {
            let value = Value::from(v.clone());
            match k.path.split_once('.') {
                None => {
                    dict.insert(k.path.to_owned(), value);
                }
                Some((section, name)) => {
                    if let Value::Dict(_, d) = dict.entry(section.to_owned()).or_insert_with(|| Dict::new().into()) {
                        d.insert(name.to_owned(), value);
                    }
                }
            }
        }
        Ok(Profile::Default.collect(dict))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    fn env_of<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    fn flags(args: &[&str]) -> Flags {
        let cli = crate::Cli::try_parse_from(["jamuna"].iter().chain(args).chain(&["events", "tail"])).unwrap();
        cli.flags
    }

    /// The value at `path` of the loaded configuration, as text.
    fn value_at(c: &Config, path: &str) -> Option<String> {
        let v = Value::serialize(c).unwrap();
        match v.find(path)? {
            Value::String(_, s) => Some(s),
            Value::Bool(_, b) => Some(b.to_string()),
            Value::Num(_, n) => n.to_u128().map(|n| n.to_string()),
            _ => None,
        }
    }

    /// A value of the right kind for each key, unlike its default.
    fn sample(k: &Key) -> &'static str {
        match k.path {
            "dev" => "true",
            "http.rate_limit_per_minute"
            | "redis.lease_ttl_ms"
            | "http.access_token_ttl_secs"
            | "visitors.idle_secs"
            | "model.threads"
            | "attachments.max_bytes" => "4321",
            "blobs.url" => "s3://sample",
            "model.precision" => "f32",
            "notify.unanswered_after_secs" => "4321",
            "smtp.url" => "smtp://sample:2525",
            p if p.contains("_per_") => "4321",
            p if p.starts_with("router.") => "4321",
            "http.trusted_proxies" => "10.0.0.0/8",
            "event_log.url" | "mongodb.url" | "redis.url" | "qdrant.url" => "nats://sample:4222",
            _ => "sample",
        }
    }

    #[test]
    fn the_defaults_parse() {
        let c = Config::defaults().unwrap();
        assert_eq!(c.data_dir, PathBuf::from("data"));
        assert_eq!(c.event_log_url().unwrap(), LogUrl::Sqlite("data/events.db".into()));
        assert_eq!((c.mongodb.url.as_deref(), c.redis.url.as_deref(), c.qdrant.url.as_deref()), (None, None, None));
        assert_eq!(c.nats.stream, "JAMUNA_EVENTS");
        assert_eq!(c.http.static_dir, Some(PathBuf::from("clients/dist")));
        assert_eq!(c.redis.lease_ttl_ms, 10_000);
        assert!(!c.dev && c.jwt_secret.is_none() && c.demo.admin_password.is_none());
    }

    #[test]
    fn environment_then_flags_override_the_defaults() {
        let env = env_of(&[("JAMUNA_DATA_DIR", "/srv/jamuna"), ("JAMUNA_EVENT_LOG", "nats://127.0.0.1:4222")]);
        let c = Config::load_from(&Flags::default(), &env).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/srv/jamuna"));
        assert_eq!(c.event_log_url().unwrap(), LogUrl::Nats("nats://127.0.0.1:4222".into()));
        assert_eq!(c.mongodb.url, None, "no MongoDB unless configured");
        let with_mongo = Config::load_from(&Flags::default(), env_of(&[("JAMUNA_MONGODB_URL", "mongodb://db:27017")])).unwrap();
        assert_eq!(with_mongo.mongodb.url.as_deref(), Some("mongodb://db:27017"));
        let c = Config::load_from(&flags(&["--event-log", "sqlite:///tmp/x.db"]), &env).unwrap();
        assert_eq!(c.event_log_url().unwrap(), LogUrl::Sqlite("/tmp/x.db".into()));
        assert_eq!(c.data_dir, PathBuf::from("/srv/jamuna"));
    }

    #[test]
    fn model_threads_default_to_every_core_and_can_be_set() {
        let c = Config::load_from(&Flags::default(), |_| None).unwrap();
        assert_eq!(c.model.threads, 0);
        assert_eq!(c.model.threads(), jamuna_ai_worker::embed::default_threads());
        let c = Config::load_from(&Flags::default(), env_of(&[("JAMUNA_MODEL_THREADS", "3")])).unwrap();
        assert_eq!(c.model.threads(), 3);
        let c = Config::load_from(&flags(&["--model-threads", "1"]), env_of(&[("JAMUNA_MODEL_THREADS", "3")])).unwrap();
        assert_eq!(c.model.threads(), 1);
        let err = Config::load_from(&Flags::default(), env_of(&[("JAMUNA_MODEL_THREADS", "-1")])).unwrap_err();
        assert!(err.to_string().contains("JAMUNA_MODEL_THREADS"), "{err}");
    }

    #[test]
    fn a_bad_url_is_a_clear_error() {
        let err = Config::load_from(&flags(&["--event-log", "mysql://db"]), |_| None).unwrap_err();
        assert!(format!("{err:#}").contains("sqlite:///"), "{err:#}");
        let err = Config::load_from(&Flags::default(), env_of(&[("JAMUNA_REDIS_URL", "localhost")])).unwrap_err();
        assert!(err.to_string().contains("JAMUNA_REDIS_URL"), "{err}");
    }

    #[test]
    fn a_bad_value_names_its_variable_or_flag() {
        let err = Config::load_from(&Flags::default(), env_of(&[("JAMUNA_RATE_LIMIT_PER_MINUTE", "many")])).unwrap_err();
        assert!(err.to_string().contains("JAMUNA_RATE_LIMIT_PER_MINUTE"), "{err}");
        let err = Config::load_from(&flags(&["--lease-ttl-ms", "soon"]), |_| None).unwrap_err();
        assert!(err.to_string().contains("--lease-ttl-ms"), "{err}");
        let err = Config::load_from(&Flags::default(), env_of(&[("JAMUNA_LEASE_TTL_MS", "5")])).unwrap_err();
        assert!(err.to_string().contains("at least 100"), "{err}");
        let err = Config::load_from(&Flags::default(), env_of(&[("JAMUNA_TRUSTED_PROXIES", "10.0.0.0/8, proxy.local")])).unwrap_err();
        assert!(format!("{err:#}").contains("JAMUNA_TRUSTED_PROXIES") && format!("{err:#}").contains("proxy.local"), "{err:#}");
    }

    #[test]
    fn empty_turns_an_optional_key_off() {
        let env = env_of(&[("JAMUNA_MONGODB_URL", ""), ("JAMUNA_REDIS_URL", " "), ("JAMUNA_STATIC_DIR", ""), ("JAMUNA_EVENT_LOG", "")]);
        let c = Config::load_from(&Flags::default(), env).unwrap();
        assert_eq!((&c.mongodb.url, &c.redis.url, &c.http.static_dir), (&None, &None, &None));
        assert_eq!(c.event_log_url().unwrap(), LogUrl::Sqlite("data/events.db".into()));
        let c = Config::load_from(&flags(&["--mongodb-url", ""]), env_of(&[("JAMUNA_MONGODB_URL", "mongodb://db")])).unwrap();
        assert_eq!(c.mongodb.url, None, "an empty flag turns off what the environment set");
    }

    #[test]
    fn dev_reads_as_it_always_did() {
        for (v, dev) in [("1", true), ("true", true), ("yes", true), ("0", false), ("false", false), ("", false), ("no", false)] {
            assert_eq!(Config::load_from(&Flags::default(), env_of(&[("JAMUNA_DEV", v)])).unwrap().dev, dev, "JAMUNA_DEV={v:?}");
        }
        assert!(Config::load_from(&flags(&["--dev"]), |_| None).unwrap().dev);
    }

    #[test]
    fn every_key_can_be_set_by_env_and_by_flag() {
        let defaults = Config::defaults().unwrap();
        for k in KEYS {
            let want = sample(k);
            assert_ne!(value_at(&defaults, k.path).as_deref(), Some(want), "{}: pick a sample unlike the default", k.path);
            let by_env = Config::load_from(&Flags::default(), env_of(&[(k.env, want)])).unwrap();
            assert_eq!(value_at(&by_env, k.path).as_deref(), Some(want), "{} by {}", k.path, k.env);
            let args: Vec<&str> = if k.switch { vec![k.flag] } else { vec![k.flag, want] };
            let args: Vec<String> = args.iter().enumerate().map(|(i, a)| if i == 0 { format!("--{a}") } else { a.to_string() }).collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let by_flag = Config::load_from(&flags(&args), |_| None).unwrap();
            assert_eq!(value_at(&by_flag, k.path).as_deref(), Some(want), "{} by --{}", k.path, k.flag);
            // After the command too, and over the environment.
            let after = crate::Cli::try_parse_from(["jamuna", "events", "tail"].iter().copied().chain(args.iter().copied())).unwrap();
            let over = Config::load_from(&after.flags, env_of(&[(k.env, sample_other(k))])).unwrap();
            assert_eq!(value_at(&over, k.path).as_deref(), Some(want), "--{} after the command, over {}", k.flag, k.env);
        }
    }

    fn sample_other(k: &Key) -> &'static str {
        match k.path {
            "dev" => "0",
            "http.rate_limit_per_minute"
            | "redis.lease_ttl_ms"
            | "http.access_token_ttl_secs"
            | "visitors.idle_secs"
            | "model.threads"
            | "attachments.max_bytes" => "1234",
            "blobs.url" => "s3://other",
            "model.precision" => "auto",
            "notify.unanswered_after_secs" => "1234",
            "smtp.url" => "smtps://other:465",
            p if p.contains("_per_") => "1234",
            p if p.starts_with("router.") => "1234",
            "http.trusted_proxies" => "192.168.0.0/16",
            p if p.ends_with(".url") => "nats://other:4222",
            _ => "other",
        }
    }

    #[test]
    fn a_file_sits_between_the_defaults_and_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("jamuna.toml");
        std::fs::write(&file, "data_dir = \"/from/file\"\n[nats]\nstream = \"FILE\"\n[mongodb]\nurl = \"mongodb://file\"\n").unwrap();
        let path = file.display().to_string();
        let c = Config::load_from(&Flags::default(), env_of(&[("JAMUNA_CONFIG", &path), ("JAMUNA_NATS_STREAM", "ENV")])).unwrap();
        assert_eq!(
            (&c.data_dir, c.nats.stream.as_str(), c.mongodb.url.as_deref()),
            (&PathBuf::from("/from/file"), "ENV", Some("mongodb://file"))
        );
        assert_eq!(c.nats.subject_prefix, "events", "the defaults stay under the file");
        let c = Config::load_from(&flags(&["--config", &path, "--data-dir", "/from/flag"]), |_| None).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/from/flag"));
        std::fs::write(&file, "[mongodb]\nuri = \"mongodb://typo\"\n").unwrap();
        let err = Config::load_from(&flags(&["--config", &path]), |_| None).unwrap_err();
        assert!(err.to_string().contains("uri"), "an unknown key is refused: {err}");
    }

    #[test]
    fn the_command_line_is_well_formed() {
        // Clap's own checks, over every command: a command's flag may not clash with a global one.
        crate::Cli::command().debug_assert();
    }

    /// The struct, `config/default.toml`, `--help` and the README's table
    /// all know the same keys.
    #[test]
    fn every_key_is_in_the_struct_the_defaults_the_help_and_the_readme() {
        let Value::Dict(_, dict) = Value::serialize(Config::defaults().unwrap()).unwrap() else { panic!("not a table") };
        let mut in_struct: Vec<String> = Vec::new();
        for (k, v) in dict {
            match v {
                Value::Dict(_, section) => in_struct.extend(section.keys().map(|n| format!("{k}.{n}"))),
                _ => in_struct.push(k),
            }
        }
        let mut in_keys: Vec<String> = KEYS.iter().map(|k| k.path.to_owned()).collect();
        in_struct.sort();
        in_keys.sort();
        assert_eq!(in_struct, in_keys, "the fields of Config and KEYS differ");

        let help = crate::Cli::command().render_long_help().to_string();
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        for k in KEYS {
            assert_eq!(
                k.flag,
                k.env.trim_start_matches("JAMUNA_").to_lowercase().replace('_', "-"),
                "{}: the flag follows the variable",
                k.path
            );
            let (section, name) = k.path.split_once('.').unwrap_or(("", k.path));
            let in_section = DEFAULTS.split("\n[").find(|s| s.starts_with(&format!("{section}]")) || section.is_empty()).unwrap_or("");
            assert!(
                in_section.lines().any(|l| l.trim_start_matches("# ").starts_with(&format!("{name} = "))),
                "{} is not in config/default.toml",
                k.path
            );
            assert!(help.contains(&format!("--{}", k.flag)) && help.contains(k.env), "--{} or {} is not in --help", k.flag, k.env);
            let row = format!("| `{}` | `{}` | `--{}` |", k.path, k.env, k.flag);
            assert!(readme.contains(&row), "the README's configuration table has no row starting {row}");
        }
    }
}
