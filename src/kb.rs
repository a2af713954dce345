//! `jamuna kb import FILE --tenant T`: a Markdown article, a CSV of
//! question,answer pairs, or a JSON list of them, into a tenant's knowledge
//! base — all of it in one append, or nothing (errors name their line).

use crate::config::Config;
use anyhow::{Context, Result, bail};
use jamuna_commands::handler::CommandContext;
use jamuna_domain::knowledge_base::import::{self, Format};
use jamuna_domain::knowledge_base::{KnowledgeBase, KnowledgeBaseCommand};
use jamuna_domain::{StreamId, TenantId};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum KbCommand {
    /// Import articles from a file (.md, .csv with question,answer, or .json).
    Import {
        file: PathBuf,
        #[arg(long)]
        tenant: String,
    },
}

pub async fn run(command: KbCommand, config: &Config) -> Result<()> {
    match command {
        KbCommand::Import { file, tenant } => import_file(config, &file, &tenant).await,
    }
}

async fn import_file(config: &Config, file: &std::path::Path, tenant: &str) -> Result<()> {
    let tenant = TenantId::parse(tenant).context("--tenant")?;
    let name = file.display().to_string();
    let Some(format) = Format::detect(&name) else { bail!("{name}: use a .md, .csv or .json file") };
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {name}"))?;
    let drafts = import::parse(format, &text, file.file_name().and_then(|n| n.to_str())).with_context(|| format!("{name} was not imported"))?;
    let total = drafts.len();
    let progress = indicatif::ProgressBar::new_spinner().with_message(format!("importing {total} articles from {name}"));
    progress.enable_steady_tick(std::time::Duration::from_millis(100));
    let handler = crate::roles::write_side(config).await?.commands;
    let stream = StreamId::knowledge_base(&tenant);
    let ctx = CommandContext::new(tenant.clone(), chrono::Utc::now());
    let before = handler.load::<KnowledgeBase>(&stream).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let existing = drafts.iter().filter(|d| before.contains(&d.id)).count();
    let done = handler.execute::<KnowledgeBase>(&stream, &KnowledgeBaseCommand::Import { tenant, articles: drafts }, &ctx).await.map_err(|e| anyhow::anyhow!("{name} was not imported: {e}"))?;
    let changed = done.events.len();
    let added = total - existing;
    progress.finish_and_clear();
    println!("{name}: {added} added, {} updated, {} unchanged", changed.saturating_sub(added), total - changed);
    Ok(())
}
