//! PATCH semantics once, for rows stored as JSON: an absent key is
//! unchanged, `null` clears an optional field (and is a type error for a
//! required one), an unknown key or a wrong type is a 400 naming it, and a
//! body may carry the row's own id and `last_modified` (ignored, so a GET
//! answer can be sent back).

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{Body, TableDef, TableError};

/// Keys every row answers with but no body sets.
pub const LAST_MODIFIED: &str = "last_modified";

/// `row` with `body` applied.
pub fn merge<R: Serialize + DeserializeOwned>(
    row: &R,
    body: &Body,
    def: &TableDef,
) -> Result<R, TableError> {
    let mut current = match serde_json::to_value(row) {
        Ok(Value::Object(m)) => m,
        _ => {
            return Err(TableError::Internal(format!(
                "{} does not serialize",
                def.name
            )))
        }
    };
    // The row's fields are its type's own: a field left out of the row's
    // JSON when empty is still one.
    let fields = serde_aux::serde_introspection::serde_introspect::<R>();
    for (k, v) in body {
        if k == def.id_field || k == LAST_MODIFIED {
            continue;
        }
        if !fields.contains(&k.as_str()) {
            return Err(TableError::Unknown {
                field: k.clone(),
                table: def.name,
            });
        }
        current.insert(k.clone(), v.clone());
    }
    from_object(current)
}

/// A row from a JSON object, a type error naming the field.
pub fn from_object<R: DeserializeOwned>(m: Map<String, Value>) -> Result<R, TableError> {
    serde_path_to_error::deserialize(Value::Object(m)).map_err(|e| {
        let field = e.path().to_string();
        TableError::field(field, e.into_inner().to_string())
    })
}

/// A 400 naming the first required key that is absent or `null`.
pub fn require(body: &Body, required: &[&'static str]) -> Result<(), TableError> {
    match required
        .iter()
        .find(|k| body.get(**k).is_none_or(Value::is_null))
    {
        Some(k) => Err(TableError::Required(k)),
        None => Ok(()),
    }
}

/// `last_modified` as PyHSS writes it (`YYYY-MM-DDTHH:MM:SSZ`, UTC).
pub fn timestamp(unix_seconds: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_seconds);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The fields of a stored JSON row ([`super::TableDef::fields`]).
pub fn fields(bytes: &[u8]) -> Option<Map<String, Value>> {
    serde_json::from_slice(bytes).ok()
}

/// Encodes a JSON row.
pub fn encode<R: Serialize>(row: &R) -> Result<Vec<u8>, TableError> {
    serde_json::to_vec(row).map_err(|e| TableError::Internal(e.to_string()))
}

/// Decodes a JSON row (a damaged one is the server's fault).
pub fn decode<R: DeserializeOwned>(bytes: &[u8], def: &TableDef) -> Result<R, TableError> {
    serde_json::from_slice(bytes).map_err(|e| {
        tracing::error!(table = def.name, error = %e, "damaged record");
        TableError::Damaged(def.name)
    })
}

/// The four [`super::Row`] methods of a row stored as JSON with a
/// `last_modified` field.
#[macro_export]
macro_rules! json_row {
    () => {
        fn apply(
            &mut self,
            body: &$crate::table::Body,
            _: &Self::Env,
        ) -> Result<(), $crate::table::TableError> {
            *self = $crate::table::json::merge(self, body, Self::DEF)?;
            Ok(())
        }
        fn stamp(&mut self, now: u64) {
            self.last_modified = $crate::table::json::timestamp(now);
        }
        fn encode(&self) -> Result<Vec<u8>, $crate::table::TableError> {
            $crate::table::json::encode(self)
        }
        fn decode(bytes: &[u8]) -> Result<Self, $crate::table::TableError> {
            $crate::table::json::decode(bytes, Self::DEF)
        }
    };
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize, Default)]
    #[serde(default)]
    struct Probe {
        a: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        b: Option<String>,
    }

    #[test]
    fn fields_include_those_left_out_when_empty() {
        let f = serde_aux::serde_introspection::serde_introspect::<Probe>();
        assert_eq!(f, ["a", "b"]);
    }
}
