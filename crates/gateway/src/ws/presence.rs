//! Agents' presence: who of a tenant's staff is online, shared by every
//! gateway replica, and pushed to the tenant's staff sockets when it changes.
//!
//! The store is the [`PresenceStore`] port of the sessions (in memory for
//! `jamuna serve`, Redis shared by the replicas of the distributed mode).
//! A staff socket heartbeats it when it opens, on every client
//! `ping` frame and at every server ping it answers; the entry expires after
//! [`PRESENCE_TTL`] without one, and is removed when the user's last socket
//! on this replica closes. The [`watch`] task of each replica reads the
//! online list of every tenant with staff connected to it, after each local
//! change and every [`POLL`] (to see changes made through other replicas),
//! and sends a `presence` frame to those sockets when the list differs from
//! the last one it sent.

use super::hub::Hub;
use jamuna_domain::{TenantId, UserId};
pub use jamuna_projections::sessions::PresenceStore;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How long a user stays online without a heartbeat.
pub const PRESENCE_TTL: Duration = Duration::from_secs(75);
/// How often a replica looks for changes made elsewhere.
pub const POLL: Duration = Duration::from_secs(2);

/// The `presence` frame.
pub fn frame(online: &[UserId]) -> Arc<str> {
    serde_json::json!({"type": "presence", "online": online.iter().map(|u| u.as_str()).collect::<Vec<_>>()}).to_string().into()
}

/// Pushes `presence` frames to staff sockets when the online list changes,
/// until the process stops.
pub async fn watch(hub: Arc<Hub>, presence: Arc<dyn PresenceStore>) {
    let mut sent: HashMap<TenantId, Vec<UserId>> = HashMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = hub.presence_changed.notified() => {}
        }
        let tenants = hub.staff_tenants();
        sent.retain(|t, _| tenants.contains(t));
        for tenant in tenants {
            match presence.online(&tenant).await {
                Ok(online) => {
                    if sent.get(&tenant) != Some(&online) {
                        hub.send_to_staff(&tenant, frame(&online));
                        sent.insert(tenant, online);
                    }
                }
                Err(e) => tracing::warn!(error = %e, %tenant, "cannot read who is online"),
            }
        }
    }
}
