//! The gateway: tools declared in a catalog file that forward to the
//! deploying team's existing HTTP API (issue 4).

pub mod catalog;
pub mod catalog_toml;
pub mod document;
pub mod forward;
pub mod openapi;
pub mod payload_log;
pub mod resources;
pub mod schema;

use crate::{config::Config, mcp::server::NameClash};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
    #[error("{0}")]
    Clash(#[from] NameClash),
}

/// The catalog named by the configuration, or an empty one.
pub fn load_configured(config: &Config) -> Result<catalog::Catalog, catalog::CatalogError> {
    match &config.catalog {
        Some(path) => catalog::load(path, &|name| std::env::var(name).ok()),
        None => Ok(catalog::Catalog::default()),
    }
}
