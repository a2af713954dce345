//! Replays: large batches, and the SQLite conversations model's bulk load
//! (text index built once at the end, or when the model is next opened).

use jamuna_projections::ReadModels;
use jamuna_projections::bench::Generated;
use jamuna_projections::conversations::sqlite::SqliteConversations;
use jamuna_projections::conversations::{ConversationQuery, ConversationStore, PROJECTION};
use jamuna_projections::event::{OPEN_CHUNK, ReadModel};
use jamuna_projections::testing::{Stores, feed, inbox_script, snapshot, tenant};

fn stores(m: &ReadModels) -> Stores {
    Stores { conversations: m.conversations.clone(), users: m.users.clone(), analytics: m.analytics.clone() }
}

const WORDS: [&str; 8] = ["refund", "card", "password", "REFUND 42", "working days", "human", "erased", "zebra"];

/// Every page of every text search, per tenant.
async fn searches(store: &dyn ConversationStore, tenants: &[&str]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for t in tenants {
        for w in WORDS {
            let mut ids = Vec::new();
            let mut cursor = None;
            loop {
                let q = ConversationQuery { text: Some(w.into()), ..ConversationQuery::inbox(tenant(t)) }.limit(100).after(cursor);
                let page = store.list(&q).await.expect("search");
                ids.extend(page.items.into_iter().map(|s| s.id.to_string()));
                cursor = page.next;
                if cursor.is_none() {
                    break;
                }
            }
            out.push(ids);
        }
    }
    out
}

fn tenant_names(g: &Generated) -> Vec<&str> {
    g.tenants.iter().map(|t| t.as_str()).collect()
}

/// A batch larger than [`OPEN_CHUNK`] (opened and written in overlapping
/// chunks) and a replay (bulk load) build the same read models, searches
/// included, as the same events in small batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_batches_and_replays_build_what_small_batches_build() {
    let f = crate::Fixture::new().await;
    let spec = jamuna_projections::bench::LogSpec { conversations: 400, days: 2, erase_one_in: 7, ..Default::default() };
    let generated = jamuna_projections::bench::generate(f.handler.clone(), &spec).await.expect("a log");
    let events = f.log().read_all(0, 1 << 20).await.expect("the log");
    assert_eq!(events.len() as u64, generated.head);
    assert!(events.len() > OPEN_CHUNK, "the log spans several chunks: {}", events.len());

    let small = ReadModels::open_sqlite(f.dir.path().join("small")).expect("models");
    for p in small.projections(&f.sealer()) {
        for batch in events.chunks(97) {
            p.apply(batch).await.expect("a small batch");
        }
    }
    let big = ReadModels::open_sqlite(f.dir.path().join("big")).expect("models");
    for p in big.projections(&f.sealer()) {
        p.apply(&events).await.expect("one big batch");
        assert_eq!(p.checkpoint().await.expect("checkpoint"), generated.head, "the last chunk stores the batch's end");
    }
    let replayed = ReadModels::open_sqlite(f.dir.path().join("replayed")).expect("models");
    for p in replayed.projections(&f.sealer()) {
        jamuna_projections::replay(f.log(), p.as_ref(), |_| {}).await.expect("replay");
    }
    let expected = snapshot(&stores(&small), &generated).await;
    assert_eq!(snapshot(&stores(&big), &generated).await, expected);
    assert_eq!(snapshot(&stores(&replayed), &generated).await, expected);
    let found = searches(small.conversations.as_ref(), &tenant_names(&generated)).await;
    assert!(found.iter().any(|ids| ids.len() > 10), "the searches find conversations");
    assert_eq!(searches(replayed.conversations.as_ref(), &tenant_names(&generated)).await, found, "a replay's text index finds the same");
    assert_eq!(searches(big.conversations.as_ref(), &tenant_names(&generated)).await, found);
}

/// A bulk load that never reached `end_rebuild` (the process died) is
/// finished when the model is next opened: nothing is missing from search,
/// and later messages are indexed as they come.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_load_cut_short_is_finished_when_the_model_is_opened() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let script = inbox_script();
    let (first, rest) = script.events.split_at(script.events.len() / 2);

    let normal = SqliteConversations::open(dir.path().join("normal.db")).expect("open");
    feed(&normal, PROJECTION, &script.events, 5).await;

    let path = dir.path().join("bulk.db");
    let bulk = SqliteConversations::open(&path).expect("open");
    bulk.begin_rebuild(PROJECTION).await.expect("begin");
    feed(&bulk, PROJECTION, first, 5).await;
    drop(bulk);
    let reopened = SqliteConversations::open(&path).expect("reopen");
    feed(&reopened, PROJECTION, rest, 5).await;

    let expected = searches(&normal, &["acme", "globex"]).await;
    assert_eq!(expected[0], ["c2"], "refund, in acme");
    assert_eq!(searches(&reopened, &["acme", "globex"]).await, expected);
}
