//! The Equipment Identity Register: PyHSS's `/eir` rules and the check S13
//! calls. A rule matches an IMEI exactly (`regex_mode` 0, found
//! through an index) or by a regular expression (`regex_mode` 1, matched
//! from the start, as Python's `re.match`), optionally only for an IMSI;
//! exact rules win, then regex rules in id order; `match_response_code`
//! is the Equipment-Status (0 whitelisted, 1 blacklisted, 2 greylisted).
//! Regular expressions run on a linear-time engine (the `regex` crate), so
//! no pattern can backtrack catastrophically; each is compiled once, when
//! its catalog version is built, and each core keeps every regex rule's
//! pattern in one `RegexSet` until the rules change, so a check passes
//! over the IMEI once whatever the number of regex rules.
//!
//! `/eir/lookup_imei/{imei}` answers from the TAC database
//! (`hss.tac_database_csv`), loaded at start.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::tables;
use crate::domain::api_error::ApiError;
use crate::domain::http1::Request;
use crate::domain::router::Params;
use crate::runtime::{CatalogView, LocalBoxFuture};
use crate::server::crud::{Paths, Resource};
use crate::server::{Ctx, Reply};
use crate::table::{self, json, Body, Multi, Placement, Row, TableDef, TableError};

/// Largest compiled regular expression.
pub const MAX_REGEX_BYTES: usize = 1 << 20;

/// A rule's compiled patterns.
#[derive(Debug)]
pub struct Compiled {
    imei: regex::Regex,
    imsi: Option<regex::Regex>,
}

/// An EIR rule, with PyHSS's keys.
#[derive(Debug, Clone, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct EirRule {
    pub eir_id: u64,
    pub imei: String,
    /// Empty: any IMSI.
    #[serde(default)]
    pub imsi: String,
    pub regex_mode: u8,
    pub match_response_code: u8,
    #[serde(default)]
    pub last_modified: String,
    /// The patterns of a regex rule, compiled when the row is decoded.
    #[serde(skip)]
    compiled: Option<Arc<Compiled>>,
}

/// `pattern` as Python's `re.match` applies it: anchored at the start.
fn compile(field: &'static str, pattern: &str) -> Result<regex::Regex, TableError> {
    regex::RegexBuilder::new(&format!("^(?:{pattern})"))
        .size_limit(MAX_REGEX_BYTES)
        .build()
        .map_err(|e| TableError::field(field, format!("not a usable regular expression: {e}")))
}

impl EirRule {
    fn compiled(&self) -> Result<Option<Arc<Compiled>>, TableError> {
        if self.regex_mode != 1 {
            return Ok(None);
        }
        let imsi = (!self.imsi.is_empty())
            .then(|| compile("imsi", &self.imsi))
            .transpose()?;
        Ok(Some(Arc::new(Compiled {
            imei: compile("imei", &self.imei)?,
            imsi,
        })))
    }

    /// Whether the rule applies to (`imsi`, `imei`).
    fn matches(&self, imsi: &str, imei: &str) -> bool {
        match (&self.compiled, self.regex_mode) {
            (Some(c), 1) => {
                c.imei.is_match(imei) && c.imsi.as_ref().is_none_or(|re| re.is_match(imsi))
            }
            (_, 0) => self.imei == imei && (self.imsi.is_empty() || self.imsi == imsi),
            _ => false,
        }
    }
}

static EIR: TableDef = TableDef {
    name: "eir",
    noun: "EIR rule",
    id_field: "eir_id",
    store: tables::EIR,
    counter: tables::META_EIR_NEXT,
    fields: crate::table::json::fields,
};

