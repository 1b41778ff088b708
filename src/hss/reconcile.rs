//! Reconciliation (`/oam/reconcile/*`): comparing this server's IMS
//! registrations with its GeoRed peers', and building the ENUM records
//! the IMS subscribers imply.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::geored_out;
use super::ims_subscriber::ImsSubscriber;
use crate::domain::api_error::ApiError;
use crate::domain::http1::Request;
use crate::domain::ids::Imsi;
use crate::domain::router::Params;
use crate::domain::shaken::parse_url;
use crate::runtime::fetch::{http_request, tls_client_config, Limits, Outgoing};
use crate::runtime::LocalBoxFuture;
use crate::server::{Ctx, Reply};
use crate::table;

/// The `*cscf*` fields of an IMS subscriber's JSON.
fn cscf_fields(v: &Value) -> Value {
    let fields: Map<String, Value> = v
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.contains("cscf"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(fields)
}

/// A peer's IMS subscriber of `imsi`, or why not.
async fn peer_view(peer: &str, imsi: &str, limits: &Limits) -> Result<Value, String> {
    let url = parse_url(peer).ok_or_else(|| format!("{peer}: not a URL"))?;
    let path = format!(
        "{}/ims_subscriber/ims_subscriber_imsi/{imsi}",
        url.path.trim_end_matches('/')
    );
    let req = Outgoing {
        method: "GET",
        path: &path,
        accept: "application/json",
        headers: &[],
        body: None,
    };
    let answer = http_request(url.https, url.host, url.port, &req, limits)
        .await
        .map_err(|e| e.to_string())?;
    if answer.status != 200 {
        return Err(format!("HTTP {}", answer.status));
    }
    serde_json::from_slice(&answer.body).map_err(|e| format!("not JSON: {e}"))
}

/// `GET /oam/reconcile/ims/{imsi}`: the IMS subscriber's `*cscf*` fields
/// here (`localhost`) and on each GeoRed peer (or the error reaching it),
/// and `mismatches`: each pair of servers whose S-CSCF differs.
pub fn ims<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let imsi = Imsi::parse(params.get("imsi").unwrap_or_default())
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let local: ImsSubscriber = table::find(&ctx.core, "imsi", imsi.as_str())
            .await?
            .ok_or(ApiError::NotFound)?;
        let local = serde_json::to_value(&local).map_err(|e| ApiError::Internal(e.to_string()))?;
        let mut views: BTreeMap<String, Value> = BTreeMap::new();
        views.insert("localhost".into(), cscf_fields(&local));
        let limits = Limits {
            timeout: Duration::from_millis(ctx.config.hss.geored_timeout_ms),
            max_body: 1 << 20,
            allow_internal: true,
            tls: tls_client_config(&[]).map_err(ApiError::Internal)?,
        };
        for peer in geored_out::peers(&ctx.core.catalog()) {
            let view = match peer_view(&peer, imsi.as_str(), &limits).await {
                Ok(v) => cscf_fields(&v),
                Err(e) => Value::String(e),
            };
            views.insert(peer, view);
        }
        let mut mismatches = Vec::new();
        // Servers that answered, each with its S-CSCF.
        let answered: Vec<(&String, &Value)> = views
            .iter()
            .filter(|(_, v)| v.is_object())
            .map(|(name, v)| (name, v.get("scscf").unwrap_or(&Value::Null)))
            .collect();
        for (i, (a, va)) in answered.iter().enumerate() {
            for (b, vb) in answered.iter().skip(i + 1) {
                if va != vb {
                    mismatches.push(json!({ (*a).clone(): va, (*b).clone(): vb }));
                }
            }
        }
        let mut answer: Map<String, Value> = views.into_iter().collect();
        answer.insert("mismatches".into(), Value::Array(mismatches));
        reply.json(200, &answer)
    })
}

/// The ENUM domain of an E.164 number: its digits reversed, dotted,
/// under `e164.arpa` (RFC 6116).
fn enum_name(msisdn: &str) -> Option<String> {
    let digits = msisdn.strip_prefix('+').unwrap_or(msisdn);
    if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut name: String = digits.chars().rev().flat_map(|c| [c, '.']).collect();
    name.push_str("e164.arpa.");
    Some(name)
}

/// `GET /oam/reconcile/enum`: the ENUM records the IMS database implies,
/// one E2U+sip NAPTR per MSISDN of every IMS subscriber (`msisdn` and
/// `msisdn_list`) pointing at `sip:+MSISDN@hss.ims_domain`, as JSON and
/// as zone-file lines for the DNS that serves them (this server keeps no
/// zone of its own). MSISDNs that are not E.164 digits are listed under
/// `skipped`.
pub fn enum_records<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let domain = &ctx.config.hss.ims_domain;
        let mut records = Vec::new();
        let mut skipped = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for ims in table::list::<ImsSubscriber>(&ctx.core, 0, usize::MAX).await? {
            let numbers = ims
                .msisdn
                .iter()
                .chain(ims.msisdn_list.iter())
                .flat_map(|l| l.split(','))
                .map(str::trim)
                .filter(|m| !m.is_empty());
            for msisdn in numbers {
                let digits = msisdn.trim_start_matches('+').to_owned();
                if !seen.insert(digits.clone()) {
                    continue;
                }
                let Some(name) = enum_name(&digits) else {
                    skipped.push(
                        json!({"ims_subscriber_id": ims.ims_subscriber_id, "msisdn": msisdn}),
                    );
                    continue;
                };
                let regexp = format!("!^.*$!sip:+{digits}@{domain}!");
                records.push(json!({
                    "ims_subscriber_id": ims.ims_subscriber_id,
                    "msisdn": digits,
                    "name": name,
                    "order": 10,
                    "preference": 100,
                    "flags": "u",
                    "service": "E2U+sip",
                    "regexp": regexp,
                    "replacement": ".",
                    "zone_line": format!("{name} IN NAPTR 10 100 \"u\" \"E2U+sip\" \"{regexp}\" ."),
                }));
            }
        }
        reply.json(
            200,
            &json!({"count": records.len(), "records": records, "skipped": skipped}),
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn enum_names_reverse_the_digits_under_e164_arpa() {
        // RFC 6116 §2.4's example.
        assert_eq!(
            super::enum_name("+442079460148").as_deref(),
            Some("8.4.1.0.6.4.9.7.0.2.4.4.e164.arpa.")
        );
        assert_eq!(
            super::enum_name("4917400081").as_deref(),
            Some("1.8.0.0.0.4.7.1.9.4.e164.arpa.")
        );
        assert!(super::enum_name("12ab").is_none());
        assert!(super::enum_name("").is_none());
        assert!(super::enum_name("1234567890123456").is_none());
    }
}
