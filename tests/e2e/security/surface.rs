//! Attacks on the surface (issue 16, finding 5's widget key and finding 10's
//! headers): a leaked widget key that cannot be withdrawn, non-admins
//! rotating it, and HTML pages that other sites can frame or that a browser
//! would sniff.

use crate::app::*;
use serde_json::json;

/// `POST /api/v1/tenant/widget-key` as `token`: (status, body).
async fn rotate(app: &App, token: &str) -> (u16, serde_json::Value) {
    app.post("/api/v1/tenant/widget-key", Some(token), json!({})).await
}

async fn visitor_with(app: &App, key: &str) -> u16 {
    app.post("/api/v1/auth/visitor", None, json!({"widget_key": key})).await.0
}

#[tokio::test]
async fn a_rotated_widget_key_is_refused_at_once_and_the_new_one_works() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let (earlier, _) = app.visitor().await;

    let (s, body) = rotate(&app, &admin).await;
    assert_eq!(s, 200, "{body}");
    let new_key = body["widget_key"].as_str().expect("the new key").to_owned();
    assert_ne!(new_key, app.widget_key);
    assert!(new_key.len() >= 32, "{new_key}");

    // The very next request with the old key: refused, no waiting.
    assert_eq!(visitor_with(&app, &app.widget_key).await, 401, "the old key still mints visitors");
    assert_eq!(visitor_with(&app, &new_key).await, 201, "the new key mints visitors");
    // The dashboard shows the new key.
    let (s, tenant) = app.get("/api/v1/tenant", Some(&admin)).await;
    assert_eq!((s, tenant["widget_key"].as_str()), (200, Some(new_key.as_str())), "{tenant}");
    // A visitor minted with the old key is an identity, not a key: it keeps working.
    let (s, body) = app.post("/api/v1/conversations", Some(&earlier), json!({"channel": "web"})).await;
    assert_eq!(s, 201, "{body}");

    // Rotating again withdraws the second key too.
    let (s, body) = rotate(&app, &admin).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(visitor_with(&app, &new_key).await, 401);
}

#[tokio::test]
async fn only_admins_rotate_the_widget_key() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let (s, body) = app
        .post("/api/v1/users", Some(&admin), json!({"email": "agent@demo.example", "password": "a strong password", "role": "agent"}))
        .await;
    assert_eq!(s, 201, "{body}");
    let (s, login) = app
        .post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": "agent@demo.example", "password": "a strong password"}))
        .await;
    assert_eq!(s, 200, "{login}");
    let agent = login["access_token"].as_str().expect("a token").to_owned();
    let (visitor, _) = app.visitor().await;

    for (who, token) in [("an agent", agent.as_str()), ("a visitor", visitor.as_str())] {
        let (s, body) = rotate(&app, token).await;
        assert_eq!(s, 403, "{who} rotated the key: {body}");
    }
    let (s, _) = app.post("/api/v1/tenant/widget-key", None, json!({})).await;
    assert_eq!(s, 401, "anyone rotated the key");
    assert_eq!(visitor_with(&app, &app.widget_key).await, 201, "the key changed anyway");
}

/// A static directory like `clients/dist`: a page with an inline script and
/// handler (the demo page), the dashboard, and the widget script.
fn static_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a dir");
    let p = dir.path();
    std::fs::create_dir_all(p.join("admin")).expect("mkdir");
    std::fs::write(p.join("index.html"), "<!doctype html><button onclick=\"go()\">Chat</button><script>function go() {}</script>")
        .expect("write");
    std::fs::write(p.join("admin/index.html"), "<!doctype html><script type=\"module\" src=\"/admin/app.js\"></script>").expect("write");
    std::fs::write(p.join("widget.js"), "console.log('widget')").expect("write");
    dir
}

