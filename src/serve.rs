//! `jamuna serve`: the whole product in one process (the embedded mode) —
//! the SQLite event log, the read models, the AI worker and the gateway, with
//! the web clients served as static files.

use crate::config::Config;
use crate::wiring::{GatewayReads, open_read_models};
use anyhow::{Context, Result, bail};
use axum::response::IntoResponse;
use jamuna_ai_worker::answer::{AnswerConfig, Answerer};
use jamuna_ai_worker::worker::{Checkpoint, Worker};
use jamuna_ai_worker::{AsyncEmbedder, Embedder};
use jamuna_commands::handler::CommandContext;
use jamuna_commands::keys::sqlite::SqliteKeyStore;
use jamuna_commands::log::{self, EventLog};
use jamuna_commands::{CommandHandler, Sealer};
use jamuna_domain::knowledge_base::{KnowledgeBase, KnowledgeBaseCommand};
use jamuna_domain::tenant::{Tenant, TenantCommand, TenantSettings};
use jamuna_domain::user::{Email, Role, User, UserCommand};
use jamuna_domain::{ArticleId, StreamId, TenantId};
use jamuna_gateway::auth::jwt::Tokens;
use jamuna_gateway::auth::refresh::RefreshTokens;
use jamuna_gateway::routes::limits::Limiter;
use jamuna_gateway::ws::hub::Hub;
use jamuna_gateway::{AppState, GatewayConfig};
use jamuna_projections::Projector;
use secrecy::SecretString;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Where to listen (host:port; port 0 picks a free one) [env: JAMUNA_LISTEN]
    #[arg(long)]
    listen: Option<String>,
    /// Dev mode: generated secret, demo tenant and admin, anonymous seed socket [env: JAMUNA_DEV]
    #[arg(long)]
    dev: bool,
}

const DEMO_TENANT: &str = "demo";

