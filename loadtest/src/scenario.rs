//! What each request is and how its answer is checked. A wrong answer is an
//! error of its own kind, never throughput.

use rand::Rng;
use sha2::{Digest, Sha256};

use authplane::domain::milenage::{sqn_to_u64, Milenage};

/// Which scenario to run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// `GET /oam/ping`, checked for `{"result":"OK"}`.
    Ping,
    /// Creates the population: one `PUT /auc/` per subscriber, with keys
    /// derived from the seed (so `aka` can check vectors without a file).
    HssProvision,
    /// `vector_count/1` for a random subscriber of the population; every
    /// AUTN, XRES, CK and IK recomputed with the project's Milenage.
    Aka,
    /// Resync with a valid AUTS built locally (as the USIM would) for a
    /// random subscriber; the answer must carry its SQN_MS.
    Resync,
    /// STI-AS signing; every PASSporT's signature verified with the
    /// certificate given by `--stir-cert`, and its claims checked.
    StirSign,
    /// pysim's `POST /sim-auth-api/v1/slot/N` against cards with the keys
    /// `--sim-ki`/`--sim-opc`: each request a fresh RAND and an AUTN with
    /// the next SQN (a new SEQ, IND cycling, so up to 32 requests may be
    /// reordered in flight); RES, CK and IK recomputed.
    SimAuth,
    /// STI-VS: the verification request of `--stir-verify-request` again
    /// and again; every answer must be TN-Validation-Passed.
    StirVerify,
    /// TCXC AAA `aaa_authorize` of call `--aaa-run`-N (N = 0, 1, …, one
    /// per request, `--subscribers` in all) in the spec's world
    /// (`scripts/aaa-seed-world`, its customer topped up): every answer
    /// must be `accept` with the world's five routes, each with a credit
    /// time. Each call holds a reservation until accounted.
    AaaAuthorize,
    /// `aaa_accounting_stop` of leg 1 of those calls (the same
    /// `--aaa-run`, the same count), 30 s each: every answer `accept`
    /// (rated, debited once and its CDR durable).
    AaaAccounting,
    /// `aaa_smpp_authorize` of a message to 380911234567 in the spec's
    /// world on session `--aaa-session` (from `aaa_bind`): every answer
    /// `accept` with the world's route (price 0.015, one part). Each
    /// holds a reservation until accounted.
    AaaSmsAuthorize,
    /// `aaa_smpp_accounting` of those messages, sent (`--aaa-run`-N is
    /// the message id): every answer `accept` (charged once, SDR durable).
    AaaSmsAccounting,
    /// `vector_count/1?plmn=00101` for a random subscriber: as `aka`, and
    /// KASME recomputed too (the work an S6a AIR does).
    AkaKasme,
    /// An S6a AIR over Diameter (one CER per connection first) for one
    /// E-UTRAN vector of a random subscriber, Visited-PLMN-Id 00101: every
    /// vector's AUTN, XRES and KASME recomputed. Answers may come out of
    /// order; each names its subscriber in its Session-Id.
    S6aAir,
    /// Creates an IMS subscriber per subscriber of the population (after
    /// `hss-provision`): its IMSI, MSISDN 88 + its index in 10 digits.
    ImsProvision,
    /// A Cx MAR over Diameter for one Digest-AKAv1-MD5 item of a random
    /// IMS subscriber (by its tel: identity): RAND ‖ AUTN, XRES, CK and IK
    /// recomputed.
    CxMar,
    /// Creates `--eir-rules` EIR rules: rule i an exact IMEI
    /// 35<i, 12 digits> answering i mod 2, every hundredth a regular
    /// expression 86<i, 6 digits>[0-9]{6} answering 2 (greylist).
    EirProvision,
    /// An S13 ECR over Diameter for a random IMEI of those rules, or one
    /// no rule names (a tenth of them, answered hss.eir_no_match_response's
    /// default, 2), with its owner's IMSI (IMEI i belongs to subscriber i
    /// mod `--subscribers`): the first check of a pair writes it to the EIR
    /// history, later ones find it (`--ecr-new-pairs`: a random
    /// subscriber's, nearly every check a new pair). Equipment-Status
    /// checked.
    S13Ecr,
}