#[tokio::test]
async fn html_pages_carry_a_content_security_policy_and_cannot_be_framed() {
    let dist = static_dir();
    let app = spawn_app_with(&[("JAMUNA_STATIC_DIR", dist.path().to_str().expect("a path"))]).await;
    let host = app.base.trim_start_matches("http://").to_owned();
    for path in ["/", "/admin/", "/docs"] {
        let r = app.http.get(app.url(path)).send().await.expect("request");
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        assert!(h["content-type"].to_str().unwrap_or("").starts_with("text/html"), "{path}");
        assert_eq!(h.get("x-content-type-options").map(|v| v.as_bytes()), Some(&b"nosniff"[..]), "{path}");
        assert_eq!(h.get("x-frame-options").map(|v| v.as_bytes()), Some(&b"DENY"[..]), "{path}");
        assert_eq!(h.get("referrer-policy").map(|v| v.as_bytes()), Some(&b"no-referrer"[..]), "{path}");
        let csp = h.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("{path}: no CSP"));
        for directive in ["default-src 'self'", "object-src 'none'", "frame-ancestors 'none'", "base-uri 'self'"] {
            assert!(csp.contains(directive), "{path}: {directive} missing in {csp}");
        }
        assert!(csp.contains(&format!("connect-src 'self' ws://{host} wss://{host}")), "{path}: {csp}");
        let script_src = csp.split("; ").find(|d| d.starts_with("script-src ")).unwrap_or_else(|| panic!("{path}: {csp}"));
        assert!(!script_src.contains("'unsafe-inline'") && !script_src.contains("'unsafe-eval'"), "{path}: {script_src}");
        // The demo page's inline script and handler are allowed by their hashes.
        // echo -n 'function go() {}' | openssl dgst -sha256 -binary | base64; likewise 'go()'.
        assert!(script_src.contains("'sha256-Zwxepbd8q+A915I4envjG7CmyhbATOyBCLxl1rtqBDU='"), "{path}: {script_src}");
        assert!(script_src.contains("'sha256-5KYv+PUboo5h+0+YAtGRPbwv5d/QxzHslP4YGnUaxRw='"), "{path}: {script_src}");
        assert!(script_src.contains("'unsafe-hashes'"), "{path}: {script_src}");
    }
}

#[tokio::test]
async fn every_response_is_nosniff_and_the_widget_script_still_embeds_anywhere() {
    let dist = static_dir();
    let app = spawn_app_with(&[("JAMUNA_STATIC_DIR", dist.path().to_str().expect("a path"))]).await;
    let admin = app.login_admin().await;
    let api = app.http.get(app.url("/api/v1/tenant")).bearer_auth(&admin).send().await.expect("request");
    let error = app.http.get(app.url("/api/v1/tenant")).send().await.expect("request");
    let widget = app.http.get(app.url("/widget.js")).header("origin", "https://shop.example.com").send().await.expect("request");
    for (what, r) in [("an API answer", &api), ("an API error", &error), ("the widget script", &widget)] {
        assert_eq!(r.headers().get("x-content-type-options").map(|v| v.as_bytes()), Some(&b"nosniff"[..]), "{what}");
    }
    assert_eq!(api.status(), 200);
    assert_eq!(error.status(), 401);
    // The widget is a script the tenant's page runs (it builds its DOM in a
    // shadow root there): served as JavaScript, which nosniff requires, and
    // not fenced off from other origins.
    assert_eq!(widget.status(), 200);
    let h = widget.headers();
    assert!(h["content-type"].to_str().unwrap_or("").contains("javascript"), "{:?}", h["content-type"]);
    assert!(h.get("cross-origin-resource-policy").is_none(), "another origin could not load the widget");
    assert!(h.get("x-frame-options").is_none() && h.get("content-security-policy").is_none(), "HTML-only headers on a script");
}

#[tokio::test]
async fn a_restart_prints_the_rotated_widget_key_not_the_withdrawn_one() {
    let mut app = spawn_app().await;
    let admin = app.login_admin().await;
    let (s, body) = rotate(&app, &admin).await;
    assert_eq!(s, 200, "{body}");
    let new_key = body["widget_key"].as_str().expect("the new key").to_owned();
    app.child.kill().expect("kill");
    app.child.wait().expect("reap");
    let (child, base, printed) = start(app.data.path());
    app.child = child;
    app.base = base;
    assert_eq!(printed, new_key, "`serve --dev` printed the withdrawn key {} (demo-login.json)", app.widget_key);
    assert_eq!(visitor_with(&app, &printed).await, 201);
}

