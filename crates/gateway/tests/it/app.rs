//! `spawn_app()`: the gateway's whole HTTP and WebSocket surface, in this
//! test process, on a random port, with one helper per endpoint.
//!
//! The wiring is `jamuna serve`'s, made from the library crates alone: the
//! SQLite event log, keys and read models in a fresh temporary directory, a
//! [`Projector`] feeding the read models (read-your-writes waits for it, as in
//! `serve`), memory sessions, presence and rate limits, the push hub
//! following the log, and `axum::serve` on `127.0.0.1:0`. There is no model
//! and no AI worker: customers' messages simply go unanswered by the bot.
//!
//! A tenant (`acme`) and its admin are created by commands, as dev mode
//! seeds its demo tenant. Tokens for the staff a test needs are signed with
//! the app's own key ([`TestApp::token`]), and staff get no password: argon2id
//! is deliberately slow (about half a second unoptimised), so only a test of
//! [`TestApp::login`] pays for it. Customers are visitors, made through
//! `POST /api/v1/auth/visitor` as the widget does.

use futures::{SinkExt, StreamExt};
use jamuna_commands::handler::CommandContext;
use jamuna_commands::keys::sqlite::SqliteKeyStore;
use jamuna_commands::log::sqlite::SqliteLog;
use jamuna_commands::{CommandHandler, EventLog, Sealer};
use jamuna_domain::tenant::{Tenant, TenantCommand, TenantSettings};
use jamuna_domain::user::{Email, Role};
use jamuna_domain::{StreamId, TenantId, UserId};
use jamuna_gateway::auth::Caller;
use jamuna_gateway::auth::jwt::Tokens;
use jamuna_gateway::auth::refresh::RefreshTokens;
use jamuna_gateway::identity::{self, NewUser, Registered};
use jamuna_gateway::reads::{CatchUp, GatewayReads};
use jamuna_gateway::routes::limits::Limiter;
use jamuna_gateway::ws::hub::Hub;
use jamuna_gateway::{AppState, GatewayConfig};
use jamuna_projections::sessions::MemorySessions;
use jamuna_projections::{Projector, ReadModels};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// The tenant every app starts with.
pub const TENANT: &str = "acme";
pub const ADMIN_EMAIL: &str = "admin@acme.example";
/// How long a test waits for a frame, or for the projections to catch up.
const PATIENCE: Duration = Duration::from_secs(10);

/// Someone with a token: the user id and the bearer token.
#[derive(Debug, Clone)]
pub struct Principal {
    pub id: String,
    pub token: String,
}

/// A running gateway and what a test needs to drive it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub http: reqwest::Client,
    pub tenant: TenantId,
    pub widget_key: String,
    /// The tenant's admin (registered by command, without a password).
    pub admin: Principal,
    pub commands: Arc<CommandHandler>,
    log: Arc<dyn EventLog>,
    tokens: Arc<Tokens>,
    projector: Arc<Projector>,
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _data: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn random_hex() -> String {
    format!("{:032x}{:032x}", rand::random::<u128>(), rand::random::<u128>())
}