/// The card(s) the `sim-auth` scenario authenticates against.
#[derive(Debug, Clone)]
pub struct SimCards {
    pub k: [u8; 16],
    pub opc: [u8; 16],
    /// Requests go round-robin to slots 0..slots.
    pub slots: u64,
    /// Authentications issued so far (SQN and RAND derive from it).
    pub issued: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Default for SimCards {
    /// The seed's slot 0 card (pysim's documentation), one slot.
    fn default() -> SimCards {
        SimCards {
            k: [
                0x84, 0x1e, 0xad, 0x87, 0xbc, 0x9d, 0x97, 0x4e, 0xca, 0x1c, 0x16, 0x74, 0x09, 0x35,
                0x76, 0x01,
            ],
            opc: [
                0x32, 0x11, 0xca, 0xcd, 0xd6, 0x4f, 0x51, 0xc3, 0xfd, 0x30, 0x13, 0xec, 0xd9, 0xa5,
                0x82, 0xa0,
            ],
            slots: 1,
            issued: std::sync::Arc::default(),
        }
    }
}

impl SimCards {
    /// RAND and SQN of authentication number `n`.
    pub fn challenge(&self, n: u64) -> ([u8; 16], u64) {
        let d = Sha256::digest([&b"sim-rand"[..], &n.to_be_bytes()].concat());
        let mut rand = [0u8; 16];
        rand.copy_from_slice(&d[..16]);
        // SEQ n+1 (never 0), IND n mod 32.
        (rand, ((n + 1) << 5) | (n & 31))
    }
}

/// How subscribers are picked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pick {
    Uniform,
    /// Zipf with exponent `s`: a few subscribers get most requests.
    Zipf(f64),
}

/// The population's keys: derived from a seed and the subscriber's index.
#[derive(Debug, Clone)]
pub struct Population {
    pub seed: u64,
    pub first_imsi: u64,
    pub size: u64,
}

impl Population {
    pub fn imsi(&self, i: u64) -> String {
        format!("{:015}", self.first_imsi + i)
    }

    pub fn keys(&self, i: u64) -> ([u8; 16], [u8; 16]) {
        let derive = |label: &[u8]| {
            let mut h = Sha256::new();
            h.update(self.seed.to_be_bytes());
            h.update(label);
            h.update(i.to_be_bytes());
            let d = h.finalize();
            let mut k = [0u8; 16];
            k.copy_from_slice(&d[..16]);
            k
        };
        (derive(b"ki"), derive(b"opc"))
    }
}

/// One request to send and what its answer must be.
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    /// What was sent (in a mix, each request's own kind).
    pub kind: Kind,
    /// The subscriber it concerns (scenarios with a population).
    pub subscriber: u64,
    /// The SQN_MS a resync request carried.
    pub sqn_ms: u64,
}

/// A scenario: builds requests and checks their answers.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub kind: Kind,
    pub population: Population,
    pub host: String,
    pub pick: Pick,
    /// Ask the server to close the connection after each answer (for
    /// servers that do anyway, such as PyHSS).
    pub close_each: bool,
    /// A weighted mix of kinds (cumulative weights), instead of `kind`.
    pub mix: Option<Vec<(Kind, u32)>>,
    /// The key that must have signed STIR answers (SEC1 uncompressed point).
    pub stir_key: Option<Vec<u8>>,
    /// The cards of `sim-auth`.
    pub sim: SimCards,
    /// stir-sign: check the signature of every N-th answer (1: all).
    pub stir_verify_every: u64,
    /// The body `stir-verify` sends.
    pub verify_body: std::sync::Arc<String>,
    /// The call-id stem of the AAA scenarios (`ld-RUN-N`).
    pub aaa_run: u64,
    /// The SMPP session of the AAA SMS scenarios.
    pub aaa_session: std::sync::Arc<String>,
    /// EIR rules `eir-provision` creates and `s13-ecr` checks against.
    pub eir_rules: u64,
    /// s13-ecr: a random subscriber's IMSI in each ECR instead of the
    /// device's owner, so nearly every check is a new pair (a durable
    /// write to the EIR history).
    pub ecr_new_pairs: bool,
}

/// The public key of a PEM certificate, as a SEC1 uncompressed point.
pub fn key_of_certificate(pem: &str) -> Result<Vec<u8>, String> {
    use x509_cert::der::{DecodePem, Encode};
    let cert =
        x509_cert::Certificate::from_pem(pem).map_err(|e| format!("not a PEM certificate: {e}"))?;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| e.to_string())?;
    use p256::pkcs8::DecodePublicKey;
    let key = p256::ecdsa::VerifyingKey::from_public_key_der(&spki)
        .map_err(|e| format!("not a P-256 key: {e}"))?;
    Ok(key.to_encoded_point(false).as_bytes().to_vec())
}

/// A mix file: `[[scenario]] kind = "aka" weight = 8`, one table per kind.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixFile {
    pub scenario: Vec<MixEntry>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixEntry {
    pub kind: Kind,
    pub weight: u32,
}

impl MixFile {
    /// Cumulative weights; provisioning cannot be mixed (it walks the
    /// population once).
    pub fn cumulative(&self) -> Result<Vec<(Kind, u32)>, String> {
        let mut total = 0u32;
        let mut out = Vec::new();
        for e in &self.scenario {
            if e.kind.provisions() {
                return Err(format!(
                    "{:?} provisions: it cannot be part of a mix, run it first",
                    e.kind
                ));
            }
            if e.weight == 0 {
                continue;
            }
            total = total.checked_add(e.weight).ok_or("weights too large")?;
            out.push((e.kind, total));
        }
        if out.is_empty() {
            return Err("the mix has no scenario with a weight".into());
        }
        Ok(out)
    }
}

