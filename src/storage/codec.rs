//! The change format shared by the WAL and the writers: a batch of puts
//! and deletes, applied atomically. Encoding is little-endian; decoding is
//! total (a bounds-checked reader: any byte string gives a batch or an
//! error, never a panic).

/// A table within a shard (AuC, subscriber, an index, ...).
pub type TableId = u8;

/// One change to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put {
        table: TableId,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        table: TableId,
        key: Vec<u8>,
    },
}

impl Op {
    pub fn table(&self) -> TableId {
        match self {
            Op::Put { table, .. } | Op::Delete { table, .. } => *table,
        }
    }

    pub fn key(&self) -> &[u8] {
        match self {
            Op::Put { key, .. } | Op::Delete { key, .. } => key,
        }
    }
}

/// Longest key accepted.
pub const MAX_KEY_BYTES: usize = u16::MAX as usize;
/// Largest value accepted.
pub const MAX_VALUE_BYTES: usize = 16 * 1024 * 1024;
/// Most operations in one batch.
pub const MAX_BATCH_OPS: usize = u16::MAX as usize;

const OP_PUT: u8 = 1;
const OP_DELETE: u8 = 2;

/// Why bytes are not a valid batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated")]
    Truncated,
    #[error("unknown operation kind {0}")]
    UnknownOp(u8),
    #[error("{0} bytes left over after the batch")]
    Trailing(usize),
}

/// Why a batch cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("key of {0} bytes is over the limit of {MAX_KEY_BYTES}")]
    KeyTooLong(usize),
    #[error("value of {0} bytes is over the limit of {MAX_VALUE_BYTES}")]
    ValueTooLarge(usize),
    #[error("batch of {0} operations is over the limit of {MAX_BATCH_OPS}")]
    TooManyOps(usize),
}

/// A bounds-checked little-endian reader.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.bytes.len() {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
}

/// Appends the encoding of `ops` to `out`.
pub fn encode_batch(ops: &[Op], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let count = u16::try_from(ops.len()).map_err(|_| EncodeError::TooManyOps(ops.len()))?;
    for op in ops {
        if op.key().len() > MAX_KEY_BYTES {
            return Err(EncodeError::KeyTooLong(op.key().len()));
        }
        if let Op::Put { value, .. } = op {
            if value.len() > MAX_VALUE_BYTES {
                return Err(EncodeError::ValueTooLarge(value.len()));
            }
        }
    }
    out.extend_from_slice(&count.to_le_bytes());
    for op in ops {
        let (kind, table, key, value) = match op {
            Op::Put { table, key, value } => (OP_PUT, *table, key, Some(value)),
            Op::Delete { table, key } => (OP_DELETE, *table, key, None),
        };
        out.push(kind);
        out.push(table);
        // Lengths were checked above.
        out.extend_from_slice(&(key.len() as u16).to_le_bytes());
        out.extend_from_slice(key);
        if let Some(v) = value {
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(v);
        }
    }
    Ok(())
}

/// Decodes a whole batch; every byte must belong to it.
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<Op>, DecodeError> {
    let mut r = Reader::new(bytes);
    let count = r.u16()?;
    let mut ops = Vec::with_capacity(usize::from(count).min(bytes.len() / 4));
    for _ in 0..count {
        let kind = r.u8()?;
        let table = r.u8()?;
        let key_len = usize::from(r.u16()?);
        let key = r.take(key_len)?.to_vec();
        match kind {
            OP_PUT => {
                let len = r.u32()? as usize;
                if len > MAX_VALUE_BYTES {
                    return Err(DecodeError::Truncated);
                }
                let value = r.take(len)?.to_vec();
                ops.push(Op::Put { table, key, value });
            }
            OP_DELETE => ops.push(Op::Delete { table, key }),
            other => return Err(DecodeError::UnknownOp(other)),
        }
    }
    match r.remaining() {
        0 => Ok(ops),
        n => Err(DecodeError::Trailing(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (
                any::<u8>(),
                prop::collection::vec(any::<u8>(), 0..20),
                prop::collection::vec(any::<u8>(), 0..40)
            )
                .prop_map(|(table, key, value)| Op::Put { table, key, value }),
            (any::<u8>(), prop::collection::vec(any::<u8>(), 0..20))
                .prop_map(|(table, key)| Op::Delete { table, key }),
        ]
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(ops in prop::collection::vec(op(), 0..10)) {
            let mut bytes = Vec::new();
            encode_batch(&ops, &mut bytes).unwrap();
            prop_assert_eq!(decode_batch(&bytes).unwrap(), ops);
        }

        #[test]
        fn decode_is_total(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_batch(&bytes);
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let ops = vec![
            Op::Put {
                table: 1,
                key: b"k".to_vec(),
                value: b"value".to_vec(),
            },
            Op::Delete {
                table: 2,
                key: b"gone".to_vec(),
            },
        ];
        let mut bytes = Vec::new();
        encode_batch(&ops, &mut bytes).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode_batch(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
