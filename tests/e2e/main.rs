//! End-to-end tests: the real `jamuna serve`, started on a free port with a
//! fresh data directory, driven over HTTP and WebSocket.

mod admin;
mod api;
mod app;
mod attachments;
mod canned;
mod cluster;
mod distributed;
mod frames;
mod gaps;
mod handoff;
mod identity;
mod notes;
mod notify;
mod otel;
mod security;
mod seed;
mod teams;
mod trace;
mod train;
mod webhooks;
