//! Large batches: what the replay hands a projection at a time.

use jamuna_commands::EventLog;
use jamuna_projections::ReadModels;
use jamuna_projections::event::OPEN_CHUNK;
use jamuna_projections::testing::{Stores, snapshot};

fn stores(m: &ReadModels) -> Stores {
    Stores { conversations: m.conversations.clone(), users: m.users.clone(), analytics: m.analytics.clone() }
}

/// A batch larger than [`OPEN_CHUNK`] (opened and written in overlapping
/// chunks) builds the same read models as the same events in small batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_batches_build_what_small_batches_build() {
    let f = crate::Fixture::new().await;
    let spec = jamuna_projections::bench::LogSpec { conversations: 400, days: 2, erase_one_in: 7, ..Default::default() };
    let generated = jamuna_projections::bench::generate(f.handler.clone(), &spec).await.expect("a log");
    let events = f.log().read_all(0, 1 << 20).await.expect("the log");
    assert_eq!(events.len() as u64, generated.head);
    assert!(events.len() > OPEN_CHUNK, "the log spans several chunks: {}", events.len());

    let big = ReadModels::open_sqlite(f.dir.path().join("big")).expect("models");
    for p in big.projections(&f.sealer()) {
        p.apply(&events).await.expect("one big batch");
        assert_eq!(p.checkpoint().await.expect("checkpoint"), generated.head, "the last chunk stores the batch's end");
    }
    let small = ReadModels::open_sqlite(f.dir.path().join("small")).expect("models");
    for p in small.projections(&f.sealer()) {
        for batch in events.chunks(97) {
            p.apply(batch).await.expect("a small batch");
        }
    }
    assert_eq!(snapshot(&stores(&big), &generated).await, snapshot(&stores(&small), &generated).await);
}
