//! One loop for every consumer of the log: subscribe from a position, take
//! what is ready in batches, back off and resubscribe on errors, stop when
//! asked, and let the consumer react to changes outside the log.
//!
//! Two consumers follow the log continuously: the [`Projector`]'s tasks
//! (one per read model) and the AI worker. They differ in what they do with
//! an event, not in how they follow the log, so [`follow_log`] does the
//! following and a [`LogConsumer`] says the rest:
//!
//! * **where it stands** — [`LogConsumer::position`]: the loop subscribes
//!   after it, and hands over only events past it;
//! * **what an event does** — [`LogConsumer::handle`] receives up to
//!   `batch_size` events that have already arrived (the projector
//!   writes them in one transaction; the worker takes one at a time) and
//!   answers with a [`Next`]: go on, retry after a back-off, or halt;
//! * **what interrupts it** — [`LogConsumer::interrupted`] resolves when
//!   something outside the log needs attention (a projection handed to
//!   another replica, the worker's partitions changed); the loop then calls
//!   [`LogConsumer::on_interrupt`], between two batches, never during one;
//! * **what it reports** — [`LogConsumer::subscribed`] and
//!   [`LogConsumer::retrying`] (logs, metrics, a published state);
//! * **whether it may do without an event** — [`LogConsumer::undecodable`]:
//!   a stored event whose envelope does not decode ([`LogError::Corrupt`])
//!   is met again at every resubscription, so retrying it is retrying for
//!   ever. A projection halts there (it must not skip); the AI worker logs,
//!   counts and skips it; by default it is a failure like the others.
//!
//! A failure to subscribe, a subscription that breaks or ends, and a
//! [`Next::Retry`] all lead to the same place: the consumer is told
//! ([`Failure`]), the loop waits ([`Backoff`], per the consumer's
//! [`RetryPolicy`]) and subscribes again from the consumer's position.
//!
//! [`Projector`]: super::Projector

use futures::FutureExt;
use jamuna_commands::{EventLog, LogError, RecordedEvent};
use std::time::Duration;
use tokio::sync::watch;

/// How long to wait before subscribing again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The pause after a failure. Each further failure in a row doubles it,
    /// up to `max`; a handled batch brings it back to `initial`.
    pub initial: Duration,
    pub max: Duration,
    /// The pause after a subscription that was running broke or ended, when
    /// that should not count as a failure in a row (`None`: the back-off).
    pub after_break: Option<Duration>,
}

impl RetryPolicy {
    /// The same pause after every failure.
    pub fn fixed(pause: Duration) -> Self {
        Self { initial: pause, max: pause, after_break: None }
    }
}

/// A [`RetryPolicy`] in use: the pause the next failure waits.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: RetryPolicy,
    next: Duration,
}

impl Backoff {
    pub fn new(policy: RetryPolicy) -> Self {
        Self { policy, next: policy.initial }
    }

    /// Waits out the back-off (and doubles it for the next failure); true
    /// if asked to stop meanwhile.
    pub async fn pause(&mut self, stop: &mut watch::Receiver<bool>) -> bool {
        let d = self.next;
        self.next = (self.next * 2).min(self.policy.max);
        sleep_unless_stopped(d, stop).await
    }

    /// Back to the first pause: the consumer is making progress.
    pub fn reset(&mut self) {
        self.next = self.policy.initial;
    }

    /// Waits after `failure`: the policy's pause after a break, if it has
    /// one and this is one, or else the back-off. True if asked to stop.
    async fn pause_after(&mut self, failure: &Failure, stop: &mut watch::Receiver<bool>) -> bool {
        match (failure, self.policy.after_break) {
            (Failure::Broken(_) | Failure::Ended, Some(d)) => sleep_unless_stopped(d, stop).await,
            _ => self.pause(stop).await,
        }
    }
}