/// A request to `path` from a page of `origin`, with an optional token.
fn from_origin(app: &App, method: reqwest::Method, path: &str, origin: &str, token: Option<&str>) -> reqwest::RequestBuilder {
    let rb = app.http.request(method, app.url(path)).header("origin", origin);
    match token {
        Some(t) => rb.bearer_auth(t),
        None => rb,
    }
}

fn allow_origin(r: &reqwest::Response) -> Option<String> {
    r.headers().get("access-control-allow-origin").map(|v| v.to_str().expect("text").to_owned())
}

/// The widget runs on the tenant's own site and calls the API across
/// origins: the browser's preflight is answered, the tenant's allowed
/// origins may mint visitors and use their tokens, and other sites may not.
#[tokio::test]
async fn the_widget_works_from_the_tenants_sites_and_from_no_other() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let shop = "https://shop.example.com";
    let evil = "https://evil.example.net";
    let (s, body) = app
        .http
        .put(app.url("/api/v1/tenant/settings"))
        .bearer_auth(&admin)
        .json(&json!({"allowed_origins": [shop], "self_signup": true}))
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .expect("settings");
    assert_eq!(s, 200, "{:?}", body.text().await);

    // The preflight of the visitor call, as a browser sends it.
    let pre = from_origin(&app, reqwest::Method::OPTIONS, "/api/v1/auth/visitor", shop, None)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("preflight");
    assert_eq!(pre.status(), 204);
    assert_eq!(allow_origin(&pre).as_deref(), Some(shop));
    let methods = pre.headers().get("access-control-allow-methods").expect("methods").to_str().expect("text").to_owned();
    assert!(methods.contains("POST"), "{methods}");
    assert!(pre.headers().get("access-control-allow-credentials").is_none(), "no cookies, no credentials");

    // The tenant's site mints a visitor and uses its token.
    let r = from_origin(&app, reqwest::Method::POST, "/api/v1/auth/visitor", shop, None)
        .json(&json!({"widget_key": app.widget_key}))
        .send()
        .await
        .expect("visitor");
    assert_eq!(r.status(), 201);
    assert_eq!(allow_origin(&r).as_deref(), Some(shop));
    let token = r.json::<serde_json::Value>().await.expect("json")["access_token"].as_str().expect("token").to_owned();
    let r = from_origin(&app, reqwest::Method::POST, "/api/v1/conversations", shop, Some(&token))
        .json(&json!({"channel": "web"}))
        .send()
        .await
        .expect("start");
    assert_eq!(r.status(), 201);
    assert_eq!(allow_origin(&r).as_deref(), Some(shop));

    // Another site: no visitor from the tenant's key, and the tenant's tokens do not work from there.
    let r = from_origin(&app, reqwest::Method::POST, "/api/v1/auth/visitor", evil, None)
        .json(&json!({"widget_key": app.widget_key}))
        .send()
        .await
        .expect("visitor");
    assert_eq!(r.status(), 403, "another site minted a visitor with the tenant's key");
    let r = from_origin(&app, reqwest::Method::GET, "/api/v1/conversations", evil, Some(&token)).send().await.expect("list");
    assert_eq!(r.status(), 403, "a token of the tenant worked from another site");
    assert_eq!(allow_origin(&r), None);
    // A page this server served under another name than its public origin
    // (`http://localhost:…` for `http://127.0.0.1:…`, as `make serve` is
    // opened) is not foreign: the browser names the host it asked.
    let own = app.base.replace("127.0.0.1", "localhost");
    let r = app
        .http
        .post(format!("{own}/api/v1/auth/visitor"))
        .header("origin", &own)
        .json(&json!({"widget_key": app.widget_key}))
        .send()
        .await
        .expect("visitor");
    assert_eq!(r.status(), 201);
    assert_eq!(allow_origin(&r), None, "same-origin requests need no CORS headers");
}