/// Why an answer is wrong.
pub type Wrong = &'static str;

impl Kind {
    /// Whether it creates rows, walking its population once.
    pub fn provisions(self) -> bool {
        matches!(
            self,
            Kind::HssProvision | Kind::ImsProvision | Kind::EirProvision
        )
    }
}

/// EIR rule `i` of `eir-provision`: (an IMEI it answers, its body, its
/// Equipment-Status).
pub fn eir_rule(i: u64) -> (String, String, u8) {
    if i % 100 == 99 {
        let imei = format!("86{i:06}000000");
        let body =
            format!(r#"{{"imei":"86{i:06}[0-9]{{6}}","regex_mode":1,"match_response_code":2}}"#);
        (imei, body, 2)
    } else {
        let imei = format!("35{i:012}");
        let code = (i % 2) as u8;
        let body = format!(r#"{{"imei":"{imei}","regex_mode":0,"match_response_code":{code}}}"#);
        (imei, body, code)
    }
}

/// The Equipment-Status of an IMEI no rule names (hss.eir_no_match_response's
/// default).
const EIR_NO_MATCH: u8 = 2;

impl Scenario {
    /// Writes the next request into `out`. `seq` numbers requests of a
    /// connection (the provisioning scenario walks the population with it).
    pub fn request(&self, rng: &mut impl Rng, seq: u64, out: &mut Vec<u8>) -> Sent {
        out.clear();
        let conn = if self.close_each {
            "Connection: close\r\n"
        } else {
            ""
        };
        let kind = match &self.mix {
            Some(mix) => {
                let total = mix.last().map_or(1, |(_, t)| *t);
                let x = rng.random_range(0..total);
                mix.iter()
                    .find(|(_, t)| x < *t)
                    .map_or(self.kind, |(k, _)| *k)
            }
            None => self.kind,
        };
        match kind {
            Kind::Ping => {
                out.extend_from_slice(
                    format!(
                        "GET /oam/ping HTTP/1.1\r\nHost: {}\r\n{conn}\r\n",
                        self.host
                    )
                    .as_bytes(),
                );
                Sent {
                    kind,
                    subscriber: 0,
                    sqn_ms: 0,
                }
            }
            Kind::AaaAuthorize | Kind::AaaAccounting => {
                let form = if kind == Kind::AaaAuthorize {
                    format!(
                        "nas_login=aaatest&nas_password=aaatest&user_name=12.34.56.78&cld=44444012#18661234567&cli=1234567&call_id=ld-{}-{seq}&client_remote_ip=12.34.56.78",
                        self.aaa_run
                    )
                } else {
                    format!(
                        "nas_login=aaatest&nas_password=aaatest&call_id=ld-{}-{seq}-b2b_1&duration=30&disconnect_code=16&setup_time=12:35:26.032119 GMT Fri Oct 21 2022&disconnect_time=12:36:26.032119 GMT Fri Oct 21 2022",
                        self.aaa_run
                    )
                };
                let path = if kind == Kind::AaaAuthorize {
                    "/aaa_authorize"
                } else {
                    "/aaa_accounting_stop"
                };
                out.extend_from_slice(
                    format!(
                        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n{conn}Content-Length: {}\r\n\r\n{form}",
                        self.host,
                        form.len()
                    )
                    .as_bytes(),
                );
                Sent {
                    kind,
                    subscriber: seq,
                    sqn_ms: 0,
                }
            }
            Kind::AaaSmsAuthorize | Kind::AaaSmsAccounting => {
                let common = format!(
                    "nas_login=aaatest&nas_password=aaatest&session_id={}&i_account=4&source_addr=O2App&destination_addr=380911234567&short_message=load",
                    self.aaa_session
                );
                let (path, form) = if kind == Kind::AaaSmsAuthorize {
                    ("/aaa_smpp_authorize", common)
                } else {
                    (
                        "/aaa_smpp_accounting",
                        format!(
                            "{common}&sent=1&attempted=1&i_customer=1&i_purchased_route=150&i_connection=43&i_vendor=8&smpp_commission=0&i_rate=226997&billed_msgs_cnt=1&billing_prefix=380&billing_i_account=4&price=0.015&message_id=ld-{}-{seq}&error_text=",
                            self.aaa_run
                        ),
                    )
                };
                out.extend_from_slice(
                    format!(
                        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n{conn}Content-Length: {}\r\n\r\n{form}",
                        self.host,
                        form.len()
                    )
                    .as_bytes(),
                );
                Sent {
                    kind,
                    subscriber: seq,
                    sqn_ms: 0,
                }
            }
            Kind::Aka | Kind::AkaKasme => {
                let i = self.pick(rng);
                let plmn = if kind == Kind::AkaKasme {
                    "?plmn=00101"
                } else {
                    ""
                };
                out.extend_from_slice(
                    format!(
                        "GET /auc/aka/vector_count/1/imsi/{}{plmn} HTTP/1.1\r\nHost: {}\r\n{conn}\r\n",
                        self.population.imsi(i),
                        self.host
                    )
                    .as_bytes(),
                );
                Sent {
                    kind,
                    subscriber: i,
                    sqn_ms: 0,
                }
            }
            Kind::S6aAir => {
                let i = self.pick(rng);
                out.extend_from_slice(&air(&self.population.imsi(i), i, seq));
                Sent {
                    kind,
                    subscriber: i,
                    sqn_ms: 0,
                }
            }
            Kind::CxMar => {
                let i = self.pick(rng);
                out.extend_from_slice(&mar(&self.population.imsi(i), i, seq));
                Sent {
                    kind,
                    subscriber: i,
                    sqn_ms: 0,
                }
            }
            Kind::S13Ecr => {
                let n = self.eir_rules.max(1);
                let rule = rng.random_range(0..n + n / 10);
                let imei = if rule < n {
                    eir_rule(rule).0
                } else {
                    format!("35{rule:012}")
                };
                // The device's owner: a pair is new (and written to the
                // EIR history) the first time only, as with real phones.
                let owner = if self.ecr_new_pairs {
                    self.pick(rng)
                } else {
                    rule % self.population.size.max(1)
                };
                let imsi = self.population.imsi(owner);
                out.extend_from_slice(&ecr(&imei, &imsi, rule, seq));
                Sent {
                    kind,
                    subscriber: rule,
                    sqn_ms: 0,
                }
            }
            Kind::HssProvision | Kind::ImsProvision | Kind::EirProvision => {
                let i = seq % self.population.size.max(1);
                let (i, path, body) = match kind {
                    Kind::HssProvision => {
                        let (ki, opc) = self.population.keys(i);
                        let body = format!(
                            r#"{{"ki":"{}","opc":"{}","amf":"8000","sqn":0,"imsi":"{}"}}"#,
                            hex::encode(ki),
                            hex::encode(opc),
                            self.population.imsi(i)
                        );
                        (i, "/auc/", body)
                    }
                    Kind::ImsProvision => {
                        let body = format!(
                            r#"{{"imsi":"{}","msisdn":"{}"}}"#,
                            self.population.imsi(i),
                            ims_msisdn(i)
                        );
                        (i, "/ims_subscriber/", body)
                    }
                    _ => {
                        let rule = seq % self.eir_rules.max(1);
                        (rule, "/eir/", eir_rule(rule).1)
                    }
                };
                out.extend_from_slice(
                    format!(
                        "PUT {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n{conn}Content-Length: {}\r\n\r\n{body}",
                        self.host,
                        body.len()
                    )
                    .as_bytes(),
                );
                Sent {
                    kind,
                    subscriber: i,
                    sqn_ms: 0,
                }
            }
            Kind::StirSign => {
                let orig = 12_155_550_000 + seq % 10_000;
                let body = format!(
                    r#"{{"signingRequest":{{"attest":"A","orig":{{"tn":"{orig}"}},"dest":{{"tn":["12355551212"]}},"iat":1767225600}}}}"#
                );
                out.extend_from_slice(
                    format!(
                        "POST /stir/v1/signing HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json\r\n{conn}Content-Length: {}\r\n\r\n{body}",
                        self.host,
                        body.len()
                    )
                    .as_bytes(),
                );
                Sent {
                    kind,
                    subscriber: orig,
                    sqn_ms: 0,
                }
            }
            Kind::StirVerify => {
                out.extend_from_slice(
                    format!(
                        "POST /stir/v1/verification HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json\r\n{conn}Content-Length: {}\r\n\r\n",
                        self.host,
                        self.verify_body.len()
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(self.verify_body.as_bytes());
                Sent {
                    kind,
                    subscriber: seq,
                    sqn_ms: 0,
                }
            }
            Kind::SimAuth => {
                let cards = &self.sim;
                let n = cards
                    .issued
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let (rand, sqn) = cards.challenge(n);
                let m = Milenage::new(&cards.k, &cards.opc);
                let sqn_b = authplane::domain::milenage::sqn_bytes(sqn);
                let o = m.compute(&rand, &sqn_b, &[0x80, 0]);
                let autn = authplane::domain::milenage::autn(&sqn_b, &[0x80, 0], &o);
                let body = format!(
                    r#"{{"rand":"{}","autn":"{}"}}"#,
                    hex::encode(rand),
                    hex::encode(autn)
                );
                out.extend_from_slice(
                    format!(
                        "POST /sim-auth-api/v1/slot/{} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n{conn}Content-Length: {}\r\n\r\n{body}",
                        n % cards.slots.max(1),
                        self.host,
                        body.len()
                    )
                    .as_bytes(),
                );
                Sent {
                    kind,
                    subscriber: n,
                    sqn_ms: 0,
                }
            }
            Kind::Resync => {
                let i = self.pick(rng);
                let (ki, opc) = self.population.keys(i);
                let m = Milenage::new(&ki, &opc);
                let rand: [u8; 16] = rng.random();
                let sqn_ms = rng.random_range(1..1u64 << 40);
                let auts = authplane::domain::milenage::make_auts(&m, &rand, sqn_ms);
                out.extend_from_slice(
                    format!(
                        "GET /auc/aka/resync/imsi/{}/auts/{}/rand/{} HTTP/1.1\r\nHost: {}\r\n{conn}\r\n",
                        self.population.imsi(i),
                        hex::encode(auts),
                        hex::encode(rand),
                        self.host
                    )
                    .as_bytes(),
                );
                Sent {
                    kind,
                    subscriber: i,
                    sqn_ms,
                }
            }
        }
    }

    /// A subscriber of the population, by the configured distribution.
    fn pick(&self, rng: &mut impl Rng) -> u64 {
        let n = self.population.size.max(1);
        match self.pick {
            Pick::Uniform => rng.random_range(0..n),
            Pick::Zipf(s) => match rand_distr::Zipf::new(n as f64, s) {
                // Zipf yields 1..=n.
                Ok(z) => (rng.sample(z) as u64).saturating_sub(1).min(n - 1),
                Err(_) => rng.random_range(0..n),
            },
        }
    }

    /// Checks an answer.
    pub fn check(&self, sent: Sent, status: u16, body: &[u8]) -> Result<(), Wrong> {
        if status != 200 {
            return Err(match status {
                400..=499 => "http_4xx",
                503 => "http_503",
                _ => "http_5xx",
            });
        }
        match sent.kind {
            Kind::Ping => {
                let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| "bad_json")?;
                (v["result"] == "OK").then_some(()).ok_or("wrong_answer")
            }
            Kind::HssProvision => {
                let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| "bad_json")?;
                (v["imsi"] == self.population.imsi(sent.subscriber).as_str())
                    .then_some(())
                    .ok_or("wrong_answer")
            }
            Kind::Aka | Kind::AkaKasme => {
                self.check_vector(sent.subscriber, body, sent.kind == Kind::AkaKasme)
            }
            Kind::S6aAir => self.check_aia(body),
            Kind::CxMar => self.check_maa(body),
            Kind::S13Ecr => check_eca(self.eir_rules, body),
            Kind::ImsProvision => {
                let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| "bad_json")?;
                (v["msisdn"] == ims_msisdn(sent.subscriber).as_str())
                    .then_some(())
                    .ok_or("wrong_answer")
            }
            Kind::EirProvision => {
                let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| "bad_json")?;
                let (_, _, code) = eir_rule(sent.subscriber);
                (v["match_response_code"] == code)
                    .then_some(())
                    .ok_or("wrong_answer")
            }
            Kind::StirSign => self.check_passport(sent.subscriber, body),
            Kind::SimAuth => self.check_sim(sent.subscriber, body),
            Kind::StirVerify => {
                let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| "bad_json")?;
                (v["verificationResponse"]["verstat"] == "TN-Validation-Passed")
                    .then_some(())
                    .ok_or("not_passed")
            }
            Kind::AaaAuthorize => {
                let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| "bad_json")?;
                if v["status"] != "accept" {
                    return Err("aaa_not_accept");
                }
                let routes = v["attributes"].as_array().ok_or("wrong_answer")?;
                let ok = routes.len() == 5
                    && routes.iter().all(|r| {
                        r["value"].as_str().is_some_and(|s| {
                            s.starts_with("Routing:")
                                && s.split(';').any(|p| {
                                    p.strip_prefix("credit-time=")
                                        .and_then(|n| n.parse::<u32>().ok())
                                        .is_some_and(|n| n >= 1)
                                })
                        })
                    });
                ok.then_some(()).ok_or("wrong_answer")
            }
            Kind::AaaSmsAuthorize => {
                let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| "bad_json")?;
                if v["status"] != "accept" {
                    return Err("aaa_not_accept");
                }
                let route = v["attributes"][0]["value"].as_str().unwrap_or("");
                (route.contains(";billed_msgs_cnt:1;") && route.ends_with(";price:0.015"))
                    .then_some(())
                    .ok_or("wrong_answer")
            }
            Kind::AaaAccounting | Kind::AaaSmsAccounting => {
                let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| "bad_json")?;
                (v == serde_json::json!({"status": "accept"}))
                    .then_some(())
                    .ok_or("aaa_not_accept")
            }
            Kind::Resync => {
                let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| "bad_json")?;
                let ok = v["sqn_ms"].as_u64() == Some(sent.sqn_ms)
                    && v["sqn"].as_u64().is_some_and(|s| s >= sent.sqn_ms);
                ok.then_some(()).ok_or("wrong_answer")
            }
        }
    }

    /// A sim-auth answer: RES, CK and IK of authentication `n`.
    fn check_sim(&self, n: u64, body: &[u8]) -> Result<(), Wrong> {
        let cards = &self.sim;
        let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| "bad_json")?;
        if v.get("synchronisation_failure").is_some() {
            return Err("sync_failure");
        }
        let ok = &v["successful_3g_authentication"];
        let (rand, sqn) = cards.challenge(n);
        let o = Milenage::new(&cards.k, &cards.opc).compute(
            &rand,
            &authplane::domain::milenage::sqn_bytes(sqn),
            &[0x80, 0],
        );
        let same = ok["res"] == hex::encode(o.res).as_str()
            && ok["ck"] == hex::encode(o.ck).as_str()
            && ok["ik"] == hex::encode(o.ik).as_str();
        same.then_some(()).ok_or("wrong_answer")
    }

    fn check_passport(&self, orig: u64, body: &[u8]) -> Result<(), Wrong> {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| "bad_json")?;
        let identity = v["signingResponse"]["identity"]
            .as_str()
            .ok_or("wrong_answer")?;
        let (jws, params) = identity.split_once(';').ok_or("bad_identity")?;
        if !params.starts_with("info=<") || !params.ends_with(">;alg=ES256;ppt=shaken") {
            return Err("bad_identity");
        }
        let (input, sig) = jws.rsplit_once('.').ok_or("bad_identity")?;
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| "bad_identity")?;
        let key = self.stir_key.as_ref().ok_or("no_stir_cert")?;
        // ring's P-256 verify (assembly): the generator must outrun the
        // signer. With --stir-verify-every N only every N-th signature is
        // checked (a verify costs three signs); the claims always are.
        if orig.is_multiple_of(self.stir_verify_every.max(1)) {
            ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, key)
                .verify(input.as_bytes(), &sig)
                .map_err(|_| "bad_signature")?;
        }
        let payload = input.split('.').nth(1).ok_or("bad_identity")?;
        let claims: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(payload)
                .map_err(|_| "bad_identity")?,
        )
        .map_err(|_| "bad_identity")?;
        let ok =
            claims["orig"]["tn"] == orig.to_string().as_str() && claims["iat"] == 1_767_225_600;
        ok.then_some(()).ok_or("wrong_answer")
    }

    /// An AIA: Result-Code 2001 and one E-UTRAN vector of the subscriber
    /// its Session-Id names, recomputed.
    fn check_aia(&self, frame: &[u8]) -> Result<(), Wrong> {
        use authplane::domain::diameter::dict::avp;
        let (m, i) = answer_of(frame)?;
        let v = m
            .get(&avp::AUTHENTICATION_INFO)
            .and_then(|a| a.get(&avp::E_UTRAN_VECTOR))
            .ok_or("wrong_vector")?;
        let field = |d| v.get(d).map(|a| a.data).ok_or("wrong_vector");
        let rand: [u8; 16] = field(&avp::RAND)?.try_into().map_err(|_| "wrong_vector")?;
        let autn: [u8; 16] = field(&avp::AUTN)?.try_into().map_err(|_| "wrong_vector")?;
        let o = self.recompute(i, &rand, &autn)?;
        let ok = field(&avp::XRES)? == o.res && field(&avp::KASME)? == kasme_of(&o, &autn);
        ok.then_some(()).ok_or("wrong_vector")
    }

    /// A Cx MAA: Result-Code 2001 and one Digest-AKAv1-MD5 item of the
    /// subscriber its Session-Id names, recomputed.
    fn check_maa(&self, frame: &[u8]) -> Result<(), Wrong> {
        use authplane::domain::diameter::dict::avp;
        let (m, i) = answer_of(frame)?;
        let item = m.get(&avp::SIP_AUTH_DATA_ITEM).ok_or("wrong_vector")?;
        let field = |d| item.get(d).map(|a| a.data).ok_or("wrong_vector");
        let challenge = field(&avp::SIP_AUTHENTICATE)?;
        let rand: [u8; 16] = challenge
            .get(..16)
            .and_then(|r| r.try_into().ok())
            .ok_or("wrong_vector")?;
        let autn: [u8; 16] = challenge
            .get(16..)
            .and_then(|r| r.try_into().ok())
            .ok_or("wrong_vector")?;
        let o = self.recompute(i, &rand, &autn)?;
        let ok = field(&avp::SIP_AUTHORIZATION)? == o.res
            && field(&avp::CONFIDENTIALITY_KEY)? == o.ck
            && field(&avp::INTEGRITY_KEY)? == o.ik
            && item
                .get(&avp::SIP_AUTHENTICATION_SCHEME)
                .and_then(|s| s.utf8())
                == Some("Digest-AKAv1-MD5");
        ok.then_some(()).ok_or("wrong_vector")
    }

    /// Whether this scenario speaks Diameter instead of HTTP.
    pub fn diameter(&self) -> bool {
        matches!(self.kind, Kind::S6aAir | Kind::CxMar | Kind::S13Ecr)
    }

    fn check_vector(&self, i: u64, body: &[u8], with_kasme: bool) -> Result<(), Wrong> {
        #[derive(serde::Deserialize)]
        struct V {
            rand: String,
            autn: String,
            xres: String,
            ck: String,
            ik: String,
            kasme: Option<String>,
        }
        let vs: Vec<V> = serde_json::from_slice(body).map_err(|_| "bad_json")?;
        let v = vs.first().ok_or("wrong_vector")?;
        let h16 = |s: &str| -> Result<[u8; 16], Wrong> {
            let mut a = [0u8; 16];
            hex::decode_to_slice(s, &mut a).map_err(|_| "bad_json")?;
            Ok(a)
        };
        let (rand, autn) = (h16(&v.rand)?, h16(&v.autn)?);
        let o = self.recompute(i, &rand, &autn)?;
        let kasme_ok = match (with_kasme, &v.kasme) {
            (false, _) => true,
            (true, Some(k)) => *k == hex::encode(kasme_of(&o, &autn)),
            (true, None) => false,
        };
        let ok =
            hex::encode(o.res) == v.xres && h16(&v.ck)? == o.ck && h16(&v.ik)? == o.ik && kasme_ok;
        ok.then_some(()).ok_or("wrong_vector")
    }

    /// Subscriber `i`'s Milenage outputs for a vector: the SQN recovered
    /// from AUTN (AK depends on RAND only), then AUTN's MAC-A and a
    /// non-zero SQN checked.
    fn recompute(
        &self,
        i: u64,
        rand: &[u8; 16],
        autn: &[u8; 16],
    ) -> Result<authplane::domain::milenage::Outputs, Wrong> {
        let (ki, opc) = self.population.keys(i);
        let m = Milenage::new(&ki, &opc);
        let amf = [autn[6], autn[7]];
        let ak = m.compute(rand, &[0; 6], &amf).ak;
        let mut sqn = [0u8; 6];
        for (k, b) in sqn.iter_mut().enumerate() {
            *b = autn[k] ^ ak[k];
        }
        let o = m.compute(rand, &sqn, &amf);
        (autn[8..] == o.mac_a && sqn_to_u64(&sqn) > 0)
            .then_some(o)
            .ok_or("wrong_vector")
    }
}

