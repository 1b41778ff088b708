//! The HSS service: PyHSS's provisioning API and authentication vectors.
//! Spec: PyHSS's API (seed), shapes as PyHSS 2.0.0 answers them, without
//! its defects (see docs/api/hss.md).

pub mod answering;
pub mod apn;
pub mod auc;
pub mod charging_rule;
pub mod cx;
pub mod cx_push;
pub mod eir;
pub mod eir_history;
pub mod emergency_subscriber;
pub mod generate;
pub mod geored;
pub mod geored_out;
pub mod ifc_template;
pub mod import;
pub mod ims_subscriber;
pub mod lookup;
pub mod oplog;
pub mod reconcile;
pub mod roaming;
pub mod routing;
pub mod s13;
pub mod s6a;
pub mod serving;
pub mod serving_apn;
pub mod subscriber;
pub mod subscriber_attributes;
pub mod swx;
pub mod tft;
pub mod vectors;

use crate::domain::api_error::Api;
use crate::domain::http1::Method;
use crate::domain::router::RouteError;
use crate::server::crud;
use crate::server::{Handler, Routes};
use crate::table::{DeclareError, Tables};

pub use crate::server::crud::{id_param, page, provisioning as check_provisioning, Deleted};

/// The storage tables of the HSS.
pub mod tables {
    use crate::storage::TableId;
    /// Per-shard id counters (the table layer's).
    pub const META: TableId = crate::table::ids::META;
    pub const META_AUC_NEXT: &[u8] = b"auc_next";
    /// auc_id (u64 BE) → AuC record.
    pub const AUC: TableId = 2;
    /// IMSI → auc_id.
    pub const IMSI_INDEX: TableId = 3;
    /// ICCID → auc_id.
    pub const ICCID_INDEX: TableId = 4;
    /// subscriber_id (u64 BE) → subscriber (JSON).
    pub const SUBSCRIBER: TableId = 5;
    /// IMSI → subscriber_id.
    pub const SUB_IMSI_INDEX: TableId = 6;
    /// MSISDN → subscriber_id.
    pub const MSISDN_INDEX: TableId = 7;
    pub const META_SUB_NEXT: &[u8] = b"subscriber_next";
    // 8 and 9 held routing entries in an earlier layout; not reused.
    /// subscriber_routing_id (u64 BE) → routing entry (JSON).
    pub const ROUTING: TableId = 10;
    /// "subscriber_id/apn_id" → subscriber_routing_id.
    pub const ROUTING_KEY_INDEX: TableId = 11;
    pub const META_ROUTING_NEXT: &[u8] = b"routing_next";
    /// Operation log entry id (u64 BE) → entry (JSON), in every shard
    /// store and (`CATALOG_OPLOG`) in the catalog; written by a hook, not
    /// a declared table.
    pub const OPLOG: TableId = 12;
    pub const META_OPLOG_NEXT: &[u8] = b"oplog_next";
    /// ims_subscriber_id (u64 BE) → IMS subscriber (JSON).
    pub const IMS_SUBSCRIBER: TableId = 13;
    /// MSISDN → ims_subscriber_id.
    pub const IMS_MSISDN_INDEX: TableId = 14;
    /// IMSI → ims_subscriber_id.
    pub const IMS_IMSI_INDEX: TableId = 15;
    pub const META_IMS_SUBSCRIBER_NEXT: &[u8] = b"ims_subscriber_next";
    /// subscriber_attributes_id (u64 BE) → attribute (JSON), on the
    /// subscriber's shard.
    pub const SUB_ATTRIBUTES: TableId = 16;
    /// subscriber_id ‖ subscriber_attributes_id → (), beside the rows.
    pub const SUB_ATTRIBUTES_BY_SUBSCRIBER: TableId = 17;
    pub const META_SUB_ATTRIBUTES_NEXT: &[u8] = b"subscriber_attributes_next";
    /// emergency_subscriber_id (u64 BE) → emergency subscriber (JSON).
    pub const EMERGENCY_SUBSCRIBER: TableId = 18;
    pub const META_EMERGENCY_SUBSCRIBER_NEXT: &[u8] = b"emergency_subscriber_next";
    /// "served" ‖ subscriber_id → () for subscribers with a serving MME.
    pub const SUB_SERVED_INDEX: TableId = 19;
    /// "served" ‖ ims_subscriber_id → () for IMS subscribers with an S-CSCF.
    pub const IMS_SERVED_INDEX: TableId = 20;
    /// imsi_imei_history_id (u64 BE) → EIR history entry (JSON), on the
    /// IMSI's shard.
    pub const EIR_HISTORY: TableId = 21;
    /// "imsi,imei" → imsi_imei_history_id.
    pub const EIR_HISTORY_PAIR_INDEX: TableId = 22;
    /// IMSI ‖ id → () and IMEI ‖ id → (), beside the rows.
    pub const EIR_HISTORY_IMSI_INDEX: TableId = 23;
    pub const EIR_HISTORY_IMEI_INDEX: TableId = 24;
    pub const META_EIR_HISTORY_NEXT: &[u8] = b"eir_history_next";
    /// serving_apn_id (u64 BE) → PCRF session (JSON), on the subscriber's
    /// shard.
    pub const SERVING_APN: TableId = 25;
    /// UE address → serving_apn_id.
    pub const SERVING_APN_IP_INDEX: TableId = 26;
    /// subscriber_id ‖ serving_apn_id → (), beside the rows.
    pub const SERVING_APN_BY_SUBSCRIBER: TableId = 27;
    pub const META_SERVING_APN_NEXT: &[u8] = b"serving_apn_next";

