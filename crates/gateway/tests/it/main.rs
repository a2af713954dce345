//! The gateway's integration tests, in one binary (one link on two cores).

mod docs;
