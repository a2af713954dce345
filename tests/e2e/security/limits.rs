//! Attacks on limits.
