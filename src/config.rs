//! Configuration, loaded once: the embedded defaults (`config/default.toml`),
//! then `JAMUNA_*` environment variables, then command-line flags.

use anyhow::{Context, Result};
use jamuna_commands::log::LogUrl;
use serde::Deserialize;
use std::path::PathBuf;

const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub event_log: String,
    pub listen: String,
    pub public_origin: String,
    pub dev: bool,
    pub model_dir: PathBuf,
    pub static_dir: String,
    pub rate_limit_per_minute: u32,
    /// The read models, data keys, refresh tokens and worker checkpoint in
    /// MongoDB (`mongodb://host:port`); empty: SQLite files in `data_dir`.
    pub mongodb_url: String,
    pub mongodb_database: String,
    /// Sessions, presence and rate limits in Redis (`redis://host:port`);
    /// empty: in memory.
    pub redis_url: String,
    /// How long a silent replica keeps its leases on shared work.
    pub lease_ttl_ms: u64,
    /// The knowledge-base vectors on a Qdrant server (gRPC, `http://host:6334`),
    /// in this collection; empty: qdrant-edge in-process under `data_dir/vectors`.
    pub qdrant_url: String,
    pub qdrant_collection: String,
    /// The NATS JetStream stream holding the log, and its subjects' prefix.
    pub nats_stream: String,
    pub nats_subject_prefix: String,
    /// Never in a file: only from JAMUNA_JWT_SECRET.
    #[serde(skip)]
    pub jwt_secret: Option<secrecy::SecretString>,
}

/// What flags can override (`None`: not given).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Overrides {
    /// Where the embedded mode keeps its files [env: JAMUNA_DATA_DIR]
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// The event log: sqlite:///path/events.db or nats://host:port [env: JAMUNA_EVENT_LOG]
    #[arg(long, global = true)]
    pub event_log: Option<String>,
    /// Where the embedding model lives [env: JAMUNA_MODEL_DIR]
    #[arg(long, global = true)]
    pub model_dir: Option<PathBuf>,
}

impl Config {
    pub fn defaults() -> Result<Self> {
        toml::from_str(DEFAULTS).context("the built-in defaults (config/default.toml) do not parse")
    }

    pub fn load(flags: &Overrides) -> Result<Self> {
        Self::load_from(flags, |k| std::env::var(k).ok())
    }

    fn load_from(flags: &Overrides, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut c = Self::defaults()?;
        if let Some(v) = env("JAMUNA_DATA_DIR") {
            c.data_dir = v.into();
        }
        if let Some(v) = env("JAMUNA_EVENT_LOG") {
            c.event_log = v;
        }
        if let Some(v) = env("JAMUNA_LISTEN") {
            c.listen = v;
        }
        if let Some(v) = env("JAMUNA_PUBLIC_ORIGIN") {
            c.public_origin = v;
        }
        if let Some(v) = env("JAMUNA_DEV") {
            c.dev = matches!(v.as_str(), "1" | "true" | "yes");
        }
        if let Some(v) = env("JAMUNA_MODEL_DIR") {
            c.model_dir = v.into();
        }
        if let Some(v) = env("JAMUNA_STATIC_DIR") {
            c.static_dir = v;
        }
        if let Some(v) = env("JAMUNA_LEASE_TTL_MS") {
            c.lease_ttl_ms = v
                .parse()
                .ok()
                .filter(|ms| *ms >= 100)
                .with_context(|| format!("JAMUNA_LEASE_TTL_MS={v:?} is not a number of milliseconds (at least 100)"))?;
        }
        if let Some(v) = env("JAMUNA_RATE_LIMIT_PER_MINUTE") {
            c.rate_limit_per_minute = v.parse().with_context(|| format!("JAMUNA_RATE_LIMIT_PER_MINUTE={v:?} is not a number"))?;
        }
        for (key, field) in [
            ("JAMUNA_MONGODB_URL", &mut c.mongodb_url),
            ("JAMUNA_MONGODB_DATABASE", &mut c.mongodb_database),
            ("JAMUNA_REDIS_URL", &mut c.redis_url),
            ("JAMUNA_QDRANT_URL", &mut c.qdrant_url),
            ("JAMUNA_QDRANT_COLLECTION", &mut c.qdrant_collection),
            ("JAMUNA_NATS_STREAM", &mut c.nats_stream),
            ("JAMUNA_NATS_SUBJECT_PREFIX", &mut c.nats_subject_prefix),
        ] {
            if let Some(v) = env(key) {
                *field = v;
            }
        }
        c.jwt_secret = env("JAMUNA_JWT_SECRET").filter(|s| !s.is_empty()).map(secrecy::SecretString::from);
        if let Some(v) = &flags.data_dir {
            c.data_dir = v.clone();
        }
        if let Some(v) = &flags.event_log {
            c.event_log = v.clone();
        }
        if let Some(v) = &flags.model_dir {
            c.model_dir = v.clone();
        }
        Ok(c)
    }

    /// The event log's URL: the configured one, or SQLite in the data directory.
    pub fn event_log_url(&self) -> Result<LogUrl> {
        if self.event_log.trim().is_empty() {
            return Ok(LogUrl::Sqlite(self.data_dir.join("events.db")));
        }
        LogUrl::parse(self.event_log.trim()).map_err(Into::into)
    }

    /// The MongoDB URL, if the shared stores live there (the distributed mode).
    pub fn mongodb(&self) -> Option<&str> {
        Some(self.mongodb_url.trim()).filter(|u| !u.is_empty())
    }

    /// The Qdrant server's URL, if the knowledge-base vectors live there.
    pub fn qdrant(&self) -> Option<&str> {
        Some(self.qdrant_url.trim()).filter(|u| !u.is_empty())
    }

    /// The Redis URL, if sessions and presence live there.
    pub fn redis(&self) -> Option<&str> {
        Some(self.redis_url.trim()).filter(|u| !u.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_parse() {
        let c = Config::defaults().unwrap();
        assert_eq!(c.data_dir, PathBuf::from("data"));
        assert_eq!(c.event_log_url().unwrap(), LogUrl::Sqlite("data/events.db".into()));
    }

    #[test]
    fn environment_then_flags_override_the_defaults() {
        let env = |k: &str| match k {
            "JAMUNA_DATA_DIR" => Some("/srv/jamuna".to_string()),
            "JAMUNA_EVENT_LOG" => Some("nats://127.0.0.1:4222".to_string()),
            _ => None,
        };
        let c = Config::load_from(&Overrides::default(), env).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/srv/jamuna"));
        assert_eq!(c.event_log_url().unwrap(), LogUrl::Nats("nats://127.0.0.1:4222".into()));
        assert_eq!(c.mongodb(), None, "no MongoDB unless configured");
        let with_mongo =
            Config::load_from(&Overrides::default(), |k| (k == "JAMUNA_MONGODB_URL").then(|| "mongodb://db:27017".to_string())).unwrap();
        assert_eq!(with_mongo.mongodb(), Some("mongodb://db:27017"));
        let flags = Overrides { event_log: Some("sqlite:///tmp/x.db".into()), ..Default::default() };
        let c = Config::load_from(&flags, env).unwrap();
        assert_eq!(c.event_log_url().unwrap(), LogUrl::Sqlite("/tmp/x.db".into()));
    }

    #[test]
    fn a_bad_url_is_a_clear_error() {
        let flags = Overrides { event_log: Some("mysql://db".into()), ..Default::default() };
        let err = Config::load_from(&flags, |_| None).unwrap().event_log_url().unwrap_err();
        assert!(err.to_string().contains("sqlite:///"), "{err}");
    }
}
