//! An acknowledged append survives `kill -9` of the process that made it.

use jamuna_commands::EventLog;
use jamuna_commands::log::sqlite::SqliteLog;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn writer_binary() -> std::path::PathBuf {
    // target/<profile>/deps/it-<hash> → target/<profile>/examples/durability_writer
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>");
    profile_dir.join("examples").join("durability_writer")
}

#[tokio::test]
async fn acknowledged_appends_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("events.db");
    let bin = writer_binary();
    assert!(bin.exists(), "{} is missing: cargo test builds examples", bin.display());
    let mut child = Command::new(&bin).arg(&path).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start the writer");
    let stdout = child.stdout.take().expect("stdout");
    let mut acked = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("a line");
        let mut parts = line.split_whitespace();
        assert_eq!(parts.next(), Some("acked"));
        let position: u64 = parts.next().and_then(|p| p.parse().ok()).expect("a position");
        let id: uuid::Uuid = parts.next().and_then(|p| p.parse().ok()).expect("an event id");
        acked.push((position, id));
        if acked.len() >= 2_000 {
            // SIGKILL, in the middle of its appends: no chance to clean up.
            child.kill().expect("kill -9");
            break;
        }
    }
    child.wait().expect("reap");

    let log = SqliteLog::open(&path).await.expect("reopen after the kill");
    let head = log.head().await.expect("head");
    let stored = log.read_all(0, head as usize).await.expect("read");
    assert_eq!(stored.len() as u64, head, "positions are gap-free after recovery");
    let by_position: std::collections::HashMap<u64, uuid::Uuid> = stored.iter().map(|e| (e.position, e.meta.event_id)).collect();
    for (position, id) in &acked {
        assert_eq!(by_position.get(position), Some(id), "acknowledged event {id} at {position} was lost");
    }
}