    /// Catalog tables.
    pub const CATALOG_META: TableId = crate::table::ids::META;
    pub const META_APN_NEXT: &[u8] = b"apn_next";
    /// apn_id (u64 BE) → APN (JSON).
    pub const APN: TableId = 2;
    pub const META_TFT_NEXT: &[u8] = b"tft_next";
    /// tft_id (u64 BE) → TFT (JSON).
    pub const TFT: TableId = 3;
    pub const CATALOG_OPLOG: TableId = 4;
    /// tft_group_id ‖ tft_id → (): the TFTs of a group.
    pub const TFT_GROUP_INDEX: TableId = 5;
    pub const META_CHARGING_RULE_NEXT: &[u8] = b"charging_rule_next";
    /// charging_rule_id (u64 BE) → charging rule (JSON).
    pub const CHARGING_RULE: TableId = 6;
    pub const META_IFC_TEMPLATE_NEXT: &[u8] = b"ifc_template_next";
    /// ifc_template_id (u64 BE) → iFC template (JSON).
    pub const IFC_TEMPLATE: TableId = 7;
    /// name → ifc_template_id.
    pub const IFC_NAME_INDEX: TableId = 8;
    pub const META_ROAMING_NETWORK_NEXT: &[u8] = b"roaming_network_next";
    /// roaming_network_id (u64 BE) → roaming network (JSON).
    pub const ROAMING_NETWORK: TableId = 9;
    pub const META_ROAMING_RULE_NEXT: &[u8] = b"roaming_rule_next";
    /// roaming_rule_id (u64 BE) → roaming rule (JSON).
    pub const ROAMING_RULE: TableId = 10;
    pub const META_EIR_NEXT: &[u8] = b"eir_next";
    /// eir_id (u64 BE) → EIR rule (JSON).
    pub const EIR: TableId = 11;
    /// IMEI ‖ eir_id → () for exact rules.
    pub const EIR_IMEI_INDEX: TableId = 12;
}