impl Row for EirRule {
    const DEF: &'static TableDef = &EIR;
    const PLACEMENT: Placement<Self> = Placement::Catalog;
    const REQUIRED: &'static [&'static str] = &["imei", "regex_mode", "match_response_code"];
    const MULTI: &'static [Multi<Self>] = &[Multi {
        field: "imei",
        store: tables::EIR_IMEI_INDEX,
        key: |r| (r.regex_mode == 0).then(|| r.imei.clone()),
    }];
    type Env = ();

    fn id(&self) -> u64 {
        self.eir_id
    }
    fn set_id(&mut self, id: u64) {
        self.eir_id = id;
    }
    fn blank() -> Self {
        EirRule::default()
    }
    fn apply(&mut self, body: &Body, _: &()) -> Result<(), TableError> {
        *self = json::merge(self, body, Self::DEF)?;
        Ok(())
    }
    fn check(&self) -> Result<(), TableError> {
        if self.match_response_code > 2 {
            return Err(TableError::field(
                "match_response_code",
                "must be 0 (whitelist), 1 (blacklist) or 2 (greylist)",
            ));
        }
        self.check_quirks()
    }
    /// PyHSS stores any answer code; an equipment check answers a code
    /// beyond 2 as no match ([`check`]).
    fn check_quirks(&self) -> Result<(), TableError> {
        if self.regex_mode > 1 {
            return Err(TableError::field(
                "regex_mode",
                "must be 0 (exact) or 1 (regex)",
            ));
        }
        for (field, v) in [("imei", &self.imei), ("imsi", &self.imsi)] {
            if v.len() > 60 {
                return Err(TableError::field(field, "longer than 60 characters"));
            }
        }
        if self.imei.is_empty() {
            return Err(TableError::field("imei", "must not be empty"));
        }
        self.compiled().map(|_| ())
    }
    fn stamp(&mut self, now: u64) {
        self.last_modified = json::timestamp(now);
    }
    fn encode(&self) -> Result<Vec<u8>, TableError> {
        json::encode(self)
    }
    fn decode(bytes: &[u8]) -> Result<Self, TableError> {
        let mut rule: EirRule = json::decode(bytes, Self::DEF)?;
        rule.compiled = rule.compiled().map_err(|e| {
            tracing::error!(eir_id = rule.eir_id, error = %e, "stored EIR rule does not compile");
            TableError::Damaged("eir")
        })?;
        Ok(rule)
    }
}

impl Resource for EirRule {
    const PATHS: Paths = Paths {
        base: "/eir",
        list: "/eir/list",
        item: "/eir/{eir_id}",
    };
}

/// The regular-expression rules of one version of the EIR rows, in id
/// order, and their IMEI patterns as one `RegexSet`: one pass over an IMEI
/// finds every rule whose pattern matches (None when the set would pass
/// its size limit: the rules are then tried one by one).
struct RegexRules {
    rules: Vec<Arc<EirRule>>,
    set: Option<regex::RegexSet>,
}

/// Largest compiled set of every regex rule's IMEI pattern.
const MAX_SET_BYTES: usize = 64 << 20;

impl RegexRules {
    fn of(rows: &Rows) -> RegexRules {
        let rules: Vec<Arc<EirRule>> = rows
            .values()
            .filter(|r| r.regex_mode == 1)
            .cloned()
            .collect();
        let set = regex::RegexSetBuilder::new(rules.iter().map(|r| format!("^(?:{})", r.imei)))
            .size_limit(MAX_SET_BYTES)
            .dfa_size_limit(MAX_SET_BYTES)
            .build()
            .map_err(|e| {
                tracing::warn!(rules = rules.len(), error = %e, "EIR: regex rules tried one by one");
            })
            .ok();
        RegexRules { rules, set }
    }

    /// The first rule in id order that applies to (`imsi`, `imei`).
    fn first(&self, imsi: &str, imei: &str) -> Option<&EirRule> {
        match &self.set {
            Some(set) => set
                .matches(imei)
                .iter()
                .filter_map(|i| self.rules.get(i))
                .find(|r| r.matches(imsi, imei))
                .map(|r| &**r),
            None => self
                .rules
                .iter()
                .find(|r| r.matches(imsi, imei))
                .map(|r| &**r),
        }
    }
}

/// The EIR rows of one catalog version.
type Rows = imbl::OrdMap<u64, Arc<EirRule>>;