pub async fn run(args: Args, mut config: Config) -> Result<()> {
    if let Some(l) = args.listen {
        config.listen = l;
    }
    config.dev |= args.dev;
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("cannot create the data directory {}", config.data_dir.display()))?;
    let secret = jwt_secret(&config)?;

    let log = log::connect(&config.event_log_url()?).await.context("cannot open the event log")?;
    let keys = Arc::new(SqliteKeyStore::open(config.data_dir.join("keys.db")).context("cannot open the key store")?);
    let sealer = Sealer::new(keys);
    let commands = Arc::new(CommandHandler::new(log.clone(), sealer.clone()));

    // Read models, following the log.
    let models = open_read_models(&config.data_dir)?;
    let mut projector = Projector::new(log.clone());
    let handles: Vec<_> = models.projections(&sealer).into_iter().map(|p| projector.add(p)).collect();
    projector.start();
    let projector = Arc::new(projector);
    // Read-your-writes waits for users and conversations (analytics may lag).
    let read_models = Arc::new(GatewayReads {
        users: models.users.clone(),
        conversations: models.conversations.clone(),
        analytics: models.analytics.clone(),
        handles: handles.into_iter().filter(|h| h.name() != jamuna_projections::analytics::PROJECTION).collect(),
    });

    // The AI worker, in-process.
    let embedder = Embedder::load(&config.model_dir).with_context(|| format!("cannot load the embedding model from {} (run scripts/fetch-model.sh)", config.model_dir.display()))?;
    let answerer = Arc::new(Answerer::new(AsyncEmbedder::new(Arc::new(embedder)), AnswerConfig::default()).await.context("cannot start the answerer")?);
    let worker = Worker { commands: commands.clone(), answerer, checkpoint: Checkpoint::new(config.data_dir.join("ai-worker.checkpoint")) };
    tokio::spawn(worker.run(log.clone()));

    let demo = if config.dev { Some(seed_demo(&config, &commands, &*log).await?) } else { None };

    let listener = tokio::net::TcpListener::bind(&config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let public_origin = if config.public_origin.is_empty() { format!("http://{addr}") } else { config.public_origin.clone() };
    let static_dir = Some(Path::new(&config.static_dir).to_path_buf()).filter(|d| d.is_dir());

    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().context("cannot install the metrics recorder")?;
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let hub = Arc::new(Hub::default());
    tokio::spawn(hub.clone().run(log.clone(), sealer.clone()));
    let state = AppState {
        config: Arc::new(GatewayConfig {
            public_origin: public_origin.clone(),
            dev_mode: config.dev,
            default_tenant: Some(TenantId::parse(DEMO_TENANT)?),
            max_body_bytes: 256 * 1024,
            chat_timeout: Duration::from_secs(10),
            static_dir: static_dir.clone(),
        }),
        commands,
        directory: read_models.clone(),
        conversations: read_models.clone(),
        analytics: read_models,
        tokens: Arc::new(Tokens::new(&secret, "jamuna", "jamuna-api", Duration::from_secs(15 * 60)).map_err(anyhow::Error::msg)?),
        refresh: Arc::new(RefreshTokens::open(&config.data_dir.join("sessions.db"), Duration::from_secs(30 * 24 * 3600)).map_err(|e| anyhow::anyhow!("{e}"))?),
        hub,
        limiter: Arc::new(Limiter::new(config.rate_limit_per_minute)),
        metrics,
        shutdown: shutdown_rx,
    };

    if let Some(demo) = &demo {
        println!("demo tenant: {DEMO_TENANT}");
        println!("admin login: {} / {}", demo.email, demo.password);
        println!("widget key: {}", demo.widget_key);
        if static_dir.is_some() {
            println!("demo site: {public_origin}/?key={}", demo.widget_key);
            println!("dashboard: {public_origin}/admin/");
        }
    }
    if static_dir.is_none() {
        println!("note: the web clients are not built ({} is missing); the API is served alone", config.static_dir);
    }
    println!("listening on http://{addr}");
    tracing::info!(%addr, "jamuna serve is up");

    // Projection status for `jamuna projections status` (positions and lag only).
    let status = {
        let projector = projector.clone();
        axum::Router::new().route(
            "/status/projections",
            axum::routing::get(move || {
                let projector = projector.clone();
                async move {
                    match projector.status().await {
                        Ok(s) => axum::Json(serde_json::json!({"projections": s})).into_response(),
                        Err(e) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
                    }
                }
            }),
        )
    };
    let app = jamuna_gateway::router(state).merge(status).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            let _ = shutdown_tx.send(true);
        })
        .await?;
    projector.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The signing secret: JAMUNA_JWT_SECRET, or in dev mode one generated once
/// and kept in the data directory. Outside dev mode there is no default.
fn jwt_secret(config: &Config) -> Result<SecretString> {
    if let Some(s) = &config.jwt_secret {
        return Ok(s.clone());
    }
    if !config.dev {
        bail!("JAMUNA_JWT_SECRET is not set. Set it to at least 32 random bytes (e.g. `openssl rand -base64 48`), or run with --dev for a local trial.");
    }
    let path = config.data_dir.join("dev-jwt-secret");
    if let Ok(s) = std::fs::read_to_string(&path)
        && s.trim().len() >= 32
    {
        return Ok(SecretString::from(s.trim().to_string()));
    }
    let s = random_token(48);
    std::fs::write(&path, &s).context("cannot store the dev JWT secret")?;
    Ok(SecretString::from(s))
}

