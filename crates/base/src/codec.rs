//! Compact binary encoding shared by WAL records and checkpoint files.
//!
//! Fixed-width integers are little-endian; lengths and counts are LEB128 varints; a value is a
//! one-byte tag followed by its payload. The encoding is deliberately independent of Rust's
//! memory layout (no `usize` on disk) so files written on one machine replay on another.
//!
//! Decoding never panics and never trusts a length: every read checks the remaining input, and
//! a declared length larger than what is left is an error, not an allocation. That property is
//! what the WAL fuzz target checks.

use std::sync::Arc;

use rust_decimal::Decimal;

use crate::value::Value;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unexpected end of data: needed {needed} more bytes at offset {offset}")]
    Truncated { offset: usize, needed: usize },
    #[error("invalid value tag {tag} at offset {offset}")]
    BadTag { offset: usize, tag: u8 },
    #[error("invalid UTF-8 in string at offset {offset}")]
    BadUtf8 { offset: usize },
    #[error("varint too long at offset {offset}")]
    BadVarint { offset: usize },
    #[error("{what} at offset {offset}")]
    Invalid { offset: usize, what: &'static str },
}

/// Appends encoded data to a byte vector.
#[derive(Default, Debug)]
pub struct Encoder {
    pub buf: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Self {
        Encoder { buf: Vec::new() }
    }

