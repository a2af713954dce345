//! One process-wide TLS provider.

/// Installs ring as the process-wide rustls provider if none is installed.
///
/// With the `kurrent` feature, the `kurrentdb` crate turns on rustls' aws-lc-rs
/// provider while our other clients turn on ring. With both compiled in, rustls no longer picks a
/// default by itself, so a client that asks for the default (async-nats over
/// `tls://`) panics unless one was installed; and kurrentdb installs
/// aws-lc-rs as the default on its first connection if nothing else did.
/// Calling this first gives the whole process one provider, ring. Call it
/// before opening any TLS connection (the binary's `main` is the right
/// place); calling it again does nothing.
pub fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another installer is fine: a provider is installed either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_tls_provider_is_installed() {
        ensure_crypto_provider();
        ensure_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
