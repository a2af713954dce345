//! # Sharing work between replicas
//!
//! Several processes of one role (projectors, AI workers) split a fixed set
//! of *units* of work between them — a projector's units are its
//! projections, an AI worker's are [`PARTITIONS`] partitions of the
//! conversations — so that each unit is worked on by one replica at a time
//! and every replica gets a fair share.
//!
//! Each replica is a *member* of its role's group in a [`Leases`] store
//! (Redis in the distributed mode). Every [`WorkShareConfig::every`] it
//! announces itself, reads who else is alive, and computes which units are
//! its own by **rendezvous hashing with bounded loads** ([`assign`]): a unit
//! belongs to the live member with the highest hash of `(unit, member)`
//! that has not got its fair share yet. Every member computes the same
//! answer from the same list, a member joining or leaving moves little more
//! than its own share, and nobody needs to be elected to hand units out. A
//! member then takes a *lease* on each unit of its own (renewed on every
//! round) and works on it only while it holds it; a unit it no longer owns
//! is first withdrawn from [`WorkShare::held`] — the consumer stops and
//! stores its checkpoint — and released one round later, so the next owner
//! starts where it stopped.
//!
//! A replica that dies stops renewing: its leases expire after
//! [`WorkShareConfig::ttl`] and its units move to the others, which continue
//! from the units' checkpoints. A lease is not a fence (see [`Leases`]): the
//! work it guards must be safe to do twice, and it is — projections write
//! conditionally on their checkpoint and the domain answers a message once —
//! so a lease only saves doing it twice in the normal case.
//!
//! We chose leases over JetStream's work-queue consumers because the units
//! must keep the log's order (a projection folds events in order; a
//! conversation's messages are answered in order, with its context) and
//! because the same code must run on the SQLite log of the embedded mode,
//! where a single process simply holds every unit ([`WorkShare::everything`]).

use crate::sessions::Leases;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How many partitions the AI workers split conversations into: the most
/// AI-worker replicas that can share the work.
pub const PARTITIONS: u32 = 16;

/// The partition (`0..PARTITIONS`) a conversation belongs to, the same in
/// every process and every build: FNV-1a of its id.
pub fn partition_of(conversation_id: &str) -> u32 {
    (fnv1a(conversation_id.as_bytes()) % u64::from(PARTITIONS)) as u32
}

/// The name of partition `p` as a unit of work.
pub fn partition_unit(p: u32) -> String {
    format!("p{p}")
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The rendezvous weight of `unit` for `member` (a 64-bit mix of both hashes).
fn weight(unit: &str, member: &str) -> u64 {
    let mut h = fnv1a(unit.as_bytes()) ^ fnv1a(member.as_bytes()).rotate_left(29);
    // splitmix64's finaliser: FNV alone is weak in its high bits.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Which member each unit belongs to among `members` (none if there are no
/// members): rendezvous hashing with bounded loads. Every `(unit, member)`
/// pair is weighed; in order of weight, a unit goes to the member of its
/// pair unless it has one already or that member has its fair share,
/// `ceil(units / members)`, already. Every member computes the same answer
/// from the same lists; a member joining or leaving moves its own share and
/// few others, and no member gets more than its fair share (plain
/// rendezvous hashing may give all three projections to one of two members).
pub fn assign<'a>(units: &'a [String], members: &'a [String]) -> BTreeMap<&'a str, &'a str> {
    let mut owners = BTreeMap::new();
    if members.is_empty() {
        return owners;
    }
    let fair = units.len().div_ceil(members.len());
    let mut pairs: Vec<(u64, &str, &str)> =
        units.iter().flat_map(|u| members.iter().map(move |m| (weight(u, m), u.as_str(), m.as_str()))).collect();
    pairs.sort_unstable_by(|a, b| b.cmp(a));
    let mut load: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, unit, member) in pairs {
        let n = load.entry(member).or_default();
        if *n < fair && !owners.contains_key(unit) {
            owners.insert(unit, member);
            *n += 1;
        }
    }
    owners
}

/// How often members meet and how long a silent member keeps its leases.
#[derive(Debug, Clone)]
pub struct WorkShareConfig {
    /// A member (and its leases) is gone this long after its last round.
    pub ttl: Duration,
    /// How often a member announces itself and takes, renews or gives up leases.
    pub every: Duration,
}

impl Default for WorkShareConfig {
    fn default() -> Self {
        Self { ttl: Duration::from_secs(10), every: Duration::from_millis(2_500) }
    }
}

impl WorkShareConfig {
    /// A TTL, with rounds four times as often.
    pub fn with_ttl(ttl: Duration) -> Self {
        Self { ttl, every: ttl / 4 }
    }
}

/// This process's share of a group's units: which it holds now, published on
/// a `watch` channel ([`WorkShare::held`]) that consumers follow.
pub struct WorkShare {
    member: String,
    held: watch::Receiver<BTreeSet<String>>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// [`WorkShare::everything`]'s sender, kept so that `held` stays open.
    _fixed: Option<watch::Sender<BTreeSet<String>>>,
}

