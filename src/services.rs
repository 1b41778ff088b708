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
    if config.services.aaa {
        crate::aaa::register(&mut r)?;
    }
    Ok(r)
}

/// The Diameter requests of every enabled service.
pub fn diameter_apps(config: &Config) -> crate::diameter::Applications {
    let mut apps = crate::diameter::Applications::default();
    if config.services.hss {
        crate::hss::s6a::register(&mut apps);
        crate::hss::s13::register(&mut apps);
        crate::hss::cx::register(&mut apps);
        crate::hss::swx::register(&mut apps);
    }
    apps
}

/// Every declared table (declared whether or not its service serves
/// routes, so that stored data and references stay consistent).
pub fn tables(config: &Config) -> Result<Tables, DeclareError> {
    let mut t = Tables::default();
    crate::hss::declare(&mut t, &config.hss)?;
    crate::aaa::declare(&mut t)?;
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

    #[test]
    fn every_registered_route_is_in_the_document() {
        let mut config = crate::config::Layers::new().build().unwrap();
        config.services.hss = true;
        config.services.stir = true;
        config.services.sim = true;
        config.services.aaa = true;
        let routes = super::routes(&config).unwrap();
        let doc = serde_json::to_value(crate::server::openapi::document(&routes)).unwrap();
        let mut n = 0;
        for r in routes.each() {
            let m = r.method.as_str().to_ascii_lowercase();
            let op = &doc["paths"][&r.pattern][&m];
            assert!(
                op.is_object(),
                "{} {} missing",
                r.method.as_str(),
                r.pattern
            );
            for p in &r.params {
                let named = op["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|x| x["name"] == *p && x["in"] == "path"));
                assert!(named, "{} {}: parameter {p}", r.method.as_str(), r.pattern);
            }
            n += 1;
        }
        assert!(n > 100, "{n} routes");
        // The tables' schemas are their row types'.
        let apn = &doc["components"]["schemas"]["Apn"]["properties"];
        assert!(
            apn["apn_ambr_dl"].is_object() && apn["qci"].is_object(),
            "{apn}"
        );
        let put = &doc["paths"]["/apn"]["put"]["requestBody"]["content"]["application/json"];
        assert_eq!(put["schema"]["$ref"], "#/components/schemas/Apn");
        let list = &doc["paths"]["/apn/list"]["get"]["responses"]["200"]["content"];
        assert_eq!(
            list["application/json"]["schema"]["items"]["$ref"],
            "#/components/schemas/Apn"
        );
    }
}
