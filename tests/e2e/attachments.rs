//! Attachments end to end: a customer uploads and posts a file, staff
//! download it, an agent replies with a PDF; others get 404; too large is
//! 413, a renamed program 415, a customer over the daily count 429; and
//! erasing the uploader leaves no readable byte of their file.

use crate::app::{App, spawn_app_with};
use serde_json::{Value, json};

/// A tiny PNG (signature and IHDR chunk), with a marker no one else writes.
fn png(marker: &str) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89".to_vec();
    b.extend_from_slice(marker.as_bytes());
    b
}

fn pdf() -> Vec<u8> {
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n".to_vec()
}

/// `POST …/attachments?name=…` with `bytes`: (status, body, headers).
async fn upload(app: &App, token: &str, conversation: &str, name: &str, bytes: Vec<u8>) -> (u16, Value) {
    let r = app
        .http
        .post(app.url(&format!("/api/v1/conversations/{conversation}/attachments")))
        .query(&[("name", name)])
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .expect("upload");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `GET …/attachments/{id}`: (status, headers, bytes).
async fn download(app: &App, token: &str, conversation: &str, id: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let r = app
        .http
        .get(app.url(&format!("/api/v1/conversations/{conversation}/attachments/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .expect("download");
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.bytes().await.expect("body").to_vec())
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

const LIMITS: [(&str, &str); 2] = [("JAMUNA_ATTACHMENT_MAX_BYTES", "20000"), ("JAMUNA_ATTACHMENT_CUSTOMER_UPLOADS_PER_DAY", "4")];

#[tokio::test]
async fn files_travel_with_messages_to_whoever_may_see_the_conversation() {
    let app = spawn_app_with(&LIMITS).await;
    let admin = app.login_admin().await;
    let (customer, _) = app.visitor().await;
    let conversation = app.start_conversation(&customer).await;

    // The customer uploads an image and posts it alone.
    let image = png("e2e-image");
    let (s, up) = upload(&app, &customer, &conversation, "C:\\photos\\receipt.png", image.clone()).await;
    assert_eq!(s, 201, "{up}");
    assert_eq!(
        (up["name"].as_str(), up["content_type"].as_str(), up["size"].as_u64()),
        (Some("receipt.png"), Some("image/png"), Some(image.len() as u64))
    );
    let image_id = up["id"].as_str().expect("an id").to_owned();
    let path = format!("/api/v1/conversations/{conversation}/messages");
    let (s, b) = app.post(&path, Some(&customer), json!({"client_message_id": "m1", "attachments": [image_id]})).await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = app.post(&path, Some(&customer), json!({"client_message_id": "m2"})).await;
    // Schema-valid (both are optional), refused by the domain's rule.
    assert_eq!((s, b["error"]["code"].as_str()), (409, Some("empty_message")), "no text and no attachments: {b}");

    // Staff see it in the detail and download it, served as what it is.
    let (_, detail) = app.get(&format!("/api/v1/conversations/{conversation}"), Some(&admin)).await;
    let posted = detail["events"].as_array().expect("events").iter().find(|e| e["event"]["client_message_id"] == "m1").expect("m1").clone();
    assert_eq!(
        posted["event"]["attachments"],
        json!([{"id": image_id, "name": "receipt.png", "content_type": "image/png", "size": image.len()}])
    );
    let (s, h, bytes) = download(&app, &admin, &conversation, &image_id).await;
    assert_eq!((s, bytes), (200, image.clone()));
    assert_eq!(header(&h, "content-type"), "image/png");
    assert_eq!(header(&h, "x-content-type-options"), "nosniff");
    assert_eq!(header(&h, "content-security-policy"), "default-src 'none'; sandbox");
    assert!(header(&h, "content-disposition").starts_with("inline; filename=\"receipt.png\""), "{h:?}");

    // The customer's own view shows it too (it is part of the message).
    let (_, mine) = app.get(&format!("/api/v1/conversations/{conversation}"), Some(&customer)).await;
    let posted = mine["events"].as_array().expect("events").iter().find(|e| e["event"]["client_message_id"] == "m1").expect("m1").clone();
    assert_eq!(posted["event"]["attachments"][0]["id"], json!(image_id));

    // An agent replies with a PDF, which the customer downloads as a file.
    let (s, up) = upload(&app, &admin, &conversation, "label.pdf", pdf()).await;
    assert_eq!(s, 201, "{up}");
    let pdf_id = up["id"].as_str().expect("an id").to_owned();
    let (s, b) =
        app.post(&path, Some(&admin), json!({"client_message_id": "a1", "text": "Here is your label", "attachments": [pdf_id]})).await;
    assert_eq!(s, 201, "{b}");
    let (s, h, bytes) = download(&app, &customer, &conversation, &pdf_id).await;
    assert_eq!((s, bytes), (200, pdf()));
    assert_eq!(header(&h, "content-type"), "application/pdf");
    assert!(header(&h, "content-disposition").starts_with("attachment; filename=\"label.pdf\""), "{h:?}");

    // One may attach only one's own uploads, once.
    let (s, b) = app.post(&path, Some(&admin), json!({"client_message_id": "a2", "attachments": [image_id]})).await;
    assert_eq!((s, b["error"]["code"].as_str()), (409, Some("unknown_attachment")), "{b}");
    let (s, b) = app.post(&path, Some(&admin), json!({"client_message_id": "a3", "attachments": [pdf_id]})).await;
    assert_eq!((s, b["error"]["code"].as_str()), (409, Some("attachment_already_posted")), "{b}");

    // Another customer sees nothing of it, and cannot upload there.
    let (other, _) = app.visitor().await;
    let (s, _, bytes) = download(&app, &other, &conversation, &image_id).await;
    assert_eq!(s, 404);
    assert!(bytes.windows(9).all(|w| w != b"e2e-image"));
    let (s, _) = upload(&app, &other, &conversation, "x.png", png("x")).await;
    assert_eq!(s, 404);
    let theirs = app.start_conversation(&other).await;
    let (s, b) = app
        .post(
            &format!("/api/v1/conversations/{theirs}/messages"),
            Some(&other),
            json!({"client_message_id": "o1", "attachments": [image_id]}),
        )
        .await;
    assert_eq!((s, b["error"]["code"].as_str()), (409, Some("unknown_attachment")), "{b}");
    let (s, _, _) = download(&app, &customer, &conversation, "no-such-file").await;
    assert_eq!(s, 404);

    // Too large, and a program renamed to look like an image.
    let (s, b) = upload(&app, &customer, &conversation, "big.txt", vec![b'a'; 20_001]).await;
    assert_eq!((s, b["error"]["code"].as_str()), (413, Some("payload_too_large")), "{b}");
    let exe = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0\xb8\0\0\0\0\0\0\0@\0\0\0This program cannot be run in DOS mode.".to_vec();
    let (s, b) = upload(&app, &customer, &conversation, "invoice.png", exe).await;
    assert_eq!((s, b["error"]["code"].as_str()), (415, Some("unsupported_media_type")), "{b}");

    // A customer's uploads per day are bounded (4 here; one made above).
    for n in 0..3 {
        let (s, b) = upload(&app, &customer, &conversation, "note.txt", format!("note {n}").into_bytes()).await;
        assert_eq!(s, 201, "upload {n}: {b}");
    }
    let (s, b) = upload(&app, &customer, &conversation, "note.txt", b"one too many".to_vec()).await;
    assert_eq!((s, b["error"]["code"].as_str()), (429, Some("rate_limited")), "{b}");
    let (s, _) = upload(&app, &admin, &conversation, "staff.txt", b"staff are not counted".to_vec()).await;
    assert_eq!(s, 201);
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if std::fs::read(&path).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)) {
            found.push(path);
        }
    }
    found
}

#[tokio::test]
async fn erasing_the_customer_leaves_nothing_readable_of_their_files_or_those_sent_them() {
    let app = spawn_app_with(&LIMITS).await;
    let admin = app.login_admin().await;
    let (customer, customer_id) = app.visitor().await;
    let conversation = app.start_conversation(&customer).await;
    let secret = "Quillifrost bankstatement 4471-9920";
    let (s, up) = upload(&app, &customer, &conversation, "Oribaldo-statement.txt", secret.as_bytes().to_vec()).await;
    assert_eq!(s, 201, "{up}");
    let id = up["id"].as_str().expect("an id").to_owned();
    let (s, b) = app
        .post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            Some(&customer),
            json!({"client_message_id": "m1", "attachments": [id]}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, _, bytes) = download(&app, &admin, &conversation, &id).await;
    assert_eq!((s, bytes.as_slice()), (200, secret.as_bytes()));
    assert!(files_containing(app.data.path(), b"Quillifrost").is_empty(), "stored sealed from the start");
    // A file staff send the customer is the customer's personal data too.
    let invoice = "Invoice Zentrovask for 4471-9920";
    let (s, up) = upload(&app, &admin, &conversation, "invoice.txt", invoice.as_bytes().to_vec()).await;
    assert_eq!(s, 201, "{up}");
    let staff_file = up["id"].as_str().expect("an id").to_owned();
    let (s, b) = app
        .post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            Some(&admin),
            json!({"client_message_id": "m2", "text": "Here it is", "attachments": [staff_file]}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, _, bytes) = download(&app, &customer, &conversation, &staff_file).await;
    assert_eq!((s, bytes.as_slice()), (200, invoice.as_bytes()));

    let r = app.http.delete(app.url(&format!("/api/v1/users/{customer_id}"))).bearer_auth(&admin).send().await.expect("erase");
    assert!(r.status().is_success(), "{}", r.status());

    let (s, _, bytes) = download(&app, &admin, &conversation, &id).await;
    assert_eq!(s, 410, "the file is gone");
    assert!(!bytes.windows(11).any(|w| w == b"Quillifrost"));
    let (s, _, bytes) = download(&app, &admin, &conversation, &staff_file).await;
    assert_eq!(s, 410, "the file staff sent the customer is gone with them");
    assert!(!bytes.windows(10).any(|w| w == b"Zentrovask"));
    let (_, detail) = app.get(&format!("/api/v1/conversations/{conversation}"), Some(&admin)).await;
    let posted = detail["events"].as_array().expect("events").iter().find(|e| e["event"]["client_message_id"] == "m1").expect("m1").clone();
    assert_eq!(posted["event"]["attachments"][0]["name"], json!({"erased": true}), "the file name was the customer's personal data");
    for needle in [&b"Quillifrost"[..], b"4471-9920", b"Oribaldo", b"Zentrovask"] {
        assert_eq!(files_containing(app.data.path(), needle), Vec::<std::path::PathBuf>::new(), "{}", String::from_utf8_lossy(needle));
    }
}
