//! `jamuna gateway`: the HTTP and WebSocket API, without projectors or the
//! AI worker. It reads the read models another process (`jamuna projector`)
//! keeps, and waits for them through the projection checkpoints stored with
//! them; it pushes events to its sockets from the log, so a socket on one
//! replica sees what was appended through another.

use super::{jwt_secret, random_token};
use crate::config::Config;
use crate::ports::{WriteSide, read_models, refresh_tokens, write_side};
use anyhow::{Context, Result};
use jamuna_commands::CommandHandler;
use jamuna_commands::handler::CommandContext;
use jamuna_domain::knowledge_base::{KnowledgeBase, KnowledgeBaseCommand};
use jamuna_domain::tenant::{Tenant, TenantCommand, TenantSettings};
use jamuna_domain::user::{Email, Role};
use jamuna_domain::{ArticleId, StreamId, TenantId};
use jamuna_gateway::auth::jwt::Tokens;
use jamuna_gateway::identity::{self, NewUser};
use jamuna_gateway::reads::{CatchUp, GatewayReads};
use jamuna_gateway::routes::limits::Limiter;
use jamuna_gateway::ws::hub::Hub;
use jamuna_gateway::{AppState, GatewayConfig};
use metrics_exporter_prometheus::PrometheusHandle;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub const DEMO_TENANT: &str = "demo";

pub async fn run(config: Config) -> Result<()> {
    super::data_dir(&config)?;
    jwt_secret(&config)?;
    let metrics = super::metrics()?;
    let write = write_side(&config).await?;
    let models = read_models(&config).await?;
    // Read-your-writes waits for users and conversations (analytics may lag),
    // as far as the projector process has stored them.
    let waited = models.projections(&write.sealer).into_iter().filter(|p| p.name() != jamuna_projections::analytics::PROJECTION).collect();
    let reads = Arc::new(GatewayReads {
        users: models.users.clone(),
        conversations: models.conversations.clone(),
        analytics: models.analytics.clone(),
        gaps: models.gaps.clone(),
        catch_up: CatchUp::Stored(waited),
    });
    serve_api(&config, write, reads, metrics, axum::Router::new(), super::shutdown_signal()).await
}

