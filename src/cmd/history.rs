//! `infra history`: the revisions of an environment recorded in the cluster, newest first.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use super::EnvArgs;
use super::cluster::{ClusterArgs, runtime};
use super::plan::Output;
use crate::apply::revision::{History, Revision};

/// Arguments of `infra history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    env: EnvArgs,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// `text`: a table; `json`: every revision's header and status (no objects).
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

impl HistoryArgs {
    pub(super) fn run(self, environments: &Path) -> anyhow::Result<ExitCode> {
        let place = self.env.locate(environments)?;
        let history = runtime()?.block_on(async {
            let (client, _) = self.cluster.client().await?;
            anyhow::Ok(History::read(&client, &place.namespace, &place.parent).await?)
        })?;
        let newest_first: Vec<&Revision> = history.revisions.iter().rev().collect();
        if self.output == Output::Json {
            let json: Vec<serde_json::Value> = newest_first
                .iter()
                .map(|r| {
                    let mut v = serde_json::to_value(&r.header).unwrap_or_default();
                    v["status"] = serde_json::json!(r.status);
                    v
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&json)?);
        } else if newest_first.is_empty() {
            println!(
                "No revisions of `{}` in namespace {} (nothing applied yet, or applied before infra recorded revisions).",
                self.env.env, place.namespace
            );
        } else {
            print!("{}", table(&newest_first));
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The revisions as aligned columns: REVISION, UPDATED, STATUS, BY, COMMIT, SUMMARY.
pub fn table(revisions: &[&Revision]) -> String {
    let rows: Vec<[String; 6]> = revisions
        .iter()
        .map(|r| {
            [
                r.header.number.to_string(),
                r.header.time.clone(),
                r.status.to_string(),
                r.header.who.clone(),
                r.header.provenance.commit_short(),
                r.header.summary.clone(),
            ]
        })
        .collect();
    let head = ["REVISION", "UPDATED", "STATUS", "BY", "COMMIT", "SUMMARY"].map(String::from);
    let mut widths = head.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&head).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
