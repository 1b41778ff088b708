//! The entry level's one list of services: the only module that names
//! every service, so that the layers below (server, tables, runtime,
//! storage, domain) name none.

use crate::config::Config;
use crate::domain::router::RouteError;
use crate::server::Routes;
use crate::table::{DeclareError, Tables};

/// The routing table of every enabled service (a disabled service
/// registers nothing: its paths answer 404).
pub fn routes(config: &Config) -> Result<Routes, RouteError> {
    let mut r = Routes::default();
    crate::oam::register(&mut r)?;
    if config.services.hss {
        crate::hss::register(&mut r)?;
    }
    if config.services.sim {
        crate::sim::register(&mut r)?;
    }
    if config.services.stir {
        crate::stir::register(&mut r)?;
    }
    Ok(r)
}

/// Every declared table (declared whether or not its service serves
/// routes, so that stored data and references stay consistent).
pub fn tables(config: &Config) -> Result<Tables, DeclareError> {
    let mut t = Tables::default();
    crate::hss::declare(&mut t, &config.hss)?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_table_declares_unique_names_stores_and_counters() {
        let config = crate::config::Layers::new().build().unwrap();
        let t = super::tables(&config).unwrap();
        let names: Vec<_> = t.names().collect();
        assert!(
            names.contains(&"tft") && names.contains(&"subscriber"),
            "{names:?}"
        );
    }
}