thread_local! {
    /// This core's regex rules, with the rows they were taken from: taken
    /// again only when the rules change, so a check neither walks every
    /// rule nor tries each pattern apart.
    static REGEX_RULES: std::cell::RefCell<Option<(Rows, std::rc::Rc<RegexRules>)>> =
        const { std::cell::RefCell::new(None) };
}

fn regex_rules(rows: &Rows) -> std::rc::Rc<RegexRules> {
    REGEX_RULES.with(|cell| {
        let Ok(mut cached) = cell.try_borrow_mut() else {
            return std::rc::Rc::new(RegexRules::of(rows));
        };
        if let Some((of, rules)) = cached.as_ref() {
            if of.ptr_eq(rows) {
                return rules.clone();
            }
        }
        let rules = std::rc::Rc::new(RegexRules::of(rows));
        *cached = Some((rows.clone(), rules.clone()));
        rules
    })
}

/// The Equipment-Status for (`imsi`, `imei`) under the rules of `view`:
/// the first exact rule that applies, else the first regex rule in id
/// order, else `no_match`.
pub fn check(view: &CatalogView, imsi: &str, imei: &str, no_match: u8) -> u8 {
    // A code beyond 2 (stored under PyHSS's quirks) is no Equipment-Status.
    let status = |code: u8| if code > 2 { no_match } else { code };
    if let Ok(exact) = table::find_all::<EirRule>(view, "imei", imei) {
        if let Some(r) = exact.iter().find(|r| r.matches(imsi, imei)) {
            return status(r.match_response_code);
        }
    }
    table::typed_rows::<EirRule>(view)
        .and_then(|t| {
            regex_rules(&t.rows)
                .first(imsi, imei)
                .map(|r| status(r.match_response_code))
        })
        .unwrap_or(no_match)
}

/// Device make and model by TAC (the IMEI's first 8 digits, or 6).
#[derive(Debug, Default)]
pub struct TacDatabase {
    by_tac: HashMap<String, (String, String)>,
}

impl TacDatabase {
    /// Reads `tac,make,model` lines (quotes and backslashes dropped, as
    /// PyHSS reads them); a line without three fields is skipped.
    pub fn parse(text: &str) -> TacDatabase {
        let mut by_tac = HashMap::new();
        for line in text.lines() {
            let clean: String = line
                .chars()
                .filter(|c| !matches!(c, '"' | '\'' | '\\'))
                .collect();
            let mut fields = clean.trim_end().splitn(3, ',');
            if let (Some(tac), Some(make), Some(model)) =
                (fields.next(), fields.next(), fields.next())
            {
                by_tac.insert(
                    tac.trim().to_owned(),
                    (make.trim_start().to_owned(), model.trim_start().to_owned()),
                );
            }
        }
        TacDatabase { by_tac }
    }

    /// Loads the file `hss.tac_database_csv` names.
    pub fn load(path: &std::path::Path) -> Result<TacDatabase, String> {
        std::fs::read_to_string(path)
            .map(|t| TacDatabase::parse(&t))
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn len(&self) -> usize {
        self.by_tac.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_tac.is_empty()
    }

    fn lookup(&self, imei: &str) -> Option<(&str, &(String, String))> {
        [8, 6].into_iter().find_map(|n| {
            let tac = imei.get(..n)?;
            self.by_tac.get_key_value(tac).map(|(k, v)| (k.as_str(), v))
        })
    }
}

/// A device as PyHSS answers it: `{"tacPrefix", "name", "model"}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Device<'d> {
    tac_prefix: &'d str,
    name: &'d str,
    model: &'d str,
}

impl TacDatabase {
    /// The device `imei`'s TAC names, as answered.
    pub fn device(&self, imei: &str) -> Option<serde_json::Value> {
        let (tac, (name, model)) = self.lookup(imei)?;
        serde_json::to_value(Device {
            tac_prefix: tac,
            name,
            model,
        })
        .ok()
    }
}

