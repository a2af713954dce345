//! Idle visitor identities expire.
//!
//! Anyone with a tenant's public widget key can mint a visitor identity
//! (`POST /api/v1/auth/visitor`), so without an end they pile up for good.
//! A visitor's only way back in is its refresh token, and every sign of life
//! — minting, each refresh — is recorded on its refresh-token family
//! (`issued_at`). A visitor none of whose families was issued or refreshed
//! for the idle time (`visitors.idle_secs`, 30 days by default, as long as a
//! refresh token lasts) is erased like `DELETE /api/v1/users/{id}`: the
//! `UserErased` event, then its data key (so its conversations' text reads
//! as erased and the read models scrub it), then its refresh tokens, then its
//! sockets.
//!
//! [`run`] sweeps periodically in every gateway process. A sweep is
//! idempotent — erasing an erased user finishes what a failed erase left —
//! so several replicas sweeping at once is harmless; a visitor leaves the
//! list only when its refresh families go, the last step of the erase, so a
//! sweep that fails half way is finished by the next one. Each sweep also
//! forgets refresh-token families that expired (visitors' only once erased,
//! unless visitors never expire).

use crate::AppState;
use crate::error::ApiError;
use jamuna_commands::handler::CommandContext;
use std::time::Duration;

/// How often to sweep for visitors idle for `idle`: a tenth of it, between
/// a second and an hour (so a visitor outlives its idle time by at most a
/// tenth, or an hour).
pub fn sweep_interval(idle: Option<Duration>) -> Duration {
    const HOUR: Duration = Duration::from_secs(3600);
    idle.map_or(HOUR, |i| (i / 10).clamp(Duration::from_secs(1), HOUR))
}

/// The Unix second before which a visitor's last token makes it idle at `now`.
pub fn idle_before(now: i64, idle: Duration) -> i64 {
    now.saturating_sub(i64::try_from(idle.as_secs()).unwrap_or(i64::MAX))
}

/// One sweep: erases the visitors idle for `idle` (none if `None`), then
/// forgets expired refresh-token families. Answers how many it erased.
pub async fn sweep(state: &AppState, idle: Option<Duration>) -> Result<usize, ApiError> {
    let mut erased = 0;
    if let Some(idle) = idle {
        let now = chrono::Utc::now();
        for (tenant, user) in state.refresh.idle_visitors(idle_before(now.timestamp(), idle)).await? {
            let ctx = CommandContext::new(tenant.clone(), now);
            crate::routes::users::erase_user(state, &tenant, &user, &ctx).await?;
            tracing::info!(%tenant, %user, "erased an idle visitor");
            metrics::counter!("jamuna_idle_visitors_erased_total").increment(1);
            erased += 1;
        }
    }
    state.refresh.purge_expired(idle.is_none()).await?;
    Ok(erased)
}

/// Sweeps every [`sweep_interval`] until the server shuts down. A failed
/// sweep is logged and tried again at the next one.
pub async fn run(state: AppState, idle: Option<Duration>) {
    let mut shutdown = state.shutdown.clone();
    let mut tick = tokio::time::interval(sweep_interval(idle));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        if let Err(e) = sweep(&state, idle).await {
            tracing::warn!(error = %e, "the idle-visitor sweep failed; it runs again later");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_runs_at_a_tenth_of_the_idle_time_within_a_second_and_an_hour() {
        assert_eq!(sweep_interval(Some(Duration::from_secs(30 * 24 * 3600))), Duration::from_secs(3600));
        assert_eq!(sweep_interval(Some(Duration::from_secs(600))), Duration::from_secs(60));
        assert_eq!(sweep_interval(Some(Duration::from_secs(2))), Duration::from_secs(1));
        assert_eq!(sweep_interval(None), Duration::from_secs(3600), "expired families are still forgotten");
    }

    #[test]
    fn idle_means_no_token_since_the_idle_time_ago() {
        assert_eq!(idle_before(1_000_000, Duration::from_secs(60)), 999_940);
        assert_eq!(idle_before(10, Duration::from_secs(u64::MAX)), 10 - i64::MAX, "a huge idle time saturates");
    }
}