/// An answer of 2001, and the index its Session-Id (`load;INDEX;SEQ`)
/// names.
fn answer_of(frame: &[u8]) -> Result<(authplane::domain::diameter::Message<'_>, u64), Wrong> {
    use authplane::domain::diameter::{dict::avp, Message};
    let m = Message::parse(frame).map_err(|_| "bad_diameter")?;
    if m.u32(&avp::RESULT_CODE) != Some(2001) {
        return Err("diameter_error");
    }
    let i: u64 = m
        .text(&avp::SESSION_ID)
        .and_then(|s| s.split(';').nth(1))
        .and_then(|i| i.parse().ok())
        .ok_or("wrong_answer")?;
    Ok((m, i))
}

/// An ECA: Result-Code 2001 and the Equipment-Status of the rule its
/// Session-Id names (or no rule's).
fn check_eca(rules: u64, frame: &[u8]) -> Result<(), Wrong> {
    use authplane::domain::diameter::dict::avp;
    let (m, rule) = answer_of(frame)?;
    let expected = if rule < rules {
        eir_rule(rule).2
    } else {
        EIR_NO_MATCH
    };
    (m.u32(&avp::EQUIPMENT_STATUS) == Some(u32::from(expected)))
        .then_some(())
        .ok_or("wrong_answer")
}