/// What the HSS loads at start for every core: the TAC database, when
/// one is configured (the error names the key).
pub fn start(
    config: &crate::config::HssConfig,
    extensions: &mut crate::server::Extensions,
) -> Result<(), (&'static str, String)> {
    geored_out::configure(config);
    if !config.tac_database_csv.as_os_str().is_empty() {
        let db = eir::TacDatabase::load(&config.tac_database_csv)
            .map_err(|e| ("hss.tac_database_csv", e))?;
        tracing::info!(entries = db.len(), "TAC database loaded");
        extensions.insert(std::sync::Arc::new(db));
    }
    Ok(())
}

/// What the HSS keeps on each core once the Diameter listener serves
/// there: the context its profile pushes (Cx PPR) are sent with.
pub fn on_core(ctx: &crate::server::Ctx) {
    cx_push::on_core(ctx);
}

/// Declares every table of the HSS, and its operation log.
pub fn declare(t: &mut Tables, config: &crate::config::HssConfig) -> Result<(), DeclareError> {
    t.hook(std::sync::Arc::new(oplog::OpLog::new(
        config.operation_log_keep,
    )));
    t.hook(std::sync::Arc::new(geored_out::GeoRedHook));
    t.hook(std::sync::Arc::new(cx_push::PprHook));
    t.declare::<auc::Auc>()?
        .declare::<subscriber::Subscriber>()?
        .declare::<routing::Routing>()?
        .declare::<apn::Apn>()?
        .declare::<tft::Tft>()?
        .declare::<charging_rule::ChargingRule>()?
        .declare::<ifc_template::IfcTemplate>()?
        .declare::<ims_subscriber::ImsSubscriber>()?
        .declare::<subscriber_attributes::SubscriberAttribute>()?
        .declare::<roaming::RoamingNetwork>()?
        .declare::<roaming::RoamingRule>()?
        .declare::<eir::EirRule>()?
        .declare::<eir_history::EirHistory>()?
        .declare::<serving_apn::ServingApn>()?
        .declare::<emergency_subscriber::EmergencySubscriber>()?;
    Ok(())
}

