//! Environment layers → validated [`Environment`] → built objects, with the [`Provenance`]
//! that heads every rendered file. What `render`, `plan` and `apply` all start from.

use crate::config::{self, ConfigError, ENV_PREFIX, Environment, Layers};
use crate::objects::{self, Object};
use crate::render::{self, File, Provenance, RenderError};

/// One environment, loaded and built.
#[derive(Clone, Debug)]
pub struct Built {
    /// The validated environment.
    pub env: Environment,
    /// Its objects, in build order.
    pub objects: Vec<Object>,
    /// Where they came from (files, and the names of overrides).
    pub provenance: Provenance,
}

/// Loads and validates the environment of `layers` and builds its objects.
pub fn build(layers: &Layers) -> Result<Built, ConfigError> {
    let env = config::load(layers)?;
    let objects = objects::objects(&env, &layers.env);
    Ok(Built {
        env,
        objects,
        provenance: provenance(layers),
    })
}

impl Built {
    /// The files `render` writes.
    pub fn files(&self) -> Result<Vec<File>, RenderError> {
        render::files(&self.objects, &self.provenance)
    }
}

/// The environment files in layer order and the names (never the values) of the `INFRA_*`
/// variables and `--set` keys on top of them.
fn provenance(layers: &Layers) -> Provenance {
    let files = ["base", layers.env.as_str()]
        .iter()
        .map(|stem| {
            layers
                .dir
                .join(format!("{stem}.toml"))
                .display()
                .to_string()
        })
        .collect();
    let mut overrides: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with(ENV_PREFIX))
        .collect();
    overrides.sort();
    overrides.extend(
        layers
            .sets
            .iter()
            .map(|s| format!("--set {}", s.split('=').next().unwrap_or(s))),
    );
    Provenance {
        env: layers.env.clone(),
        files,
        overrides,
    }
}
