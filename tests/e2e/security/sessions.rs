//! Attacks on sessions.
