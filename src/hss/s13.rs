//! S13 (TS 29.272 §5.3): the Equipment Identity Register's ME Identity
//! Check. The IMEI of Terminal-Information (and the IMSI of User-Name,
//! when the MME sends it) is matched against the EIR rules
//! ([`super::eir::check`]: exact rules through their index, then regular
//! expressions on a linear-time engine); Equipment-Status is the matching
//! rule's `match_response_code`, else `hss.eir_no_match_response`. Every
//! check that names an IMSI is written to the EIR history
//! (`/eir/eir_history`) before the answer leaves.

use std::rc::Rc;

use super::answering::{diameter_write, serve, Refusal};
use crate::diameter::{self, Incoming};
use crate::domain::diameter::dict::avp;
use crate::domain::diameter::{app, command};
use crate::domain::ids::Imsi;
use crate::runtime::LocalBoxFuture;
use crate::server::Ctx;

/// Registers the S13 request this EIR answers.
pub fn register(apps: &mut diameter::Applications) {
    apps.add(app::S13, command::ME_IDENTITY_CHECK, ecr);
}

/// An IMEI as Terminal-Information carries it: 14 digits (TAC and SNR),
/// or 15 with the check digit, or 16 as an IMEISV.
fn imei_ok(imei: &str) -> bool {
    (14..=16).contains(&imei.len()) && imei.bytes().all(|b| b.is_ascii_digit())
}

/// ECR: Equipment-Status for the IMEI (and IMSI); the check recorded in
/// the EIR history when the request names an IMSI.
pub fn ecr(ctx: Rc<Ctx>, req: Incoming) -> LocalBoxFuture<'static, Vec<u8>> {
    serve(ctx, req, |ctx, _, _, msg, mut b| {
        Box::pin(async move {
            let info = msg
                .get(&avp::TERMINAL_INFORMATION)
                .ok_or_else(|| Refusal::missing("Terminal-Information"))?;
            let imei = info
                .get(&avp::IMEI)
                .ok_or_else(|| Refusal::missing("Terminal-Information's IMEI"))?
                .utf8()
                .filter(|i| imei_ok(i))
                .ok_or_else(|| Refusal::invalid("IMEI: must be 14 to 16 digits"))?;
            let imsi = msg
                .text(&avp::USER_NAME)
                .map(|n| Imsi::parse(n).map_err(|e| Refusal::invalid(e.to_string())))
                .transpose()?;
            let status = super::eir::check(
                &ctx.core.catalog(),
                imsi.as_ref().map_or("", |i| i.as_str()),
                imei,
                ctx.config.hss.eir_no_match_response,
            );
            if let Some(imsi) = &imsi {
                let w = diameter_write(ctx);
                super::eir_history::record(ctx, imsi.as_str(), imei, i64::from(status), &w).await?;
            }
            b.u32(&avp::EQUIPMENT_STATUS, u32::from(status));
            Ok(b.into())
        })
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_imei_is_14_to_16_digits() {
        assert!(super::imei_ok("35609204079301"));
        assert!(super::imei_ok("356092040793011"));
        assert!(super::imei_ok("3560920407930101"));
        assert!(!super::imei_ok("3560920407930"));
        assert!(!super::imei_ok("35609204079301a"));
        assert!(!super::imei_ok("35609204079301011"));
    }
}
