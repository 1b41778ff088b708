//! Authentication vectors: PyHSS's `vector_count` and `eap_aka`, the resync
//! endpoint, and 5G-AKA. Every SQN is issued by the AuC's own shard, and a
//! vector carrying it leaves the server only once a durable SQN lease
//! covers it (decision 0007), so no crash ever reissues one.

use std::cell::RefCell;
use std::sync::Arc;

use rand::{RngCore, SeedableRng};
use serde::Serialize;

use super::auc::{epoch, Auc};
use super::lookup::find_by_imsi;
use super::tables;
use crate::domain::api_error::ApiError;
use crate::domain::http1::{form_pairs, Request};
use crate::domain::ids::{hex_exact, plmn, Imsi};
use crate::domain::kdf;
use crate::domain::keywrap::Kek;
use crate::domain::milenage::{self, autn, sqn_bytes, Milenage};
use crate::domain::router::Params;
use crate::domain::shard::shard_of;
use crate::domain::sqn::SqnScheme;
use crate::runtime::{Core, LocalBoxFuture};
use crate::server::{mesh_error, store_error, Ctx, Reply};
use crate::storage::record::Record;
use crate::storage::Op;
use crate::table::{index, owner_of};

thread_local! {
    /// This core's CSPRNG for RAND (ChaCha12, seeded from the OS once).
    static RNG: RefCell<rand::rngs::StdRng> = RefCell::new(rand::rngs::StdRng::from_os_rng());
}

fn fresh_rand() -> [u8; 16] {
    let mut r = [0u8; 16];
    RNG.with(|g| g.borrow_mut().fill_bytes(&mut r));
    r
}

/// One computed vector, with the SQN it carries.
#[derive(Clone)]
pub struct Vector {
    pub rand: [u8; 16],
    pub sqn: [u8; 6],
    pub amf: [u8; 2],
    pub out: milenage::Outputs,
}

impl Vector {
    /// SQN ⊕ AK, as AUTN carries it (and KASME's derivation takes).
    pub fn sqn_xor_ak(&self) -> [u8; 6] {
        let mut x = [0u8; 6];
        for (i, b) in x.iter_mut().enumerate() {
            *b = self.sqn[i] ^ self.out.ak[i];
        }
        x
    }

    pub fn autn(&self) -> [u8; 16] {
        autn(&self.sqn, &self.amf, &self.out)
    }
}

/// Opens an AuC's Ki and OPc (a failure is the server's configuration: a
/// 500 that names it, never wrong vectors).
fn keys(auc: &Auc, kek: Option<&Kek>) -> Result<Milenage, ApiError> {
    let open = |k: &crate::domain::keywrap::KeyMaterial| {
        k.open(kek).map_err(|e| {
            tracing::error!(auc_id = auc.id, error = %e, "cannot open the subscriber's keys");
            ApiError::Internal(format!("cannot open the subscriber's keys: {e}"))
        })
    };
    let (ki, opc) = (open(&auc.ki)?, open(&auc.opc)?);
    Ok(Milenage::new(&ki, &opc))
}