/// Serves the API (the gateway role, also inside `serve`) until `shutdown`
/// resolves; then every socket is closed with 1012 (reconnect) and in-flight
/// requests finish.
pub async fn serve_api(
    config: &Config,
    write: WriteSide,
    reads: Arc<GatewayReads>,
    metrics: PrometheusHandle,
    extra: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let secret = jwt_secret(config)?;
    let demo = if config.dev { Some(seed_demo(config, &write.commands).await?) } else { None };

    let listen = &config.http.listen;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let public_origin = config.http.public_origin.clone().unwrap_or_else(|| format!("http://{addr}"));
    let static_dir = config.http.static_dir.clone().filter(|d| d.is_dir());

    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let hub = Arc::new(Hub::default());
    tokio::spawn(hub.clone().run(write.log.clone(), write.sealer.clone()));
    let sessions = crate::ports::sessions(config).await?;
    tokio::spawn(jamuna_gateway::ws::presence::watch(hub.clone(), sessions.presence.clone()));
    let state = AppState {
        config: Arc::new(GatewayConfig {
            public_origin: public_origin.clone(),
            dev_mode: config.dev,
            default_tenant: Some(TenantId::parse(DEMO_TENANT)?),
            max_body_bytes: 256 * 1024,
            chat_timeout: Duration::from_secs(10),
            static_dir: static_dir.clone(),
            metrics_on_api: config.http.metrics_listen.is_none(),
            webhook_allowed_hosts: config.webhooks.allowed_hosts(),
        }),
        commands: write.commands.clone(),
        directory: reads.clone(),
        conversations: reads.clone(),
        analytics: reads,
        tokens: Arc::new(
            Tokens::new(&secret, "jamuna", "jamuna-api", Duration::from_secs(config.http.access_token_ttl_secs))
                .map_err(anyhow::Error::msg)?,
        ),
        refresh: Arc::new(refresh_tokens(config).await?),
        hub,
        presence: sessions.presence.clone(),
        limiter: Arc::new(
            Limiter::with_store(config.http.rate_limit_per_minute, sessions.rate_limits.clone()).configured(config.http.limits()?),
        ),
        attachments: Arc::new(jamuna_gateway::routes::attachments::Attachments {
            store: jamuna_commands::attachments::AttachmentStore::new(crate::ports::blob_store(config)?, write.sealer.keys().clone()),
            max_bytes: config.attachments.max_bytes,
            customer_uploads_per_day: config.attachments.customer_uploads_per_day,
        }),
        metrics,
        shutdown: shutdown_rx,
    };

    // Idle visitors expire (every replica sweeps; a sweep is idempotent).
    tokio::spawn(jamuna_gateway::visitors::run(state.clone(), config.visitors.idle()));

    // The demo tenant and admin were just written: sign-in reads them from
    // the read models, so say we listen only once those have caught up (a
    // bounded wait; a sign-in right after start would otherwise be refused).
    if demo.is_some() {
        let head = write.log.head().await.context("cannot read the event log's head")?;
        if let Err(e) = state.directory.caught_up(head).await {
            tracing::warn!(error = %e, "the read models have not caught up with the demo yet");
        }
    }
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
        let missing = config.http.static_dir.as_ref().map_or("http.static_dir is off".into(), |d| format!("{} is missing", d.display()));
        println!("note: the web clients are not built ({missing}); the API is served alone");
    }
    // `/metrics` on its own listener, where one is configured.
    if let Some(metrics_listen) = &config.http.metrics_listen {
        let listener = tokio::net::TcpListener::bind(metrics_listen)
            .await
            .with_context(|| format!("cannot listen on {metrics_listen} for /metrics"))?;
        println!("metrics: http://{}/metrics", listener.local_addr()?);
        let app = jamuna_gateway::routes::health::metrics_router().with_state(state.clone());
        let mut stop = state.shutdown.clone();
        tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stopped).await {
                tracing::error!(error = %e, "the metrics listener failed");
            }
        });
    }
    println!("listening on http://{addr}");
    tracing::info!(%addr, "jamuna gateway is up");

    let app = jamuna_gateway::router_with(state, extra).into_make_service_with_connect_info::<SocketAddr>();
    // No Nagle: a socket's frames go out as soon as they are written. With it, a push
    // written while the customer's delayed ACK of the previous frame is pending waited
    // for that ACK (up to 40 ms on Linux): one customer alone saw a p50 of 44 ms.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot turn off Nagle's algorithm on a connection");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: closing sockets with 1012");
            let _ = shutdown_tx.send(true);
        })
        .await?;
    Ok(())
}

pub struct Demo {
    pub email: String,
    pub password: String,
    pub widget_key: String,
}