fn random_token(bytes: usize) -> String {
    use base64::Engine;
    let mut b = vec![0u8; bytes];
    rand::fill(b.as_mut_slice());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

struct Demo {
    email: String,
    password: String,
    widget_key: String,
}

/// First start in dev mode: a demo tenant, an admin, and a small knowledge
/// base. Later starts find them and print the same login (kept, dev only, in
/// `<data_dir>/demo-login.json`).
async fn seed_demo(config: &Config, commands: &CommandHandler, log: &dyn EventLog) -> Result<Demo> {
    let path = config.data_dir.join("demo-login.json");
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
        && let (Some(e), Some(p), Some(k)) = (v["email"].as_str(), v["password"].as_str(), v["widget_key"].as_str())
    {
        return Ok(Demo { email: e.into(), password: p.into(), widget_key: k.into() });
    }
    let tenant = TenantId::parse(DEMO_TENANT)?;
    let ctx = || CommandContext::new(tenant.clone(), chrono::Utc::now());
    let email = std::env::var("JAMUNA_DEMO_ADMIN_EMAIL").unwrap_or_else(|_| "admin@demo.example".into());
    let password = std::env::var("JAMUNA_DEMO_ADMIN_PASSWORD").unwrap_or_else(|_| random_token(12));
    let widget_key = format!("wk_{}", random_token(24));
    let settings = TenantSettings { allowed_origins: vec![], self_signup: true };
    let create = TenantCommand::Create { tenant: tenant.clone(), name: "Demo Bank".into(), widget_key: widget_key.clone(), settings };
    let stream = StreamId::of_tenant(&tenant);
    commands.execute::<Tenant>(&stream, &create, &ctx()).await.map_err(|e| anyhow::anyhow!("cannot create the demo tenant: {e}"))?;

    let email_parsed = Email::parse(&email).map_err(|e| anyhow::anyhow!("JAMUNA_DEMO_ADMIN_EMAIL: {e}"))?;
    let user_id = jamuna_gateway::routes::auth::user_id_for_email(&tenant, &email_parsed);
    let hash = jamuna_gateway::auth::password::hash(password.clone()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let register = UserCommand::Register { tenant: tenant.clone(), user_id: user_id.clone(), role: Role::Admin, name: Some("Demo Admin".into()), email: Some(email_parsed), password_hash: Some(hash) };
    commands.execute::<User>(&StreamId::user(&tenant, &user_id), &register, &ctx()).await.map_err(|e| anyhow::anyhow!("cannot create the demo admin: {e}"))?;

    let kb = StreamId::knowledge_base(&tenant);
    for (id, title, body) in DEMO_ARTICLES {
        let add = KnowledgeBaseCommand::AddArticle { tenant: tenant.clone(), article_id: ArticleId::parse(*id)?, title: title.to_string(), body: body.to_string(), source: None };
        commands.execute::<KnowledgeBase>(&kb, &add, &ctx()).await.map_err(|e| anyhow::anyhow!("cannot add a demo article: {e}"))?;
    }
    let _ = log;
    let login = serde_json::json!({"email": email, "password": password, "widget_key": widget_key});
    std::fs::write(&path, login.to_string()).context("cannot store the demo login")?;
    Ok(Demo { email, password, widget_key })
}

const DEMO_ARTICLES: &[(&str, &str, &str)] = &[
    ("card-delivery", "When will my new card arrive?", "New cards are sent by post and arrive within 5 working days of your order. If your card has not arrived after 7 working days, tell us in the chat and we will cancel it and send a new one for free. You can track the delivery in the app under Cards > Delivery status."),
    ("lost-card", "I lost my card or it was stolen", "If your card is lost or stolen, freeze it straight away in the app under Cards > Freeze card, then order a replacement. Frozen cards cannot be used for payments or cash withdrawals. A replacement card costs nothing and arrives within 5 working days."),
    ("change-pin", "How do I change my PIN?", "You can change your PIN at any cash machine that offers PIN services: insert your card, choose PIN services and follow the steps. You can view your current PIN in the app under Cards > Show PIN."),
    ("transfer-time", "How long does a bank transfer take?", "Transfers between accounts at our bank are instant. Transfers to other banks in the same country usually arrive within 2 hours on working days. International transfers take 1 to 3 working days, depending on the country and currency."),
    ("exchange-rate", "Which exchange rate do you use?", "Card payments in a foreign currency are converted at the interbank exchange rate of the day, with no markup on weekdays. On weekends a 0.5% markup applies to protect against rate changes while markets are closed."),
    ("top-up", "How do I top up my account?", "You can top up your account by bank transfer, with a debit card in the app under Accounts > Top up, or with Apple Pay and Google Pay. Card top-ups arrive instantly; bank transfers take up to 2 hours."),
];