/// Issues `n` vectors for AuC `id` on its own core: takes the SQNs and
/// starts the commit (so a concurrent request already sees them as used),
/// computes the vectors while the commit syncs, and returns them once
/// their SQNs are durable: under this process's durable lease at once,
/// otherwise after the commit that takes a new lease
/// ([`crate::domain::sqn`]).
pub(super) async fn issue_here(
    core: &Core,
    id: u64,
    n: u64,
    (scheme, lease): (SqnScheme, u64),
    kek: Option<Arc<Kek>>,
    expect_imsi: Option<String>,
) -> Result<Vec<Vector>, ApiError> {
    let key = id.to_be_bytes();
    // Decoded straight from the store (the overlay or the mapping).
    let mut auc = core
        .store
        .read(tables::AUC, &key, |v| v.map(Auc::from_bytes))
        .map_err(store_error)?
        .ok_or(ApiError::NotFound)?
        .map_err(|e| {
            tracing::error!(auc_id = id, error = %e, "damaged AuC record");
            ApiError::Internal("damaged record".into())
        })?;
    // Reached through the IMSI index: the AuC must still carry the IMSI.
    if expect_imsi.is_some_and(|e| auc.imsi.as_deref() != Some(e.as_str())) {
        return Err(ApiError::NotFound);
    }
    // Keys first: nothing is issued if they cannot be opened.
    let m = keys(&auc, kek.as_deref())?;
    let issued = scheme
        .issue(auc.sqn, n, lease, epoch())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    auc.sqn = issued.state;
    {
        let mut metrics = core.metrics.borrow_mut();
        if issued.new_lease {
            metrics.sqn_leases_taken += 1;
        } else {
            metrics.sqn_under_lease += 1;
        }
    }
    // A new lease is logged and waited for. Under the standing lease the
    // record is kept on this core only: the vectors wait just until the
    // lease itself is durable (at once, unless it was taken moments ago).
    let durable = if issued.new_lease {
        core.store
            .begin_commit(&[Op::Put {
                table: tables::AUC,
                key: key.to_vec(),
                value: auc.to_bytes(),
            }])
            .map_err(store_error)?
    } else {
        core.store.put_unlogged(tables::AUC, &key, auc.to_bytes())
    };
    let vectors = issued
        .sqns
        .into_iter()
        .map(|s| {
            let rand = fresh_rand();
            let sqn = sqn_bytes(s);
            let out = m.compute(&rand, &sqn, &auc.amf);
            Vector {
                rand,
                sqn,
                amf: auc.amf,
                out,
            }
        })
        .collect();
    durable.await.map_err(store_error)?;
    super::geored_out::sqn_issued(core, id, auc.imsi.as_deref(), auc.sqn.last);
    Ok(vectors)
}

/// What the IMSI's shard did with a vector request.
enum Issued {
    Vectors(Vec<Vector>),
    /// The IMSI's index entry names an AuC on another shard.
    Elsewhere(u64),
    /// No AuC carries the IMSI.
    Unindexed,
}

/// Finds the AuC of `imsi` and issues `n` vectors on its shard.
pub async fn issue(ctx: &Ctx, imsi: &Imsi, n: u64) -> Result<Vec<Vector>, ApiError> {
    let core = &ctx.core;
    let scheme = (ctx.config.hss.sqn_scheme(), ctx.config.hss.sqn_lease);
    let kek = ctx.config.hss.kek.clone();
    // The common case: the AuC carries the IMSI and lives on the IMSI's
    // shard, so one visit reads its index entry and issues (one hop from
    // any core). An AuC elsewhere (created before it had the IMSI) costs
    // one more; a stale entry reads as absent.
    let (key, k) = (imsi.as_str().to_owned(), kek.clone());
    let issued = core
        .on(
            shard_of(key.as_bytes(), core.shards()),
            move |c| async move {
                let id = index::lookup_here(&c, tables::IMSI_INDEX, key.as_bytes()).await?;
                let Some(id) = id else {
                    return Ok(Issued::Unindexed);
                };
                if owner_of(id, c.shards()) != c.shard {
                    return Ok(Issued::Elsewhere(id));
                }
                match issue_here(&c, id, n, scheme, k, Some(key)).await {
                    Ok(v) => Ok(Issued::Vectors(v)),
                    Err(ApiError::NotFound) => Ok(Issued::Unindexed),
                    Err(e) => Err(e),
                }
            },
        )
        .await
        .map_err(mesh_error)??;
    match issued {
        Issued::Vectors(v) => return Ok(v),
        Issued::Elsewhere(id) => {
            let (k, key) = (kek.clone(), imsi.as_str().to_owned());
            let there = core
                .on(owner_of(id, core.shards()), move |c| async move {
                    issue_here(&c, id, n, scheme, k, Some(key)).await
                })
                .await
                .map_err(mesh_error)?;
            match there {
                // A stale entry: look further.
                Err(ApiError::NotFound) => {}
                other => return other,
            }
        }
        Issued::Unindexed => {}
    }
    // The seed's walkthrough: an AuC referenced by the subscriber with the IMSI.
    let id = find_by_imsi(core, imsi)
        .await?
        .ok_or(ApiError::NotFound)?
        .id;
    core.on(owner_of(id, core.shards()), move |c| async move {
        issue_here(&c, id, n, scheme, kek, None).await
    })
    .await
    .map_err(mesh_error)?
}