/// The MSISDN `ims-provision` gives IMS subscriber `i`.
fn ims_msisdn(i: u64) -> String {
    format!("88{i:010}")
}

/// MCC 001, MNC 01 as a PLMN id.
const PLMN_00101: [u8; 3] = [0x00, 0xf1, 0x10];

/// KASME for PLMN 00101 of a vector (SQN ⊕ AK is AUTN's first 6 bytes).
fn kasme_of(o: &authplane::domain::milenage::Outputs, autn: &[u8; 16]) -> [u8; 32] {
    let mut sqn_xor_ak = [0u8; 6];
    sqn_xor_ak.copy_from_slice(&autn[..6]);
    authplane::domain::kdf::kasme(&o.ck, &o.ik, &PLMN_00101, &sqn_xor_ak)
}

/// The CER the load generator opens each Diameter connection with.
pub fn cer() -> Vec<u8> {
    use authplane::domain::diameter::{app, command, dict::avp, Builder};
    let mut b = Builder::request(command::CAPABILITIES_EXCHANGE, app::BASE, 0, 0, 0);
    b.text(&avp::ORIGIN_HOST, "load.epc.test")
        .text(&avp::ORIGIN_REALM, "epc.test")
        .address(&avp::HOST_IP_ADDRESS, &[127, 0, 0, 1])
        .u32(&avp::VENDOR_ID, 0)
        .text(&avp::PRODUCT_NAME, "authplane-load")
        .u32(
            &avp::SUPPORTED_VENDOR_ID,
            authplane::domain::diameter::dict::TGPP,
        );
    for a in [app::S6A, app::CX, app::S13] {
        b.begin(&avp::VENDOR_SPECIFIC_APPLICATION_ID)
            .u32(&avp::VENDOR_ID, authplane::domain::diameter::dict::TGPP)
            .u32(&avp::AUTH_APPLICATION_ID, a)
            .end();
    }
    b.finish()
}

