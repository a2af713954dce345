//! `spawn_app()`: a running `jamuna serve` and one helper per endpoint.

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

pub const ADMIN_EMAIL: &str = "admin@demo.example";
pub const ADMIN_PASSWORD: &str = "e2e-admin-password";

pub struct App {
    pub child: Child,
    pub base: String,
    pub data: tempfile::TempDir,
    pub http: reqwest::Client,
    pub widget_key: String,
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_jamuna")
}

/// Starts `jamuna serve` in `data` and waits for its address.
pub fn start(data: &std::path::Path) -> (Child, String, String) {
    start_with(data, &[])
}

/// [`start`], with more environment variables.
pub fn start_with(data: &std::path::Path, env: &[(&str, &str)]) -> (Child, String, String) {
    let mut child = Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--dev"])
        .env("JAMUNA_DATA_DIR", data)
        .env("JAMUNA_DEMO_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("JAMUNA_DEMO_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("JAMUNA_LOG", "warn,qdrant_edge=error")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start jamuna serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut base = None;
    let mut widget_key = None;
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.expect("a line");
        if let Some(k) = line.split("widget key: ").nth(1) {
            widget_key = Some(k.trim().to_string());
        }
        if let Some(addr) = line.split("listening on ").nth(1) {
            base = Some(addr.trim().to_string());
            break;
        }
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, base.expect("the server printed its address"), widget_key.expect("the server printed the widget key"))
}

/// Asks `f` every 100 ms until it answers `Some`, for up to a minute.
pub async fn poll<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..600 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("gave up waiting for {what}");
}

pub async fn spawn_app() -> App {
    spawn_app_with(&[]).await
}

/// [`spawn_app`], with more environment variables (`JAMUNA_…` settings).
pub async fn spawn_app_with(env: &[(&str, &str)]) -> App {
    let data = tempfile::tempdir().expect("a data dir");
    let (child, base, widget_key) = start_with(data.path(), env);
    App { child, base, data, http: reqwest::Client::new(), widget_key }
}

pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl App {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.base.replacen("http", "ws", 1))
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn login_admin(&self) -> String {
        let (s, body) =
            self.post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).await;
        assert_eq!(s, 200, "{body}");
        body["access_token"].as_str().expect("a token").to_string()
    }

    /// A new visitor: (access token, user id).
    pub async fn visitor(&self) -> (String, String) {
        let (s, body) = self.post("/api/v1/auth/visitor", None, json!({"widget_key": self.widget_key})).await;
        assert_eq!(s, 201, "{body}");
        (body["access_token"].as_str().expect("token").into(), body["user_id"].as_str().expect("id").into())
    }

    /// `token` writes `text` in `conversation` (REST), with the client message id `id`.
    pub async fn say(&self, token: &str, conversation: &str, id: &str, text: &str) {
        let (s, b) = self
            .post(&format!("/api/v1/conversations/{conversation}/messages"), Some(token), json!({"client_message_id": id, "text": text}))
            .await;
        assert_eq!(s, 201, "{b}");
    }

    /// The conversation's events (as staff see them) once the bot has had its turn after `after` events.
    pub async fn bot_turn(&self, admin: &str, conversation: &str, after: usize) -> Vec<Value> {
        poll("the bot's turn", async || {
            let (_, d) = self.get(&format!("/api/v1/conversations/{conversation}"), Some(admin)).await;
            let events = d["events"].as_array().cloned().unwrap_or_default();
            let done = events.iter().skip(after).any(|e| matches!(e["event"]["type"].as_str(), Some("BotAnswered" | "HandoffRequested")));
            done.then_some(events)
        })
        .await
    }

    pub async fn start_conversation(&self, token: &str) -> String {
        let (s, body) = self.post("/api/v1/conversations", Some(token), json!({"channel": "web"})).await;
        assert_eq!(s, 201, "{body}");
        body["id"].as_str().expect("an id").into()
    }

    pub async fn socket(&self, token: &str) -> Ws {
        let (mut ws, _) = tokio_tungstenite::connect_async(self.ws_url("/api/v1/ws")).await.expect("connect");
        ws.send(Message::Text(json!({"type": "auth", "token": token}).to_string().into())).await.expect("send auth");
        let ready = next_frame(&mut ws).await;
        assert_eq!(ready["type"], "ready", "{ready}");
        ws
    }
}

pub async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::Text(frame.to_string().into())).await.expect("send");
}

/// The next JSON frame (skipping pings), within 15 s.
pub async fn next_frame(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("a frame within 15 s")
            .expect("the socket is open")
            .expect("no error");
        match msg {
            Message::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Frames until one satisfies `pred` (within 15 s each).
pub async fn frame_where(ws: &mut Ws, pred: impl Fn(&Value) -> bool) -> Value {
    loop {
        let f = next_frame(ws).await;
        if pred(&f) {
            return f;
        }
    }
}