fn imsi_param(params: &Params<'_>) -> Result<Imsi, ApiError> {
    Imsi::parse(params.get("imsi").unwrap_or_default())
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

fn query_param(req: &Request<'_>, name: &str) -> Option<String> {
    form_pairs(req.query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[derive(Serialize)]
struct EpsVector {
    rand: Hex<16>,
    autn: Hex<16>,
    xres: Hex<8>,
    ck: Hex<16>,
    ik: Hex<16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kasme: Option<Hex<32>>,
}

/// `GET /auc/aka/vector_count/{count}/imsi/{imsi}[?plmn=MCCMNC]`: `count`
/// distinct vectors, each with its own RAND and SQN; with `plmn`, each
/// also carries KASME for that serving network.
pub fn vector_count<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let max = u64::from(ctx.config.hss.max_vectors_per_request);
        let n: u64 = params
            .get("count")
            .and_then(|c| c.parse().ok())
            .filter(|&n| n <= max)
            .ok_or_else(|| {
                ApiError::bad_request(format!("count: must be an integer from 0 to {max}"))
            })?;
        let imsi = imsi_param(&params)?;
        let sn_id = match query_param(&req, "plmn") {
            Some(p) => {
                let (mcc, mnc) = plmn(&p).map_err(|e| ApiError::bad_request(e.to_string()))?;
                Some(kdf::plmn_id(mcc, mnc).ok_or_else(|| ApiError::bad_request("plmn: invalid"))?)
            }
            None => None,
        };
        if n == 0 {
            // Nothing issued, nothing used: but the subscriber must exist.
            find_by_imsi(&ctx.core, &imsi)
                .await?
                .ok_or(ApiError::NotFound)?;
            return reply.json(200, &[] as &[EpsVector]);
        }
        let vectors = issue(ctx, &imsi, n).await?;
        let out: Vec<EpsVector> = vectors
            .iter()
            .map(|v| EpsVector {
                rand: Hex(v.rand),
                autn: Hex(v.autn()),
                xres: Hex(v.out.res),
                ck: Hex(v.out.ck),
                ik: Hex(v.out.ik),
                kasme: sn_id.map(|sn| Hex(kdf::kasme(&v.out.ck, &v.out.ik, &sn, &v.sqn_xor_ak()))),
            })
            .collect();
        reply.json(200, &out)
    })
}

/// Bytes serialized as a lowercase hex string, encoded on the stack
/// (no String per field).
struct Hex<const N: usize>([u8; N]);

impl<const N: usize> Serialize for Hex<N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut buf = [0u8; 64];
        let out = buf
            .get_mut(..2 * N)
            .ok_or_else(|| S::Error::custom("hex value too long"))?;
        hex::encode_to_slice(self.0, out).map_err(S::Error::custom)?;
        s.serialize_str(std::str::from_utf8(out).map_err(S::Error::custom)?)
    }
}

#[derive(Serialize)]
struct EapVector {
    rand: Hex<16>,
    autn: Hex<16>,
    xres: Hex<8>,
    mac: Hex<8>,
    ak: Hex<6>,
}

/// `GET /auc/eap_aka/plmn/{plmn}/imsi/{imsi}`: one vector, PyHSS's shape.
pub fn eap_aka<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        plmn(params.get("plmn").unwrap_or_default())
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let imsi = imsi_param(&params)?;
        let v = issue(ctx, &imsi, 1)
            .await?
            .pop()
            .ok_or(ApiError::NotFound)?;
        reply.json(
            200,
            &EapVector {
                rand: Hex(v.rand),
                autn: Hex(v.autn()),
                xres: Hex(v.out.res),
                mac: Hex(v.out.mac_a),
                ak: Hex(v.out.ak),
            },
        )
    })
}

#[derive(Serialize)]
struct FiveGVector {
    rand: Hex<16>,
    autn: Hex<16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hxres_star: Option<Hex<16>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    xres_star: Option<Hex<16>>,
    kausf: Hex<32>,
    serving_network_name: String,
}