/// A request's common AVPs: Session-Id naming index `i`,
/// Vendor-Specific-Application-Id, Auth-Session-State, origin and
/// destination realm.
fn request((command, app): (u32, u32), i: u64, seq: u64) -> authplane::domain::diameter::Builder {
    use authplane::domain::diameter::{dict::avp, flag, Builder};
    let hop = seq as u32;
    let mut b = Builder::request(command, app, flag::PROXIABLE, hop, hop);
    b.text(&avp::SESSION_ID, &format!("load;{i};{seq}"));
    if app != authplane::domain::diameter::app::S6A {
        b.begin(&avp::VENDOR_SPECIFIC_APPLICATION_ID)
            .u32(&avp::VENDOR_ID, authplane::domain::diameter::dict::TGPP)
            .u32(&avp::AUTH_APPLICATION_ID, app)
            .end();
    }
    b.u32(&avp::AUTH_SESSION_STATE, 1)
        .text(&avp::ORIGIN_HOST, "load.epc.test")
        .text(&avp::ORIGIN_REALM, "epc.test")
        .text(&avp::DESTINATION_REALM, "authplane.localdomain");
    b
}

/// A Cx MAR for one Digest-AKAv1-MD5 item of IMS subscriber `i`.
fn mar(imsi: &str, i: u64, seq: u64) -> Vec<u8> {
    use authplane::domain::diameter::{app, command, dict::avp};
    let mut b = request((command::MULTIMEDIA_AUTH, app::CX), i, seq);
    b.text(
        &avp::USER_NAME,
        &format!("{imsi}@ims.mnc001.mcc001.3gppnetwork.org"),
    )
    .text(&avp::PUBLIC_IDENTITY, &format!("tel:{}", ims_msisdn(i)))
    .u32(&avp::SIP_NUMBER_AUTH_ITEMS, 1)
    .begin(&avp::SIP_AUTH_DATA_ITEM)
    .text(&avp::SIP_AUTHENTICATION_SCHEME, "Digest-AKAv1-MD5")
    .end()
    .text(&avp::SERVER_NAME, "sip:scscf.load.test");
    b.finish()
}