impl WorkShare {
    /// Holds every unit, for good: one process that does all the work (the
    /// embedded mode, or a role with no shared [`Leases`] store).
    pub fn everything(units: impl IntoIterator<Item = String>) -> Self {
        let (fixed, held) = watch::channel(units.into_iter().collect());
        Self { member: "everything".into(), held, stop: watch::channel(false).0, task: Mutex::new(None), _fixed: Some(fixed) }
    }

    /// Joins `group` as `member` and starts taking its share of `units`.
    pub fn start(leases: Arc<dyn Leases>, group: &str, member: String, units: Vec<String>, config: WorkShareConfig) -> Self {
        let (publish, held) = watch::channel(BTreeSet::new());
        let (stop, stop_rx) = watch::channel(false);
        let round = Rounds {
            leases,
            group: group.to_owned(),
            member: member.clone(),
            units,
            config,
            publish,
            releasing: Vec::new(),
            last_ok: Instant::now(),
        };
        let task = tokio::spawn(round.run(stop_rx));
        Self { member, held, stop, task: Mutex::new(Some(task)), _fixed: None }
    }

    /// This member's id in its group.
    pub fn member(&self) -> &str {
        &self.member
    }

    /// The units this process holds now; changes when units move.
    pub fn held(&self) -> watch::Receiver<BTreeSet<String>> {
        self.held.clone()
    }

    /// Releases every lease and leaves the group. Stop the consumers first,
    /// so that their checkpoints are stored before another member takes over.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for WorkShare {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// The member's loop: one round every `config.every`.
struct Rounds {
    leases: Arc<dyn Leases>,
    group: String,
    member: String,
    units: Vec<String>,
    config: WorkShareConfig,
    publish: watch::Sender<BTreeSet<String>>,
    /// Units withdrawn from `held`, to release on the next round (their
    /// consumer has had a round to stop and store its checkpoint).
    releasing: Vec<String>,
    /// The last round the store answered.
    last_ok: Instant,
}

impl Rounds {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        loop {
            self.round().await;
            tokio::select! {
                _ = tokio::time::sleep(self.config.every) => {}
                _ = stop.changed() => break,
            }
        }
        let held: Vec<String> = self.publish.send_replace(BTreeSet::new()).into_iter().chain(std::mem::take(&mut self.releasing)).collect();
        for unit in held {
            if let Err(e) = self.leases.release(&self.group, &unit, &self.member).await {
                tracing::warn!(group = %self.group, unit, error = %e, "cannot release a lease; it expires by itself");
            }
        }
        if let Err(e) = self.leases.leave_group(&self.group, &self.member).await {
            tracing::warn!(group = %self.group, error = %e, "cannot leave the group; the membership expires by itself");
        }
    }

    async fn round(&mut self) {
        for unit in std::mem::take(&mut self.releasing) {
            if let Err(e) = self.leases.release(&self.group, &unit, &self.member).await {
                tracing::warn!(group = %self.group, unit, error = %e, "cannot release a lease; it expires by itself");
            }
        }
        let members = match self.leases.members(&self.group, &self.member, self.config.ttl).await {
            Ok(m) => m,
            Err(e) => return self.store_failed(e),
        };
        let owners = assign(&self.units, &members);
        let mut held = self.publish.borrow().clone();
        for unit in &self.units {
            let mine = owners.get(unit.as_str()) == Some(&self.member.as_str());
            if !mine {
                if held.remove(unit) {
                    tracing::info!(group = %self.group, unit, "handing a unit over to another member");
                    self.releasing.push(unit.clone());
                }
                continue;
            }
            match self.leases.acquire(&self.group, unit, &self.member, self.config.ttl).await {
                Ok(true) => {
                    if held.insert(unit.clone()) {
                        tracing::info!(group = %self.group, unit, "took a unit of work");
                    }
                }
                // Another member holds it still: it is handing it over, or
                // its lease has to expire first.
                Ok(false) => {
                    if held.remove(unit) {
                        tracing::warn!(group = %self.group, unit, "lost a lease to another member");
                    }
                }
                Err(e) => return self.store_failed(e),
            }
        }
        self.last_ok = Instant::now();
        self.publish_if_changed(held);
    }

    /// The store did not answer: keep working on what we hold until our
    /// leases may have expired (then others may have taken them), then stop.
    fn store_failed(&mut self, e: crate::StoreError) {
        tracing::warn!(group = %self.group, error = %e, "cannot reach the lease store");
        if self.last_ok.elapsed() + self.config.every >= self.config.ttl && !self.publish.borrow().is_empty() {
            tracing::warn!(group = %self.group, "giving up every unit: the leases may have expired");
            self.publish_if_changed(BTreeSet::new());
        }
    }