/// `GET /auc/5g_aka/plmn/{plmn}/imsi/{imsi}[?role=ausf]`: a 5G HE AV
/// (TS 33.501 §6.1.3.2). The serving network name is derived from the
/// PLMN. By default HXRES* (what a SEAF compares); `role=ausf` gives
/// XRES* instead (what the AUSF keeps).
pub fn five_g<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let (mcc, mnc) = plmn(params.get("plmn").unwrap_or_default())
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let snn = kdf::serving_network_name(mcc, mnc);
        let ausf = match query_param(&req, "role").as_deref() {
            None | Some("seaf") => false,
            Some("ausf") => true,
            Some(_) => return Err(ApiError::bad_request("role: must be ausf or seaf")),
        };
        let imsi = imsi_param(&params)?;
        let v = issue(ctx, &imsi, 1)
            .await?
            .pop()
            .ok_or(ApiError::NotFound)?;
        let xs = kdf::xres_star(&v.out.ck, &v.out.ik, snn.as_bytes(), &v.rand, &v.out.res);
        let out = FiveGVector {
            rand: Hex(v.rand),
            autn: Hex(v.autn()),
            hxres_star: (!ausf).then(|| Hex(kdf::hxres_star(&v.rand, &xs))),
            xres_star: ausf.then_some(Hex(xs)),
            kausf: Hex(kdf::kausf(
                &v.out.ck,
                &v.out.ik,
                snn.as_bytes(),
                &v.sqn_xor_ak(),
            )),
            serving_network_name: snn,
        };
        reply.json(200, &out)
    })
}

#[derive(Serialize)]
struct Resynced {
    result: &'static str,
    sqn_ms: u64,
    sqn: u64,
}

/// `GET /auc/aka/resync/imsi/{imsi}/auts/{auts}/rand/{rand}`: verifies the
/// AUTS (MAC-S with AMF* = 0000) and moves the stored SQN to at least
/// SQN_MS, so the next vector is accepted. A forged AUTS is a 400 and
/// changes nothing.
pub fn resync<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let imsi = imsi_param(&params)?;
        let bad = |e: crate::domain::ids::InvalidId| ApiError::bad_request(e.to_string());
        let auts: [u8; 14] =
            hex_exact("auts", params.get("auts").unwrap_or_default()).map_err(bad)?;
        let rand: [u8; 16] =
            hex_exact("rand", params.get("rand").unwrap_or_default()).map_err(bad)?;
        let (sqn_ms, sqn) = resync_sqn(ctx, &imsi, rand, auts).await?;
        reply.json(
            200,
            &Resynced {
                result: "OK",
                sqn_ms,
                sqn,
            },
        )
    })
}

/// Verifies an AUTS (MAC-S with AMF* = 0000) for `imsi` and moves the
/// stored SQN to at least SQN_MS, durably: returns (SQN_MS, the SQN now
/// stored). A forged AUTS is a 400 and changes nothing.
pub async fn resync_sqn(
    ctx: &Ctx,
    imsi: &Imsi,
    rand: [u8; 16],
    auts: [u8; 14],
) -> Result<(u64, u64), ApiError> {
    let core = &ctx.core;
    let id = find_by_imsi(core, imsi)
        .await?
        .ok_or(ApiError::NotFound)?
        .id;
    let kek = ctx.config.hss.kek.clone();
    core.on(owner_of(id, core.shards()), move |c| async move {
        let key = id.to_be_bytes();
        let bytes = c
            .store
            .read(tables::AUC, &key, |v| v.map(<[u8]>::to_vec))
            .map_err(store_error)?
            .ok_or(ApiError::NotFound)?;
        let mut auc =
            Auc::from_bytes(&bytes).map_err(|_| ApiError::Internal("damaged record".into()))?;
        let m = keys(&auc, kek.as_deref())?;
        let sqn_ms = milenage::verify_auts(&m, &rand, &auts)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let next = auc.sqn.resynced(sqn_ms, epoch());
        if next != auc.sqn {
            auc.sqn = next;
            c.store
                .commit(&[Op::Put {
                    table: tables::AUC,
                    key: key.to_vec(),
                    value: auc.to_bytes(),
                }])
                .await
                .map_err(store_error)?;
        }
        Ok::<_, ApiError>((sqn_ms, next.last))
    })
    .await
    .map_err(mesh_error)?
}
