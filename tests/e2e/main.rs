//! End-to-end tests: the real `jamuna serve`, started on a free port with a
//! fresh data directory, driven over HTTP and WebSocket.

mod admin;
mod api;
mod app;
mod cluster;
mod distributed;
mod frames;
mod gaps;
mod handoff;
mod otel;
mod security;
mod seed;
mod trace;
mod train;
mod webhooks;
