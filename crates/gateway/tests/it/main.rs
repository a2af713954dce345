//! The gateway's integration tests, in one binary (one link on two cores).
//!
//! [`app`] starts the whole gateway in this process ([`app::spawn_app`]);
//! the other modules drive it over real HTTP and WebSocket connections, one
//! module per resource.

mod app;
mod auth;
mod conversations;
mod docs;
mod hub;
mod identity;
mod kb;
mod notes;
mod teams;
mod ws;