/// `GET /eir/lookup_imei/{imei}`: `{"tacPrefix", "name", "model"}`.
pub fn lookup_imei<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let db = ctx.extension::<TacDatabase>().ok_or_else(|| {
            ApiError::Gone("EIR CSV file is not defined (hss.tac_database_csv)".into())
        })?;
        let imei = params.get("imei").unwrap_or_default();
        let device = db.device(imei).ok_or(ApiError::NotFound)?;
        reply.json(200, &device)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view_of(rules: &[(u64, &str, &str, u8, u8)]) -> CatalogView {
        let mut t = table::Tables::default();
        t.declare::<EirRule>().unwrap();
        let mut v = CatalogView::default().with_deriver(t.deriver());
        for &(id, imei, imsi, mode, code) in rules {
            let rule = EirRule {
                eir_id: id,
                imei: imei.into(),
                imsi: imsi.into(),
                regex_mode: mode,
                match_response_code: code,
                ..EirRule::default()
            };
            rule.check_quirks().unwrap();
            let ops = table::insert_ops(&v, &rule).unwrap();
            v = v.with(&ops);
        }
        v
    }

    #[test]
    fn exact_rules_win_then_regex_rules_in_id_order() {
        let v = view_of(&[
            (1, "^777.*", "^001010000000001$", 1, 1),
            (2, "35345678901234", "", 0, 0),
            (3, "35345678901234", "001010000000009", 0, 2),
            (4, "^35.*", "", 1, 2),
        ]);
        assert_eq!(check(&v, "001010000000001", "777000000000001", 2), 1);
        // The IMSI of a regex rule must match too.
        assert_eq!(check(&v, "001010000000002", "777000000000001", 0), 0);
        assert_eq!(check(&v, "001010000000005", "35345678901234", 1), 0);
        assert_eq!(check(&v, "001010000000005", "35999999999999", 0), 2);
        // Matched from the start, as re.match.
        assert_eq!(check(&v, "001010000000005", "1777000000000", 1), 1);
        assert_eq!(check(&v, "001010000000005", "1777000000000", 0), 0);
    }

    #[test]
    fn a_code_beyond_two_is_refused_and_answered_as_no_match_when_stored() {
        let rule = EirRule {
            imei: "35345678901234".into(),
            match_response_code: 3,
            ..EirRule::default()
        };
        assert!(rule.check().is_err());
        assert!(rule.check_quirks().is_ok());
        let v = view_of(&[(1, "35345678901234", "", 0, 3), (2, "^1.*", "", 1, 7)]);
        assert_eq!(check(&v, "001010000000001", "35345678901234", 2), 2);
        assert_eq!(check(&v, "001010000000001", "35345678901234", 0), 0);
        assert_eq!(check(&v, "001010000000001", "12345678901234", 1), 1);
    }

    #[test]
    fn a_pathological_pattern_matches_in_linear_time_or_is_refused() {
        let rule = EirRule {
            imei: "(a*)*b".into(),
            regex_mode: 1,
            ..EirRule::default()
        };
        assert!(rule.check().is_ok());
        let v = view_of(&[(1, "(a*)*b", "", 1, 1)]);
        assert_eq!(check(&v, "1", &"a".repeat(60), 0), 0);
        let huge = EirRule {
            imei: "(\\w{1000}){1000}".into(),
            regex_mode: 1,
            ..EirRule::default()
        };
        assert!(huge.check().is_err());
        let broken = EirRule {
            imei: "([".into(),
            regex_mode: 1,
            ..EirRule::default()
        };
        assert!(broken.check().is_err());
    }

    #[test]
    fn tac_lookup_tries_eight_then_six_digits() {
        let db = TacDatabase::parse("35345678,\"Acme\", Phone 1\n353456,Acme,Older\nbad line\n");
        assert_eq!(db.len(), 2);
        assert_eq!(
            db.lookup("353456789012345").map(|(t, _)| t),
            Some("35345678")
        );
        assert_eq!(db.lookup("353456009012345").unwrap().1 .1, "Older");
        assert!(db.lookup("999999999999999").is_none());
    }
}