/// Sleeps for `d`; true if asked to stop meanwhile.
async fn sleep_unless_stopped(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

/// What a consumer asks of [`follow_log`] after a batch or an interrupt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next<H> {
    /// Go on following the log.
    Continue,
    /// A transient failure: back off, then subscribe again from the
    /// consumer's position.
    Retry(String),
    /// Stop following: [`follow_log`] returns [`Followed::Halted`].
    Halt(H),
}

/// Why [`follow_log`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed<H> {
    /// The stop signal turned `true`.
    Stopped,
    /// The consumer said [`Next::Halt`].
    Halted(H),
}

/// Why [`follow_log`] is about to back off and subscribe again.
#[derive(Debug)]
pub enum Failure {
    /// The log refused the subscription.
    Subscribe(LogError),
    /// The subscription delivered an error.
    Broken(LogError),
    /// The subscription ended.
    Ended,
    /// The consumer said [`Next::Retry`].
    Handle(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Subscribe(e) | Failure::Broken(e) => e.fmt(f),
            Failure::Ended => f.write_str("the subscription ended"),
            Failure::Handle(e) => f.write_str(e),
        }
    }
}

/// Something that follows the log with [`follow_log`].
#[async_trait::async_trait]
pub trait LogConsumer: Send {
    /// What makes the consumer halt the loop (see [`Next::Halt`]).
    type Halt: Send;

    /// The position of the last event handled: the loop subscribes after
    /// it and hands over only later events.
    fn position(&self) -> u64;

    /// Handles events that follow [`LogConsumer::position`], in log order
    /// (at least one), and moves the position past those it handled.
    async fn handle(&mut self, batch: &[RecordedEvent]) -> Next<Self::Halt>;

    /// Resolves when something outside the log needs the consumer's
    /// attention; never, by default. It must be cancel-safe: the loop
    /// drops it whenever an event arrives first, and asks again.
    async fn interrupted(&mut self) {
        std::future::pending::<()>().await
    }

    /// Deals with what [`LogConsumer::interrupted`] announced; the
    /// subscription is kept on [`Next::Continue`].
    async fn on_interrupt(&mut self) -> Next<Self::Halt> {
        Next::Continue
    }

    /// The event at `position`, the next after [`LogConsumer::position`],
    /// does not decode (`error` is a [`LogError::Corrupt`]); everything
    /// before it has been handed over. To do without it, move the position
    /// to `position` and answer [`Next::Continue`]: the loop subscribes
    /// again after it at once. [`Next::Retry`] (the default) makes it a
    /// failure like a broken subscription: it will be met again.
    async fn undecodable(&mut self, _position: u64, error: &LogError) -> Next<Self::Halt> {
        Next::Retry(error.to_string())
    }

    /// A subscription is open, from [`LogConsumer::position`].
    fn subscribed(&mut self) {}

    /// The loop is about to back off after `failure`, then subscribe again.
    fn retrying(&mut self, _failure: &Failure) {}
}

/// Follows `log` for `consumer` until `stop` turns `true` or the consumer
/// halts: subscribes after [`LogConsumer::position`], hands over what has
/// arrived in batches of up to `batch_size` events, deals with interrupts between them, and after a
/// failure waits out `backoff` and subscribes again.
///
/// `backoff` is the caller's, so that failures before the loop (reading a
/// checkpoint) count towards it; a handled batch resets it.
pub async fn follow_log<C: LogConsumer>(
    log: &dyn EventLog,
    stop: &mut watch::Receiver<bool>,
    batch_size: usize,
    backoff: &mut Backoff,
    consumer: &mut C,
) -> Followed<C::Halt> {
    loop {
        let failure = match follow_once(log, stop, batch_size, backoff, consumer).await {
            Ok(ended) => return ended,
            Err(failure) => failure,
        };
        consumer.retrying(&failure);
        if backoff.pause_after(&failure, stop).await {
            return Followed::Stopped;
        }
    }
}