/// An S13 ECR for `imei` (and `imsi`), naming EIR rule `rule`.
fn ecr(imei: &str, imsi: &str, rule: u64, seq: u64) -> Vec<u8> {
    use authplane::domain::diameter::{app, command, dict::avp};
    let mut b = request((command::ME_IDENTITY_CHECK, app::S13), rule, seq);
    b.text(&avp::USER_NAME, imsi)
        .begin(&avp::TERMINAL_INFORMATION)
        .text(&avp::IMEI, imei)
        .end();
    b.finish()
}

/// An AIR for one E-UTRAN vector of subscriber `i` (its index in the
/// Session-Id, so the answer says whose it is).
fn air(imsi: &str, i: u64, seq: u64) -> Vec<u8> {
    use authplane::domain::diameter::{app, command, dict::avp};
    let mut b = request((command::AUTHENTICATION_INFORMATION, app::S6A), i, seq);
    b.text(&avp::USER_NAME, imsi)
        .bytes(&avp::VISITED_PLMN_ID, &PLMN_00101)
        .begin(&avp::REQUESTED_EUTRAN_AUTHENTICATION_INFO)
        .u32(&avp::NUMBER_OF_REQUESTED_VECTORS, 1)
        .u32(&avp::IMMEDIATE_RESPONSE_PREFERRED, 0)
        .end();
    b.finish()
}
