//! Which cluster `apply` and `plan --live` talk to: `--kubeconfig` and `--context`, else what
//! kube-rs infers (KUBECONFIG, ~/.kube/config, the in-cluster service account). The namespace
//! always comes from the environment, never from the kubeconfig.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// The cluster to talk to.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Kubeconfig file to use instead of KUBECONFIG or ~/.kube/config.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use instead of its current context.
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
}

impl ClusterArgs {
    /// A client for the chosen cluster, and its URL (for the report).
    pub async fn client(&self) -> anyhow::Result<(kube::Client, String)> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        let config = match (&self.kubeconfig, &self.context) {
            (Some(path), _) => {
                let file = Kubeconfig::read_from(path)
                    .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
                kube::Config::from_custom_kubeconfig(file, &options)
                    .await
                    .with_context(|| format!("cannot use kubeconfig {}", path.display()))?
            }
            (None, Some(context)) => kube::Config::from_kubeconfig(&options)
                .await
                .with_context(|| format!("cannot use kubeconfig context `{context}`"))?,
            (None, None) => kube::Config::infer().await.context(
                "cannot find a Kubernetes configuration (KUBECONFIG, ~/.kube/config or the in-cluster service account)",
            )?,
        };
        let url = config.cluster_url.to_string();
        let client = kube::Client::try_from(config).context("cannot create a Kubernetes client")?;
        Ok((client, url))
    }
}

/// A single-threaded runtime: a handful of requests at a time; `main` stays synchronous.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// `infra plan --live`: the plan against the cluster, what it was compared with (`<cluster
/// URL>, namespace <ns>`), and the live revision.
pub fn live_plan(
    cluster: &ClusterArgs,
    built: &crate::pipeline::Built,
    env_name: &str,
) -> anyhow::Result<(crate::apply::live::Live, String)> {
    runtime()?.block_on(async {
        let (client, url) = cluster.client().await?;
        let target = crate::apply::target::Target::of_built(built, env_name);
        let live = crate::apply::live::plan(&client, &target).await?;
        let mut name = format!("{url}, namespace {}", built.env.namespace.as_str());
        for owner in &live.owners {
            name.push_str(&format!(", managed by {owner}"));
        }
        Ok((live, name))
    })
}
