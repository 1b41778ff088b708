//! NAS authentication on every AAA request: `nas_login`, `nas_password`
//! (constant-time) and the connection's source address, allowed for that
//! NAS and for the endpoint's NAS type (SIP or SMPP). The answer never
//! says which part failed. An address that keeps failing is refused for
//! a while without being checked (per core).

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use subtle::ConstantTimeEq;

use super::form::Form;
use super::rows::Nas;
use crate::domain::api_error::ApiError;
use crate::domain::tcxc::Cidr;
use crate::runtime::CatalogView;
use crate::table::catalog_find;

/// Which endpoints a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NasType {
    Sip,
    Smpp,
}

/// Failures from one address within [`WINDOW_SECS`] before it is refused.
const MAX_FAILURES: u32 = 20;
const WINDOW_SECS: u64 = 60;
/// Most addresses tracked per core (the oldest windows are dropped).
const MAX_TRACKED: usize = 10_000;

thread_local! {
    /// Per address: failures in the current window, and when it began.
    static FAILURES: RefCell<HashMap<IpAddr, (u32, u64)>> = RefCell::new(HashMap::new());
}

const DENIED: &str = "NAS authentication failed";

/// The catalog and the request's NAS, authenticated for `kind` now.
pub fn admit(
    ctx: &crate::server::Ctx,
    peer: Option<IpAddr>,
    form: &Form<'_>,
    kind: NasType,
) -> Result<(crate::runtime::SharedView, Arc<Nas>), ApiError> {
    let view = ctx.core.catalog();
    let nas = authenticate(
        &view,
        form,
        peer,
        kind,
        crate::runtime::clock::unix_seconds(),
    )?;
    Ok((view, nas))
}

/// The NAS the request comes from, authenticated.
pub fn authenticate(
    view: &CatalogView,
    form: &Form<'_>,
    peer: Option<IpAddr>,
    kind: NasType,
    now: u64,
) -> Result<Arc<Nas>, ApiError> {
    let peer = peer.ok_or_else(|| ApiError::bad_request(DENIED))?;
    let blocked = FAILURES.with(|f| {
        f.borrow()
            .get(&peer)
            .is_some_and(|(n, since)| *n >= MAX_FAILURES && now < since + WINDOW_SECS)
    });
    if blocked {
        return Err(ApiError::bad_request(
            "too many failed NAS logins from this address: try again later",
        ));
    }
    let login = form.get("nas_login").unwrap_or("");
    let password = form.get("nas_password").unwrap_or("");
    let nas = if login.is_empty() {
        None
    } else {
        catalog_find::<Nas>(view, "nas_login", login)
    };
    // The password is compared even for an unknown login.
    let stored = nas.as_deref().map_or("\u{0}", |n| n.nas_password.as_str());
    let password_ok = bool::from(stored.as_bytes().ct_eq(password.as_bytes()));
    let allowed = nas.as_deref().is_some_and(|n| {
        let list = match kind {
            NasType::Sip => &n.sip_ips,
            NasType::Smpp => &n.smpp_ips,
        };
        list.iter()
            .any(|a| Cidr::parse(a).is_ok_and(|c| c.contains(peer)))
    });
    match nas {
        Some(n) if password_ok && allowed => Ok(n),
        _ => {
            note_failure(peer, now);
            Err(ApiError::bad_request(DENIED))
        }
    }
}

fn note_failure(peer: IpAddr, now: u64) {
    FAILURES.with(|f| {
        let mut f = f.borrow_mut();
        if f.len() >= MAX_TRACKED {
            f.retain(|_, (_, since)| now < *since + WINDOW_SECS);
            if f.len() >= MAX_TRACKED {
                f.clear();
            }
        }
        let e = f.entry(peer).or_insert((0, now));
        if now >= e.1 + WINDOW_SECS {
            *e = (0, now);
        }
        e.0 += 1;
    });
}
