//! Integration tests of the write side, in one test binary.

mod blobs;
mod durability;
mod handler;
mod keys;
#[cfg(feature = "kurrent")]
mod kurrent;
mod nats;
mod sqlite;

/// `make test` sets this: a test whose server is missing must fail, not skip.
pub fn services_required() -> bool {
    std::env::var("JAMUNA_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}