pub fn register(r: &mut Routes) -> Result<(), RouteError> {
    use Handler::Async;
    let p = Api::Pyhss;
    crud::register_face::<auc::AucApi>(r)?;
    r.add(
        Method::Get,
        "/auc/imsi/{imsi}",
        p,
        Async(lookup::get_by_imsi),
    )?;
    crud::register_lookup::<auc::ByIccid>(r, "/auc/iccid/{iccid}")?;
    let vector_count = "/auc/aka/vector_count/{count}/imsi/{imsi}";
    r.add(Method::Get, vector_count, p, Async(vectors::vector_count))?;
    let eap_aka = "/auc/eap_aka/plmn/{plmn}/imsi/{imsi}";
    r.add(Method::Get, eap_aka, p, Async(vectors::eap_aka))?;
    let five_g = "/auc/5g_aka/plmn/{plmn}/imsi/{imsi}";
    r.add(Method::Get, five_g, p, Async(vectors::five_g))?;
    let resync = "/auc/aka/resync/imsi/{imsi}/auts/{auts}/rand/{rand}";
    r.add(Method::Get, resync, p, Async(vectors::resync))?;
    crud::register::<subscriber::Subscriber>(r)?;
    let by_imsi = "/subscriber/imsi/{imsi}";
    r.add(
        Method::Get,
        by_imsi,
        p,
        Async(lookup::subscriber_by::<crud::ByImsi<subscriber::Subscriber>>),
    )?;
    let by_msisdn = "/subscriber/msisdn/{msisdn}";
    r.add(
        Method::Get,
        by_msisdn,
        p,
        Async(lookup::subscriber_by::<crud::ByMsisdn<subscriber::Subscriber>>),
    )?;
    type Routing = crud::Plain<routing::Routing>;
    r.add(
        Method::Put,
        "/subscriber/routing",
        p,
        Async(crud::put::<Routing>),
    )?;
    let pair = "/subscriber/routing/{subscriber_id}/{apn_id}";
    r.add(Method::Get, pair, p, Async(routing::get))?;
    r.add(Method::Delete, pair, p, Async(routing::delete))?;
    let by_id = "/subscriber/routing/{subscriber_routing_id}";
    r.add(Method::Patch, by_id, p, Async(crud::patch::<Routing>))?;
    crud::document_routes::<routing::Routing>(
        r,
        &[
            (Method::Put, "/subscriber/routing"),
            (Method::Get, pair),
            (Method::Patch, by_id),
        ],
    );
    crud::register::<apn::Apn>(r)?;
    crud::register::<tft::Tft>(r)?;
    crud::register::<charging_rule::ChargingRule>(r)?;
    // Gx RAR, CLR and P-CSCF restoration: each needs a Diameter peer.
    for push in [
        "/pcrf",
        "/pcrf/clr_subscriber",
        "/pcrf/pcscf_restoration_subscriber",
        "/pcrf/pcscf_restoration",
    ] {
        r.add(Method::Put, push, p, Async(serving::needs_diameter))?;
    }
    let pcrf_rule = "/pcrf/{charging_rule_id}";
    r.add(Method::Get, pcrf_rule, p, Async(charging_rule::with_tfts))?;
    let served = "/pcrf/pcrf_subscriber/list";
    r.add(Method::Get, served, p, Async(serving_apn::list_served))?;
    let of_imsi = "/pcrf/pcrf_subscriber_imsi/{imsi}";
    r.add(Method::Get, of_imsi, p, Async(serving_apn::of_imsi))?;
    let of_imsi_apn = "/pcrf/pcrf_subscriber_imsi/{imsi}/{apn_id}";
    r.add(Method::Get, of_imsi_apn, p, Async(serving_apn::of_imsi_apn))?;
    let of_ip = "/pcrf/pcrf_serving_apn_ip/{ip_address}";
    r.add(Method::Get, of_ip, p, Async(serving_apn::of_ip))?;
    let of_routing = "/pcrf/subscriber_routing/{subscriber_routing}";
    r.add(Method::Get, of_routing, p, Async(serving_apn::of_routing))?;
    crud::document_routes::<serving_apn::ServingApn>(
        r,
        &[
            (Method::Get, of_imsi_apn),
            (Method::Get, of_ip),
            (Method::Get, of_routing),
        ],
    );
    crud::register::<ifc_template::IfcTemplate>(r)?;
    let by_name = "/ifc_template/name/{template_name}";
    crud::register_lookup::<ifc_template::ByName>(r, by_name)?;
    let invalidate = "/ifc_template/cache/invalidate";
    r.add(Method::Post, invalidate, p, Async(ifc_template::invalidate))?;
    let invalidate_one = "/ifc_template/cache/invalidate/{ifc_template_id}";
    r.add(
        Method::Post,
        invalidate_one,
        p,
        Async(ifc_template::invalidate),
    )?;
    crud::register::<ims_subscriber::ImsSubscriber>(r)?;
    let ims_msisdn = "/ims_subscriber/ims_subscriber_msisdn/{msisdn}";
    crud::register_lookup::<crud::ByMsisdn<ims_subscriber::ImsSubscriber>>(r, ims_msisdn)?;
    let ims_imsi = "/ims_subscriber/ims_subscriber_imsi/{imsi}";
    crud::register_lookup::<crud::ByImsi<ims_subscriber::ImsSubscriber>>(r, ims_imsi)?;
    type Attribute = crud::Plain<subscriber_attributes::SubscriberAttribute>;
    r.add(
        Method::Put,
        "/subscriber_attributes",
        p,
        Async(crud::put::<Attribute>),
    )?;
    r.add(
        Method::Get,
        "/subscriber_attributes/list",
        p,
        Async(crud::list::<Attribute>),
    )?;
    let attributes_of = "/subscriber_attributes/{subscriber_id}";
    let for_subscriber = Async(subscriber_attributes::get_for_subscriber);
    r.add(Method::Get, attributes_of, p, for_subscriber)?;
    let attribute = "/subscriber_attributes/{subscriber_attributes_id}";
    r.add(Method::Patch, attribute, p, Async(crud::patch::<Attribute>))?;
    r.add(
        Method::Delete,
        attribute,
        p,
        Async(crud::delete::<Attribute>),
    )?;
    crud::document_routes::<subscriber_attributes::SubscriberAttribute>(
        r,
        &[
            (Method::Put, "/subscriber_attributes"),
            (Method::Get, "/subscriber_attributes/list"),
            (Method::Patch, attribute),
        ],
    );
    crud::register::<roaming::RoamingNetwork>(r)?;
    crud::register::<roaming::RoamingRule>(r)?;
    crud::register::<eir::EirRule>(r)?;
    crud::register::<emergency_subscriber::EmergencySubscriber>(r)?;
    r.add(
        Method::Get,
        "/eir/lookup_imei/{imei}",
        p,
        Async(eir::lookup_imei),
    )?;
    type History = crud::Plain<eir_history::EirHistory>;
    let history_list = "/eir/eir_history/list";
    r.add(Method::Get, history_list, p, Async(crud::list::<History>))?;
    let history = "/eir/eir_history/{attribute}";
    r.add(Method::Get, history, p, Async(eir_history::get))?;
    r.add(Method::Delete, history, p, Async(eir_history::delete))?;
    crud::document_routes::<eir_history::EirHistory>(
        r,
        &[
            (Method::Get, history_list),
            (Method::Get, history),
            (Method::Delete, history),
        ],
    );
    r.add(Method::Patch, "/geored", p, Async(geored::patch))?;
    r.add(Method::Get, "/geored", p, Async(geored::schema))?;
    r.add(Method::Get, "/geored/peers", p, Async(geored::peers))?;
    r.add(Method::Patch, "/geored/peers", p, Async(geored::set_peers))?;
    r.add(Method::Get, "/geored/webhooks", p, Async(geored::webhooks))?;
    r.add(Method::Get, "/oam/serving_subs", p, Async(serving::subs))?;
    r.add(
        Method::Get,
        "/oam/serving_subs_ims",
        p,
        Async(serving::subs_ims),
    )?;
    r.add(
        Method::Get,
        "/oam/serving_subs_pcrf",
        p,
        Async(serving_apn::serving_subs_pcrf),
    )?;
    r.add(Method::Get, "/oam/diameter_peers", p, Async(serving::peers))?;
    let deregister = "/oam/deregister/{imsi}";
    r.add(Method::Get, deregister, p, Async(serving::deregister))?;
    let reconcile = "/oam/reconcile/ims/{imsi}";
    r.add(Method::Get, reconcile, p, Async(reconcile::ims))?;
    let enum_records = "/oam/reconcile/enum";
    r.add(Method::Get, enum_records, p, Async(reconcile::enum_records))?;
    r.add(Method::Put, "/push/clr/{imsi}", p, Async(serving::push_clr))?;
    r.add(Method::Get, "/operation_logs/list", p, Async(oplog::list))?;
    r.add(Method::Get, "/operation_logs/last", p, Async(oplog::last))?;
    let by_table = "/operation_logs/list/table/{table_name}";
    r.add(Method::Get, by_table, p, Async(oplog::list_table))?;
    let rollback = "/oam/rollback_operation/last";
    r.add(Method::Get, rollback, p, Async(oplog::rollback_last))?;
    let rollback = "/oam/rollback_operation/{operation_id}";
    r.add(Method::Get, rollback, p, Async(oplog::rollback_operation))?;
    Ok(())
}

/// For PATCH bodies: `Some(None)` for an explicit `null` (clear the
/// field), `None` for an absent one (keep it).
pub fn double<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}