/// One subscription: `Ok` when the loop is over, `Err` when it should back
/// off and subscribe again.
async fn follow_once<C: LogConsumer>(
    log: &dyn EventLog,
    stop: &mut watch::Receiver<bool>,
    batch_size: usize,
    backoff: &mut Backoff,
    consumer: &mut C,
) -> Result<Followed<C::Halt>, Failure> {
    if *stop.borrow() {
        return Ok(Followed::Stopped);
    }
    // An interrupt that came while there was no subscription is dealt with
    // before subscribing.
    if consumer.interrupted().now_or_never().is_some()
        && let Some(ended) = proceed(consumer.on_interrupt().await)?
    {
        return Ok(ended);
    }
    let mut sub = log.subscribe_all(consumer.position()).await.map_err(Failure::Subscribe)?;
    consumer.subscribed();
    loop {
        let first = tokio::select! {
            biased;
            _ = stop.changed() => return Ok(Followed::Stopped),
            () = consumer.interrupted() => {
                if let Some(ended) = proceed(consumer.on_interrupt().await)? {
                    return Ok(ended);
                }
                continue;
            }
            next = sub.next() => next,
        };
        let first = match first {
            Some(Ok(e)) => e,
            Some(Err(e)) => {
                if let Some(ended) = broke(consumer, e).await? {
                    return Ok(ended);
                }
                sub = log.subscribe_all(consumer.position()).await.map_err(Failure::Subscribe)?;
                consumer.subscribed();
                continue;
            }
            None => return Err(Failure::Ended),
        };
        // Take whatever else has already arrived, up to the batch size.
        let mut batch = vec![first];
        let mut broken = None;
        while batch.len() < batch_size {
            match sub.next().now_or_never() {
                Some(Some(Ok(e))) => batch.push(e),
                Some(Some(Err(e))) => {
                    broken = Some(Some(e));
                    break;
                }
                Some(None) => {
                    broken = Some(None);
                    break;
                }
                None => break,
            }
        }
        let position = consumer.position();
        batch.retain(|e| e.position > position);
        if !batch.is_empty() {
            if let Some(ended) = proceed(consumer.handle(&batch).await)? {
                return Ok(ended);
            }
            backoff.reset();
        }
        match broken {
            None => {}
            Some(None) => return Err(Failure::Ended),
            Some(Some(e)) => {
                if let Some(ended) = broke(consumer, e).await? {
                    return Ok(ended);
                }
                sub = log.subscribe_all(consumer.position()).await.map_err(Failure::Subscribe)?;
                consumer.subscribed();
            }
        }
    }
}

/// An error from the subscription: one naming the event right after the
/// consumer's position as undecodable goes to [`LogConsumer::undecodable`];
/// `Ok(None)` when the consumer moved past it (subscribe again after it).
/// Anything else is a broken subscription.
async fn broke<C: LogConsumer>(consumer: &mut C, e: LogError) -> Result<Option<Followed<C::Halt>>, Failure> {
    let before = consumer.position();
    let LogError::Corrupt { position, .. } = e else { return Err(Failure::Broken(e)) };
    if position <= before {
        return Err(Failure::Broken(e));
    }
    match consumer.undecodable(position, &e).await {
        Next::Halt(h) => Ok(Some(Followed::Halted(h))),
        Next::Continue if consumer.position() > before => Ok(None),
        Next::Continue | Next::Retry(_) => Err(Failure::Broken(e)),
    }
}

/// What a consumer's answer means for the loop: go on (`Ok(None)`), return
/// (`Ok(Some)`), or retry (`Err`).
fn proceed<H>(next: Next<H>) -> Result<Option<Followed<H>>, Failure> {
    match next {
        Next::Continue => Ok(None),
        Next::Retry(error) => Err(Failure::Handle(error)),
        Next::Halt(h) => Ok(Some(Followed::Halted(h))),
    }
}