    fn publish_if_changed(&self, held: BTreeSet<String>) {
        self.publish.send_if_modified(|now| {
            if *now == held {
                return false;
            }
            *now = held;
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::MemorySessions;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("m{i}")).collect()
    }

    #[test]
    fn every_unit_has_one_owner_and_the_shares_are_fair() {
        let units: Vec<String> = (0..PARTITIONS).map(partition_unit).collect();
        for n in 1..=5 {
            let members = names(n);
            let owners = assign(&units, &members);
            assert_eq!(owners.len(), units.len(), "every unit has an owner");
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for m in owners.values() {
                *counts.entry(m).or_default() += 1;
            }
            let fair = units.len().div_ceil(n);
            assert!(counts.values().all(|&c| c <= fair), "16 units over {n} members: {counts:?}");
        }
        // Three projections over two projectors: two and one, whatever the names.
        let projections: Vec<String> = ["conversations", "users", "analytics"].map(String::from).to_vec();
        for i in 0..50 {
            let members = vec![format!("host-{i}-a"), format!("host-{i}-b")];
            let owners = assign(&projections, &members);
            let first = owners.values().filter(|m| **m == members[0]).count();
            assert!(first == 1 || first == 2, "{owners:?}");
        }
        assert!(assign(&units, &[]).is_empty());
    }

    #[test]
    fn a_member_leaving_moves_its_own_units_and_few_others() {
        let units: Vec<String> = (0..PARTITIONS).map(partition_unit).collect();
        let three = names(3);
        let two: Vec<String> = three.iter().filter(|m| *m != "m1").cloned().collect();
        let (before, after) = (assign(&units, &three), assign(&units, &two));
        let moved = units.iter().filter(|u| before[u.as_str()] != "m1" && before[u.as_str()] != after[u.as_str()]).count();
        assert!(moved <= 2, "{moved} units of the members that stayed moved: {before:?} -> {after:?}");
    }

    #[test]
    fn partitions_are_stable_and_in_range() {
        assert_eq!(partition_of("c0192"), partition_of("c0192"));
        let spread: BTreeSet<u32> = (0..1_000).map(|i| partition_of(&format!("conv-{i}"))).collect();
        assert_eq!(spread.len(), PARTITIONS as usize, "1,000 ids reach every partition");
        // Fixed values: a change here would move every conversation's partition.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    async fn held_becomes(share: &WorkShare, f: impl Fn(&BTreeSet<String>) -> bool) -> BTreeSet<String> {
        let mut rx = share.held();
        tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|h| f(h))).await.expect("in time").expect("open").clone()
    }

    #[tokio::test]
    async fn two_members_split_the_units_and_one_takes_all_when_the_other_dies() {
        let leases: Arc<dyn Leases> = Arc::new(MemorySessions::new());
        let config = WorkShareConfig::with_ttl(Duration::from_millis(400));
        let units: Vec<String> = ["users", "conversations", "analytics", "vectors"].map(String::from).to_vec();
        let a = WorkShare::start(leases.clone(), "projector", "a".into(), units.clone(), config.clone());
        let b = WorkShare::start(leases.clone(), "projector", "b".into(), units.clone(), config.clone());
        let members = vec!["a".to_string(), "b".to_string()];
        let owners = assign(&units, &members);
        let a_owns: BTreeSet<String> = units.iter().filter(|u| owners[u.as_str()] == "a").cloned().collect();
        let b_owns: BTreeSet<String> = units.iter().filter(|u| owners[u.as_str()] == "b").cloned().collect();
        assert_eq!((a_owns.len(), b_owns.len()), (2, 2), "a fair split");
        held_becomes(&a, |h| *h == a_owns).await;
        held_becomes(&b, |h| *h == b_owns).await;
        // b dies without releasing anything: a takes its units once the leases expire.
        if let Some(task) = b.task.lock().expect("lock").take() {
            task.abort();
        }
        let all: BTreeSet<String> = units.iter().cloned().collect();
        held_becomes(&a, |h| *h == all).await;
        a.shutdown().await;
        assert!(a.held().borrow().is_empty(), "nothing held after shutdown");
        assert!(leases.acquire("projector", "users", "c", config.ttl).await.expect("acquire"), "released on shutdown");
    }

    #[tokio::test]
    async fn a_member_joining_gets_its_units_handed_over() {
        let leases: Arc<dyn Leases> = Arc::new(MemorySessions::new());
        let config = WorkShareConfig::with_ttl(Duration::from_millis(400));
        let units: Vec<String> = (0..PARTITIONS).map(partition_unit).collect();
        let a = WorkShare::start(leases.clone(), "ai-worker", "a".into(), units.clone(), config.clone());
        held_becomes(&a, |h| h.len() == units.len()).await;
        let b = WorkShare::start(leases.clone(), "ai-worker", "b".into(), units.clone(), config.clone());
        let members = vec!["a".to_string(), "b".to_string()];
        let owners = assign(&units, &members);
        let b_owns: BTreeSet<String> = units.iter().filter(|u| owners[u.as_str()] == "b").cloned().collect();
        let got = held_becomes(&b, |h| *h == b_owns).await;
        let a_now = a.held().borrow().clone();
        assert!(a_now.is_disjoint(&got), "no unit is held twice: a {a_now:?}, b {got:?}");
        b.shutdown().await;
        held_becomes(&a, |h| h.len() == units.len()).await;
        a.shutdown().await;
    }
}
