//! Typed records over the byte tables: every stored value is
//! `schema version u16 | fields`, each field `tag u8 | length u16 | bytes`.
//! A reader skips tags it does not know and defaults fields that are
//! absent, so adding a field keeps every older file readable; a record of
//! a newer schema than the reader knows is refused, not misread.

use super::codec::{DecodeError, Reader, TableId};

/// A record type stored in one table.
pub trait Record: Sized {
    /// The table holding this type.
    const TABLE: TableId;
    /// The newest schema this code writes and reads.
    const SCHEMA: u16;

    /// Writes every field present.
    fn encode_fields(&self, w: &mut FieldWriter);

    /// Builds the record from the fields of a value of schema `schema`
    /// (≤ `SCHEMA`).
    fn decode_fields(schema: u16, fields: &Fields<'_>) -> Result<Self, RecordError>;

    fn to_bytes(&self) -> Vec<u8> {
        let mut w = FieldWriter {
            out: Vec::with_capacity(128),
        };
        w.out.extend_from_slice(&Self::SCHEMA.to_le_bytes());
        self.encode_fields(&mut w);
        w.out
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader::new(bytes);
        let schema = r.u16()?;
        if schema > Self::SCHEMA {
            return Err(RecordError::NewerSchema {
                found: schema,
                known: Self::SCHEMA,
            });
        }
        let mut fields = Fields::default();
        while r.remaining() > 0 {
            let tag = r.u8()?;
            let len = usize::from(r.u16()?);
            let value = r.take(len)?;
            if let Some(slot) = fields.by_tag.get_mut(usize::from(tag)) {
                *slot = Some(value);
            }
        }
        Self::decode_fields(schema, &fields)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("stored record is damaged: {0}")]
    Decode(#[from] DecodeError),
    #[error("stored record has schema {found}, newer than this server's {known}")]
    NewerSchema { found: u16, known: u16 },
    #[error("stored field {0} is invalid")]
    Field(&'static str),
}

/// Writes fields of a record.
#[derive(Debug)]
pub struct FieldWriter {
    out: Vec<u8>,
}

impl FieldWriter {
    pub fn bytes(&mut self, tag: u8, value: &[u8]) {
        let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
        self.out.push(tag);
        self.out.extend_from_slice(&len.to_le_bytes());
        self.out
            .extend_from_slice(&value[..usize::from(len).min(value.len())]);
    }

    pub fn str(&mut self, tag: u8, value: Option<&str>) {
        if let Some(v) = value {
            self.bytes(tag, v.as_bytes());
        }
    }

    pub fn u64(&mut self, tag: u8, value: u64) {
        // Little-endian with trailing zero bytes dropped.
        let b = value.to_le_bytes();
        let n = 8 - (value.leading_zeros() / 8) as usize;
        self.bytes(tag, &b[..n]);
    }

    pub fn bool(&mut self, tag: u8, value: bool) {
        if value {
            self.bytes(tag, &[1]);
        }
    }
}

/// The fields of one stored value, by tag.
#[derive(Debug)]
pub struct Fields<'a> {
    by_tag: [Option<&'a [u8]>; 64],
}

impl Default for Fields<'_> {
    fn default() -> Self {
        Fields { by_tag: [None; 64] }
    }
}

impl<'a> Fields<'a> {
    pub fn bytes(&self, tag: u8) -> Option<&'a [u8]> {
        self.by_tag.get(usize::from(tag)).copied().flatten()
    }

    pub fn str(&self, tag: u8, name: &'static str) -> Result<Option<String>, RecordError> {
        self.bytes(tag)
            .map(|b| {
                std::str::from_utf8(b)
                    .map(str::to_owned)
                    .map_err(|_| RecordError::Field(name))
            })
            .transpose()
    }

    pub fn u64(&self, tag: u8, name: &'static str) -> Result<u64, RecordError> {
        match self.bytes(tag) {
            None => Ok(0),
            Some(b) if b.len() <= 8 => {
                let mut a = [0u8; 8];
                a[..b.len()].copy_from_slice(b);
                Ok(u64::from_le_bytes(a))
            }
            Some(_) => Err(RecordError::Field(name)),
        }
    }

    pub fn bool(&self, tag: u8) -> bool {
        self.bytes(tag).is_some_and(|b| b.first() == Some(&1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Schema 1 of a record, as an older server wrote it.
    #[derive(Debug, PartialEq)]
    struct PlanV1 {
        name: String,
        quota: u64,
    }

    /// Schema 2 adds `roaming`.
    #[derive(Debug, PartialEq)]
    struct PlanV2 {
        name: String,
        quota: u64,
        roaming: bool,
    }

    impl Record for PlanV1 {
        const TABLE: TableId = 9;
        const SCHEMA: u16 = 1;
        fn encode_fields(&self, w: &mut FieldWriter) {
            w.str(1, Some(&self.name));
            w.u64(2, self.quota);
        }
        fn decode_fields(_: u16, f: &Fields<'_>) -> Result<Self, RecordError> {
            Ok(PlanV1 {
                name: f.str(1, "name")?.unwrap_or_default(),
                quota: f.u64(2, "quota")?,
            })
        }
    }

    impl Record for PlanV2 {
        const TABLE: TableId = 9;
        const SCHEMA: u16 = 2;
        fn encode_fields(&self, w: &mut FieldWriter) {
            w.str(1, Some(&self.name));
            w.u64(2, self.quota);
            w.bool(3, self.roaming);
        }
        fn decode_fields(_: u16, f: &Fields<'_>) -> Result<Self, RecordError> {
            Ok(PlanV2 {
                name: f.str(1, "name")?.unwrap_or_default(),
                quota: f.u64(2, "quota")?,
                roaming: f.bool(3),
            })
        }
    }

    #[test]
    fn a_value_written_by_the_previous_schema_reads_with_defaults() {
        let old = PlanV1 {
            name: "gold".into(),
            quota: 1 << 40,
        }
        .to_bytes();
        assert_eq!(
            PlanV2::from_bytes(&old).unwrap(),
            PlanV2 {
                name: "gold".into(),
                quota: 1 << 40,
                roaming: false
            }
        );
    }

    #[test]
    fn a_newer_schema_is_refused_and_unknown_tags_are_skipped() {
        let new = PlanV2 {
            name: "x".into(),
            quota: 3,
            roaming: true,
        }
        .to_bytes();
        assert_eq!(
            PlanV1::from_bytes(&new),
            Err(RecordError::NewerSchema { found: 2, known: 1 })
        );
        // Same schema number, extra tag: skipped.
        let mut bytes = PlanV1 {
            name: "y".into(),
            quota: 0,
        }
        .to_bytes();
        bytes.extend_from_slice(&[40, 1, 0, 9]);
        assert_eq!(PlanV1::from_bytes(&bytes).unwrap().name, "y");
    }

    #[test]
    fn damaged_values_are_errors() {
        let bytes = PlanV2 {
            name: "abc".into(),
            quota: 7,
            roaming: true,
        }
        .to_bytes();
        for cut in 1..bytes.len() {
            let _ = PlanV2::from_bytes(&bytes[..cut]);
        }
        assert!(PlanV2::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    }
}
