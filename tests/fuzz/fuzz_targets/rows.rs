//! Stored rows on arbitrary bytes: the AuC's tagged record, every JSON
//! row of the table layer (HSS and AAA) and the AAA's money records. Never a panic; a row that decodes encodes to
//! bytes that decode to the same row.
#![no_main]

use authplane::aaa::rows::{Account, Connection, Customer, Nas, Rate, Route, Tariff, Vendor};
use authplane::aaa::wallet::{Cdr, Hold, Sdr};
use authplane::hss::{
    apn::Apn, auc::Auc, charging_rule::ChargingRule, eir::EirRule, eir_history::EirHistory,
    ims_subscriber::ImsSubscriber, serving_apn::ServingApn, subscriber::Subscriber, tft::Tft,
};
use authplane::storage::record::Record;
use authplane::table::Row;
use libfuzzer_sys::fuzz_target;

fn round_trip<R: Row + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(row) = R::decode(data) {
        let bytes = row.encode().expect("a decoded row encodes");
        assert_eq!(R::decode(&bytes).ok(), Some(row));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(auc) = Auc::from_bytes(data) {
        let bytes = auc.to_bytes();
        let again = Auc::from_bytes(&bytes).expect("an encoded AuC decodes");
        assert_eq!(again.to_bytes(), bytes);
    }
    round_trip::<Subscriber>(data);
    round_trip::<ImsSubscriber>(data);
    round_trip::<Apn>(data);
    round_trip::<Tft>(data);
    round_trip::<ChargingRule>(data);
    round_trip::<EirHistory>(data);
    round_trip::<ServingApn>(data);
    let _ = EirRule::decode(data);
    round_trip::<Nas>(data);
    round_trip::<Customer>(data);
    round_trip::<Account>(data);
    round_trip::<Tariff>(data);
    round_trip::<Rate>(data);
    round_trip::<Vendor>(data);
    round_trip::<Connection>(data);
    round_trip::<Route>(data);
    // The AAA's own records (reservations, CDRs, SDRs): never a panic.
    let _ = serde_json::from_slice::<Hold>(data);
    let _ = serde_json::from_slice::<Cdr>(data);
    let _ = serde_json::from_slice::<Sdr>(data);
});