/// Starts the app: fresh storage, a tenant with an admin, the server on a
/// free port.
pub async fn spawn_app() -> TestApp {
    let data = tempfile::tempdir().expect("a temporary data directory");
    let log: Arc<dyn EventLog> = Arc::new(SqliteLog::open(data.path().join("events.db")).await.expect("the event log opens"));
    let keys = SqliteKeyStore::open(data.path().join("keys.db")).expect("the key store opens");
    let sealer = Sealer::new(Arc::new(keys));
    let commands = Arc::new(CommandHandler::new(log.clone(), sealer.clone()));

    // The read models, fed by a projector in this process.
    let models = ReadModels::open_sqlite(data.path().join("read")).expect("the read models open");
    let mut projector = Projector::new(log.clone());
    let handles: Vec<_> = models.projections(&sealer).into_iter().map(|p| projector.add(p)).collect();
    projector.start();
    let projector = Arc::new(projector);
    // Read-your-writes waits for users and conversations (analytics may lag), as in `serve`.
    let reads = Arc::new(GatewayReads {
        users: models.users.clone(),
        conversations: models.conversations.clone(),
        analytics: models.analytics.clone(),
        gaps: models.gaps.clone(),
        catch_up: CatchUp::Local(handles.into_iter().filter(|h| h.name() != jamuna_projections::analytics::PROJECTION).collect()),
    });

    let tenant = TenantId::parse(TENANT).expect("a tenant id");
    let widget_key = format!("wk_{}", random_hex());
    create_tenant(&commands, &tenant, &widget_key).await;
    let admin_id = register(&commands, &tenant, Role::Admin, ADMIN_EMAIL, Some("Ada Admin"), None).await;

    // The push hub follows the log from its head, as every gateway replica's does.
    let hub = Arc::new(Hub::default());
    let mut tasks = vec![tokio::spawn(hub.clone().run(log.clone(), sealer.clone()))];
    let sessions = Arc::new(MemorySessions::new());
    tasks.push(tokio::spawn(jamuna_gateway::ws::presence::watch(hub.clone(), sessions.clone())));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("the bound address");
    let secret = random_hex().into();
    let tokens = Arc::new(Tokens::new(&secret, "jamuna", "jamuna-api", Duration::from_secs(15 * 60)).expect("a 64-byte secret"));
    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
    let state = AppState {
        config: Arc::new(GatewayConfig {
            public_origin: format!("http://{addr}"),
            dev_mode: false,
            default_tenant: Some(tenant.clone()),
            max_body_bytes: 256 * 1024,
            chat_timeout: Duration::from_secs(1),
            static_dir: None,
            metrics_on_api: true,
            webhook_allowed_hosts: vec!["127.0.0.1".into()],
        }),
        commands: commands.clone(),
        directory: reads.clone(),
        conversations: reads.clone(),
        analytics: reads,
        tokens: tokens.clone(),
        refresh: Arc::new(
            RefreshTokens::open(&data.path().join("sessions.db"), Duration::from_secs(3600)).expect("the refresh store opens"),
        ),
        hub: hub.clone(),
        presence: sessions.clone(),
        limiter: Arc::new(Limiter::with_store(10_000, sessions)),
        attachments: Arc::new(jamuna_gateway::routes::attachments::Attachments {
            store: jamuna_commands::attachments::AttachmentStore::new(
                Arc::new(jamuna_commands::blobs::fs::FsBlobs::open(data.path().join("blobs")).expect("the blob store opens")),
                sealer.keys().clone(),
            ),
            max_bytes: 10 * 1024 * 1024,
            customer_uploads_per_day: 50,
        }),
        metrics: metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder().handle(),
        shutdown: shutdown_rx,
    };
    let app = jamuna_gateway::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let mut stop = shutdown.subscribe();
    tasks.push(tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(async move { drop(stop.wait_for(|stopped| *stopped).await) }).await;
    }));

    let admin = Principal {
        token: tokens
            .issue(&Caller { user: admin_id.clone(), tenant: tenant.clone(), role: Role::Admin, visitor: false }, 0)
            .expect("a token"),
        id: admin_id.to_string(),
    };
    let app = TestApp {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        tenant,
        widget_key,
        admin,
        commands,
        log,
        tokens,
        projector,
        shutdown,
        tasks,
        _data: data,
    };
    // Pushes start at the hub's first look at the head: wait for it, and for the seed to be projected.
    let head = app.log.head().await.expect("the log head");
    tokio::time::timeout(PATIENCE, async {
        while hub.position.load(Ordering::Relaxed) < head {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the push hub follows the log");
    app.settle().await;
    app
}

async fn create_tenant(commands: &CommandHandler, tenant: &TenantId, widget_key: &str) {
    let settings = TenantSettings::new(vec![], false);
    let create = TenantCommand::Create { tenant: tenant.clone(), name: format!("{tenant} Ltd"), widget_key: widget_key.into(), settings };
    let ctx = CommandContext::new(tenant.clone(), chrono::Utc::now());
    commands.execute::<Tenant>(&StreamId::of_tenant(tenant), &create, &ctx).await.expect("the tenant is created");
}

/// Registers a user as an admin would through the API (claiming the address,
/// with a new random id), without the API's password hashing.
async fn register(
    commands: &CommandHandler,
    tenant: &TenantId,
    role: Role,
    email: &str,
    name: Option<&str>,
    password_hash: Option<String>,
) -> UserId {
    let email = Email::parse(email).expect("an e-mail address");
    let new = NewUser { tenant: tenant.clone(), role, name: name.map(str::to_owned), email, password_hash };
    let ctx = CommandContext::new(tenant.clone(), chrono::Utc::now());
    match identity::register(commands, &ctx, new).await.expect("the user is registered") {
        Registered::New { user, .. } => user,
        Registered::Taken => panic!("the address is taken"),
    }
}

/// An HTTP answer: the status and the JSON body (`null` when there is none).
pub type Answer = (u16, Value);

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Waits until every projection has applied the whole log, so the lists
    /// (which do not wait for a caller's writes) show them.
    pub async fn settle(&self) {
        let head = self.log.head().await.expect("the log head");
        self.projector.wait_for(head, PATIENCE).await.expect("the projections catch up");
    }

    /// A token for `caller`, signed with this app's key.
    pub fn token(&self, caller: &Caller) -> String {
        self.tokens.issue(caller, 0).expect("a token")
    }

    /// A new staff member of the app's tenant (registered by command, no password).
    pub async fn staff(&self, role: Role, name: &str) -> Principal {
        let email = format!("{}@{TENANT}.example", name.to_lowercase());
        let id = register(&self.commands, &self.tenant, role, &email, Some(name), None).await;
        self.settle().await;
        Principal { token: self.token(&Caller { user: id.clone(), tenant: self.tenant.clone(), role, visitor: false }), id: id.to_string() }
    }

    /// The admin of a second tenant, created by commands.
    pub async fn other_tenant_admin(&self, tenant: &str) -> Principal {
        let tenant = TenantId::parse(tenant).expect("a tenant id");
        create_tenant(&self.commands, &tenant, &format!("wk_{}", random_hex())).await;
        let id = register(&self.commands, &tenant, Role::Admin, &format!("admin@{tenant}.example"), None, None).await;
        self.settle().await;
        Principal { token: self.token(&Caller { user: id.clone(), tenant, role: Role::Admin, visitor: false }), id: id.to_string() }
    }

    /// The bot's answer to the customer message at `in_reply_to`, sent by
    /// command as the AI worker sends it (there is no worker here).
    pub async fn bot_answers(&self, id: &str, in_reply_to: u64, text: &str) {
        use jamuna_domain::conversation::{Conversation, ConversationCommand};
        let id = jamuna_domain::ConversationId::parse(id).expect("a conversation id");
        let answer = ConversationCommand::AnswerMessage {
            in_reply_to,
            text: jamuna_domain::MessageText::parse(text).expect("a message text"),
            intent: None,
            confidence: 0.9,
            sources: vec![],
            why: None,
        };
        let ctx = CommandContext::new(self.tenant.clone(), chrono::Utc::now());
        self.commands
            .execute::<Conversation>(&StreamId::conversation(&self.tenant, &id), &answer, &ctx)
            .await
            .expect("the answer is stored");
    }

    async fn answer(response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let body = response.bytes().await.expect("a body");
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Any request with an optional bearer token and JSON body.
    pub async fn call(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
        let mut request = self.http.request(method, self.url(path));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if let Some(b) = body {
            request = request.json(&b);
        }
        Self::answer(request.send().await.expect("the request is answered")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(reqwest::Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(reqwest::Method::POST, path, Some(token), Some(body)).await
    }

    // --- /api/v1/auth ---

    /// `POST /api/v1/auth/login`.
    pub async fn login(&self, tenant: &str, email: &str, password: &str) -> Answer {
        self.call(reqwest::Method::POST, "/api/v1/auth/login", None, Some(json!({"tenant": tenant, "email": email, "password": password})))
            .await
    }

    /// `POST /api/v1/auth/visitor` with the tenant's widget key: a new customer.
    pub async fn visitor(&self) -> Principal {
        let (s, body) = self.call(reqwest::Method::POST, "/api/v1/auth/visitor", None, Some(json!({"widget_key": self.widget_key}))).await;
        assert_eq!(s, 201, "{body}");
        Principal { id: body["user_id"].as_str().expect("a user id").into(), token: body["access_token"].as_str().expect("a token").into() }
    }

    /// `GET /api/v1/users/me`.
    pub async fn me(&self, token: &str) -> Answer {
        self.get("/api/v1/users/me", token).await
    }

    /// `POST /api/v1/users`: an admin creates a staff member with a password.
    pub async fn create_user(&self, token: &str, role: &str, name: &str, email: &str, password: &str) -> Answer {
        self.post("/api/v1/users", token, json!({"email": email, "password": password, "name": name, "role": role})).await
    }

    // --- /api/v1/conversations ---

    /// `POST /api/v1/conversations`.
    pub async fn start_conversation(&self, token: &str, channel: &str) -> Answer {
        self.post("/api/v1/conversations", token, json!({"channel": channel})).await
    }

    /// A customer's new web conversation: its id.
    pub async fn new_conversation(&self, customer: &Principal) -> String {
        let (s, body) = self.start_conversation(&customer.token, "web").await;
        assert_eq!(s, 201, "{body}");
        body["id"].as_str().expect("an id").into()
    }

    /// `GET /api/v1/conversations?<query>`.
    pub async fn list_conversations(&self, token: &str, query: &str) -> Answer {
        self.get(&format!("/api/v1/conversations?{query}"), token).await
    }

    /// The ids of a listing, in order.
    pub async fn listed(&self, token: &str, query: &str) -> Vec<String> {
        let (s, body) = self.list_conversations(token, query).await;
        assert_eq!(s, 200, "{query}: {body}");
        body["items"].as_array().expect("items").iter().map(|c| c["id"].as_str().expect("an id").to_owned()).collect()
    }

    /// `GET /api/v1/conversations/{id}`.
    pub async fn conversation(&self, token: &str, id: &str) -> Answer {
        self.get(&format!("/api/v1/conversations/{id}"), token).await
    }

    /// `POST /api/v1/conversations/{id}/messages`.
    pub async fn post_message(&self, token: &str, id: &str, client_message_id: &str, text: &str) -> Answer {
        self.post(&format!("/api/v1/conversations/{id}/messages"), token, json!({"client_message_id": client_message_id, "text": text}))
            .await
    }

    /// `POST /api/v1/conversations/{id}/assign` (to the caller when `agent` is `None`).
    pub async fn assign(&self, token: &str, id: &str, agent: Option<&str>) -> Answer {
        let body = match agent {
            Some(a) => json!({"agent_id": a}),
            None => json!({}),
        };
        self.post(&format!("/api/v1/conversations/{id}/assign"), token, body).await
    }

    /// `POST /api/v1/conversations/{id}/handoff`.
    pub async fn handoff(&self, token: &str, id: &str) -> Answer {
        self.post(&format!("/api/v1/conversations/{id}/handoff"), token, json!({})).await
    }

    /// `POST /api/v1/conversations/{id}/resolve`.
    pub async fn resolve(&self, token: &str, id: &str) -> Answer {
        self.post(&format!("/api/v1/conversations/{id}/resolve"), token, json!({})).await
    }

    /// `POST /api/v1/conversations/{id}/reopen`.
    pub async fn reopen(&self, token: &str, id: &str) -> Answer {
        self.post(&format!("/api/v1/conversations/{id}/reopen"), token, json!({})).await
    }

    /// `POST /api/v1/conversations/{id}/tags`.
    pub async fn tags(&self, token: &str, id: &str, add: &[&str], remove: &[&str]) -> Answer {
        self.post(&format!("/api/v1/conversations/{id}/tags"), token, json!({"add": add, "remove": remove})).await
    }

    /// `POST /api/v1/conversations/{id}/feedback`.
    pub async fn feedback(&self, token: &str, id: &str, body: Value) -> Answer {
        self.post(&format!("/api/v1/conversations/{id}/feedback"), token, body).await
    }

    // --- /api/v1/kb ---

    /// `GET /api/v1/kb/articles`.
    pub async fn kb_articles(&self, token: &str) -> Answer {
        self.get("/api/v1/kb/articles", token).await
    }

    /// `POST /api/v1/kb/articles`.
    pub async fn kb_add_article(&self, token: &str, body: Value) -> Answer {
        self.post("/api/v1/kb/articles", token, body).await
    }

    /// `PUT /api/v1/kb/articles/{id}`.
    pub async fn kb_update_article(&self, token: &str, id: &str, title: &str, body: &str) -> Answer {
        self.call(reqwest::Method::PUT, &format!("/api/v1/kb/articles/{id}"), Some(token), Some(json!({"title": title, "body": body})))
            .await
    }

    /// `DELETE /api/v1/kb/articles/{id}`.
    pub async fn kb_remove_article(&self, token: &str, id: &str) -> Answer {
        self.call(reqwest::Method::DELETE, &format!("/api/v1/kb/articles/{id}"), Some(token), None).await
    }

    /// `POST /api/v1/kb/import`: a file of `content_type`.
    pub async fn kb_import(&self, token: &str, content_type: &str, file: impl Into<Vec<u8>>) -> Answer {
        let request =
            self.http.post(self.url("/api/v1/kb/import")).bearer_auth(token).header("content-type", content_type).body(file.into());
        Self::answer(request.send().await.expect("the request is answered")).await
    }

    // --- /api/v1/ws ---

    pub fn ws_url(&self, query: &str) -> String {
        format!("{}/api/v1/ws{query}", self.base.replacen("http", "ws", 1))
    }

    /// A socket, not yet authenticated (`query` is usually empty).
    pub async fn connect(&self, query: &str) -> Ws {
        tokio_tungstenite::connect_async(self.ws_url(query)).await.expect("the socket opens").0
    }

    /// A socket authenticated by its first frame, past `ready` (and, for
    /// staff, the first `presence` frame).
    pub async fn socket(&self, who: &Principal) -> Ws {
        let mut ws = self.connect("").await;
        send(&mut ws, json!({"type": "auth", "token": who.token})).await;
        let ready = next_frame(&mut ws).await;
        assert_eq!(ready["type"], "ready", "{ready}");
        if ready["role"] != "customer" {
            let presence = next_frame(&mut ws).await;
            assert_eq!(presence["type"], "presence", "{presence}");
        }
        ws
    }
}

pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::Text(frame.to_string().into())).await.expect("the frame is sent");
}

/// The next JSON frame (skipping pings).
pub async fn next_frame(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(PATIENCE, ws.next()).await.expect("a frame in time").expect("the socket is open").expect("no error");
        match msg {
            Message::Text(t) => return serde_json::from_str(t.as_str()).expect("a JSON frame"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Frames until one satisfies `pred`.
pub async fn frame_where(ws: &mut Ws, pred: impl Fn(&Value) -> bool) -> Value {
    loop {
        let f = next_frame(ws).await;
        if pred(&f) {
            return f;
        }
    }
}

/// Every frame before the `pong` that answers a `ping` sent now (but
/// `presence`, which staff sockets get whenever someone comes or goes): what
/// the server had sent this socket so far.
pub async fn frames_until_pong(ws: &mut Ws) -> Vec<Value> {
    send(ws, json!({"type": "ping"})).await;
    let mut out = Vec::new();
    loop {
        let f = next_frame(ws).await;
        if f["type"] == "pong" {
            return out;
        }
        if f["type"] != "presence" {
            out.push(f);
        }
    }
}

/// The close code the server sends next (skipping other frames), if any.
pub async fn close_code(ws: &mut Ws) -> Option<u16> {
    while let Ok(Some(Ok(m))) = tokio::time::timeout(PATIENCE, ws.next()).await {
        if let Message::Close(f) = m {
            return f.map(|f| u16::from(f.code));
        }
    }
    None
}

/// An `event` frame of conversation `id`.
pub fn is_event(f: &Value, id: &str) -> bool {
    f["type"] == "event" && f["conversation_id"] == id
}

/// The `type` of an event frame's event.
pub fn event_type(f: &Value) -> &str {
    f["event"]["type"].as_str().unwrap_or_default()
}
