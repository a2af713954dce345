//! Attacks on erasure.
