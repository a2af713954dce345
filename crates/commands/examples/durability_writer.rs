//! Appends to a SQLite event log until killed, printing `acked <position>
//! <event id>` after each acknowledged append. The kill -9 durability test
//! runs it as a child process; it is also a handy way to watch a log grow
//! (`jamuna events tail --follow`).
//!
//! Usage: durability_writer PATH/TO/events.db

use jamuna_commands::log::sqlite::SqliteLog;
use jamuna_commands::testing::{event, stream};
use jamuna_commands::{EventLog, ExpectedVersion};
use std::io::Write;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: durability_writer PATH/TO/events.db")?;
    let log = Arc::new(SqliteLog::open(&path).await?);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(1024);
    // Several concurrent writers, so acknowledged appends come from group commits.
    for w in 0..8u64 {
        let (log, tx) = (log.clone(), tx.clone());
        tokio::spawn(async move {
            for n in 0.. {
                let e = event(w * 1_000_000 + n, "durable");
                let id = e.meta.event_id;
                match log.append(&stream(&format!("w{w}")), ExpectedVersion::Any, vec![e]).await {
                    Ok(a) => {
                        if tx.send(format!("acked {} {id}", a.first_position)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        eprintln!("append failed: {e}");
                        return;
                    }
                }
            }
        });
    }
    drop(tx);
    let mut out = std::io::stdout().lock();
    while let Some(line) = rx.recv().await {
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    Ok(())
}