    pub fn with_capacity(n: usize) -> Self {
        Encoder {
            buf: Vec::with_capacity(n),
        }
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    pub fn bytes(&mut self, b: &[u8]) {
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    pub fn bool(&mut self, b: bool) {
        self.u8(u8::from(b));
    }

    pub fn value(&mut self, v: &Value) {
        match v {
            Value::Null => self.u8(0),
            Value::Bool(b) => {
                self.u8(1);
                self.bool(*b);
            }
            Value::Int2(i) => {
                self.u8(2);
                self.buf.extend_from_slice(&i.to_le_bytes());
            }
            Value::Int4(i) => {
                // Zig-zag varints keep small integers (the common case) at one or two bytes.
                self.u8(3);
                self.varint(zigzag(i64::from(*i)));
            }
            Value::Int8(i) => {
                self.u8(4);
                self.varint(zigzag(*i));
            }
            Value::Float4(f) => {
                self.u8(5);
                self.buf.extend_from_slice(&f.to_le_bytes());
            }
            Value::Float8(f) => {
                self.u8(6);
                self.buf.extend_from_slice(&f.to_le_bytes());
            }
            Value::Numeric(d) => {
                self.u8(7);
                self.buf.extend_from_slice(&d.serialize());
            }
            Value::Text(s) => {
                self.u8(8);
                self.str(s);
            }
            Value::Bytea(b) => {
                self.u8(9);
                self.bytes(b);
            }
            Value::Timestamp(t) => {
                self.u8(10);
                self.i64(*t);
            }
            Value::Date(d) => {
                self.u8(14);
                self.buf.extend_from_slice(&d.to_le_bytes());
            }
            Value::TimestampTz(t) => {
                self.u8(11);
                self.i64(*t);
            }
            Value::Interval(iv) => {
                self.u8(12);
                self.buf.extend_from_slice(&iv.months.to_le_bytes());
                self.buf.extend_from_slice(&iv.days.to_le_bytes());
                self.i64(iv.micros);
            }
            Value::PgLsn(l) => {
                self.u8(13);
                self.buf.extend_from_slice(&l.to_le_bytes());
            }
        }
    }

    pub fn row(&mut self, row: &[Value]) {
        self.varint(row.len() as u64);
        for v in row {
            self.value(v);
        }
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Reads encoded data from a byte slice, tracking the offset for error messages.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Decoder { data, pos: 0 }
    }

    pub fn offset(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                offset: self.pos,
                needed: n - self.remaining(),
            });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
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

    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        let at = self.pos;
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Invalid {
                offset: at,
                what: "invalid boolean",
            }),
        }
    }

    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            // The tenth byte may only carry the top bit of a u64.
            if shift == 63 && b > 1 {
                return Err(DecodeError::BadVarint { offset: start });
            }
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::BadVarint { offset: start })
    }

    /// A count or length: a varint that must not exceed the bytes left, since every counted
    /// item takes at least one byte. This bounds allocations by the input size.
    pub fn len(&mut self) -> Result<usize, DecodeError> {
        let at = self.pos;
        let n = self.varint()?;
        if n > self.remaining() as u64 {
            return Err(DecodeError::Truncated {
                offset: at,
                needed: (n - self.remaining() as u64).min(usize::MAX as u64) as usize,
            });
        }
        Ok(n as usize)
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.len()?;
        self.take(n)
    }

    pub fn str(&mut self) -> Result<&'a str, DecodeError> {
        let at = self.pos;
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|_| DecodeError::BadUtf8 { offset: at })
    }

    pub fn value(&mut self) -> Result<Value, DecodeError> {
        let at = self.pos;
        let tag = self.u8()?;
        Ok(match tag {
            0 => Value::Null,
            1 => Value::Bool(self.bool()?),
            2 => Value::Int2(i16::from_le_bytes(self.array()?)),
            3 => {
                let v = unzigzag(self.varint()?);
                Value::Int4(i32::try_from(v).map_err(|_| DecodeError::Invalid {
                    offset: at,
                    what: "int4 out of range",
                })?)
            }
            4 => Value::Int8(unzigzag(self.varint()?)),
            5 => Value::Float4(f32::from_le_bytes(self.array()?)),
            6 => Value::Float8(f64::from_le_bytes(self.array()?)),
            7 => Value::Numeric(Decimal::deserialize(self.array()?)),
            8 => Value::Text(Arc::from(self.str()?)),
            9 => Value::Bytea(Arc::from(self.bytes()?)),
            10 => Value::Timestamp(self.i64()?),
            11 => Value::TimestampTz(self.i64()?),
            12 => Value::Interval(crate::value::Interval {
                months: i32::from_le_bytes(self.array()?),
                days: i32::from_le_bytes(self.array()?),
                micros: self.i64()?,
            }),
            13 => Value::PgLsn(u64::from_le_bytes(self.array()?)),
            14 => Value::Date(i32::from_le_bytes(self.array()?)),
            tag => return Err(DecodeError::BadTag { offset: at, tag }),
        })
    }

    pub fn row(&mut self) -> Result<Vec<Value>, DecodeError> {
        let n = self.len()?;
        let mut row = Vec::with_capacity(n);
        for _ in 0..n {
            row.push(self.value()?);
        }
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let row = vec![
            Value::Null,
            Value::Bool(true),
            Value::Int2(-7),
            Value::Int4(i32::MIN),
            Value::Int4(42),
            Value::Int8(i64::MAX),
            Value::Float4(1.5),
            Value::Float8(f64::NAN),
            Value::Numeric(Decimal::new(-12345, 3)),
            Value::text("héllo"),
            Value::Bytea(Arc::from(&b"\x00\x01"[..])),
            Value::Timestamp(-5),
            Value::Date(-730_000),
            Value::TimestampTz(1 << 40),
            Value::Interval(crate::value::Interval {
                months: -3,
                days: 4,
                micros: -5,
            }),
            Value::PgLsn(u64::MAX),
        ];
        let mut e = Encoder::new();
        e.row(&row);
        let mut d = Decoder::new(&e.buf);
        let back = d.row().expect("decodes");
        assert!(d.is_empty());
        assert_eq!(back.len(), row.len());
        for (a, b) in back.iter().zip(&row) {
            assert_eq!(a, b);
        }
    }

    #[test]
    fn lengths_are_bounded_by_input() {
        let mut e = Encoder::new();
        e.varint(1 << 40);
        assert!(matches!(
            Decoder::new(&e.buf).bytes(),
            Err(DecodeError::Truncated { .. })
        ));
        // An over-long varint is rejected, not wrapped.
        let bad = [0xFFu8; 11];
        assert!(Decoder::new(&bad).varint().is_err());
    }

    #[test]
    fn zigzag_round_trips() {
        for v in [0, 1, -1, i64::MIN, i64::MAX, 1234567, -1234567] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }
}