/// First start in dev mode: a demo tenant, an admin, and a small knowledge
/// base. Later starts find them and print the same login (kept, dev only, in
/// `<data_dir>/demo-login.json`) and the tenant's current widget key (from the log).
pub async fn seed_demo(config: &Config, commands: &CommandHandler) -> Result<Demo> {
    let path = config.data_dir.join("demo-login.json");
    let tenant = TenantId::parse(DEMO_TENANT)?;
    let ctx = || CommandContext::new(tenant.clone(), chrono::Utc::now());
    let stream = StreamId::of_tenant(&tenant);
    // The widget key always comes from the log: an admin may have rotated it
    // since the demo login was stored.
    let current = commands.load::<Tenant>(&stream).await.map_err(|e| anyhow::anyhow!("cannot read the demo tenant: {e}"))?;
    if let Some(k) = current.widget_key()
        && let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
        && let (Some(e), Some(p)) = (v["email"].as_str(), v["password"].as_str())
    {
        return Ok(Demo { email: e.into(), password: p.into(), widget_key: k.to_owned() });
    }
    let email = config.demo.admin_email.clone();
    // Another replica (or an earlier start with another data directory)
    // created it already: the log says so.
    if let Some(k) = current.widget_key() {
        let password = config.demo.admin_password.clone().unwrap_or_else(|| "(the one printed when the demo tenant was created)".into());
        return Ok(Demo { email, password, widget_key: k.to_owned() });
    }
    let password = config.demo.admin_password.clone().unwrap_or_else(|| random_token(12));
    let widget_key = format!("wk_{}", random_token(24));
    let settings = TenantSettings::new(vec![], true);
    let create = TenantCommand::Create { tenant: tenant.clone(), name: "Demo Bank".into(), widget_key: widget_key.clone(), settings };
    commands.execute::<Tenant>(&stream, &create, &ctx()).await.map_err(|e| anyhow::anyhow!("cannot create the demo tenant: {e}"))?;

    let email_parsed = Email::parse(&email).map_err(|e| anyhow::anyhow!("demo.admin_email (JAMUNA_DEMO_ADMIN_EMAIL): {e}"))?;
    let hash = jamuna_gateway::auth::password::hash(password.clone()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let admin = NewUser {
        tenant: tenant.clone(),
        role: Role::Admin,
        name: Some("Demo Admin".into()),
        email: email_parsed,
        password_hash: Some(hash),
    };
    identity::register(commands, &ctx(), admin).await.map_err(|e| anyhow::anyhow!("cannot create the demo admin: {e}"))?;

    let kb = StreamId::knowledge_base(&tenant);
    for (id, title, body) in DEMO_ARTICLES {
        let add = KnowledgeBaseCommand::AddArticle {
            tenant: tenant.clone(),
            article_id: ArticleId::parse(*id)?,
            title: title.to_string(),
            body: body.to_string(),
            source: None,
        };
        commands.execute::<KnowledgeBase>(&kb, &add, &ctx()).await.map_err(|e| anyhow::anyhow!("cannot add a demo article: {e}"))?;
    }
    let login = serde_json::json!({"email": email, "password": password});
    std::fs::write(&path, login.to_string()).context("cannot store the demo login")?;
    Ok(Demo { email, password, widget_key })
}

const DEMO_ARTICLES: &[(&str, &str, &str)] = &[
    (
        "card-delivery",
        "When will my new card arrive?",
        "New cards are sent by post and arrive within 5 working days of your order. If your card has not arrived after 7 working days, tell us in the chat and we will cancel it and send a new one for free. You can track the delivery in the app under Cards > Delivery status.",
    ),
    (
        "lost-card",
        "I lost my card or it was stolen",
        "If your card is lost or stolen, freeze it straight away in the app under Cards > Freeze card, then order a replacement. Frozen cards cannot be used for payments or cash withdrawals. A replacement card costs nothing and arrives within 5 working days.",
    ),
    (
        "change-pin",
        "How do I change my PIN?",
        "You can change your PIN at any cash machine that offers PIN services: insert your card, choose PIN services and follow the steps. You can view your current PIN in the app under Cards > Show PIN.",
    ),
    (
        "transfer-time",
        "How long does a bank transfer take?",
        "Transfers between accounts at our bank are instant. Transfers to other banks in the same country usually arrive within 2 hours on working days. International transfers take 1 to 3 working days, depending on the country and currency.",
    ),
    (
        "exchange-rate",
        "Which exchange rate do you use?",
        "Card payments in a foreign currency are converted at the interbank exchange rate of the day, with no markup on weekdays. On weekends a 0.5% markup applies to protect against rate changes while markets are closed.",
    ),
    (
        "top-up",
        "How do I top up my account?",
        "You can top up your account by bank transfer, with a debit card in the app under Accounts > Top up, or with Apple Pay and Google Pay. Card top-ups arrive instantly; bank transfers take up to 2 hours.",
    ),
];
