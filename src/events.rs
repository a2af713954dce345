//! `jamuna events`: look at the log.

use crate::config::Config;
use anyhow::Result;
use jamuna_commands::log::RecordedEvent;
use std::io::Write;

#[derive(clap::Subcommand)]
pub enum EventsCommand {
    /// Print the log as JSON lines (personal data stays sealed).
    Tail {
        /// Print events after this global position.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Keep printing new events as they are appended.
        #[arg(long)]
        follow: bool,
    },
}

pub async fn run(command: EventsCommand, config: &Config) -> Result<()> {
    match command {
        EventsCommand::Tail { from, follow } => tail(config, from, follow).await,
    }
}

/// Writes one event; `false` when the reader has gone (e.g. `| head`).
fn print(out: &mut impl Write, e: &RecordedEvent) -> Result<bool> {
    let line = serde_json::to_string(e)?;
    match writeln!(out, "{line}").and_then(|_| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn tail(config: &Config, from: u64, follow: bool) -> Result<()> {
    // The log every role opens: the configured NATS stream, not a default one.
    let log = crate::ports::event_log(config).await?;
    let mut out = std::io::stdout().lock();
    if follow {
        let mut sub = log.subscribe_all(from).await?;
        while let Some(e) = sub.next().await {
            if !print(&mut out, &e?)? {
                return Ok(());
            }
        }
        return Ok(());
    }
    let mut after = from;
    loop {
        let page = log.read_all(after, 1000).await?;
        let Some(last) = page.last() else { return Ok(()) };
        after = last.position;
        for e in &page {
            if !print(&mut out, e)? {
                return Ok(());
            }
        }
    }
}
