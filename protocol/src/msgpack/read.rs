//! The msgpack reader behind [`super::decode`]: one value at a time over a byte slice.
//!
//! Receives: the bytes of one packet. Emits: `serde_json::Value`s (binary values replaced by
//! placeholders and collected in order; see the mapping table in [`super`]).
//! Must not: panic, read past the input, reserve more than the input could hold, or nest
//! deeper than [`MAX_DEPTH`].

use bytes::Bytes;
use rmp::Marker;
use serde_json::{Map, Number, Value};

use super::{MAX_DEPTH, date};
use crate::DecodeError;
use crate::socketio::placeholder;

/// A cursor over the input that collects binary values as it meets them.
pub(super) struct Reader<'a> {
    pub(super) buf: &'a [u8],
    pub(super) attachments: Vec<Bytes>,
}

const TRUNCATED: DecodeError = DecodeError::InvalidPayload("truncated msgpack");

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(TRUNCATED);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<usize, DecodeError> {
        Ok(usize::from(u16::from_be_bytes(self.array()?)))
    }

    fn u32(&mut self) -> Result<usize, DecodeError> {
        usize::try_from(u32::from_be_bytes(self.array()?)).map_err(|_| TRUNCATED)
    }

    /// The entry count if the next value is a map (consumes its header), `None` otherwise.
    pub(super) fn map_len(&mut self) -> Result<Option<usize>, DecodeError> {
        Ok(match Marker::from_u8(self.u8()?) {
            Marker::FixMap(n) => Some(usize::from(n)),
            Marker::Map16 => Some(self.u16()?),
            Marker::Map32 => Some(self.u32()?),
            _ => None,
        })
    }

    /// A map key: must be a string.
    pub(super) fn key(&mut self) -> Result<&'a str, DecodeError> {
        let len = match Marker::from_u8(self.u8()?) {
            Marker::FixStr(n) => usize::from(n),
            Marker::Str8 => usize::from(self.u8()?),
            Marker::Str16 => self.u16()?,
            Marker::Str32 => self.u32()?,
            _ => {
                return Err(DecodeError::InvalidPayload(
                    "msgpack map key must be a string",
                ));
            }
        };
        self.str(len)
    }

    fn str(&mut self, len: usize) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.take(len)?)
            .map_err(|_| DecodeError::InvalidPayload("msgpack string is not UTF-8"))
    }

    /// Binary value: stored as the next attachment, its placeholder returned. At most
    /// [`super::MAX_BINARIES`] per packet: an empty `bin` is 2 bytes on the wire but a
    /// placeholder map and a buffer handle (~100 bytes) once decoded.
    fn binary(&mut self, len: usize) -> Result<Value, DecodeError> {
        if self.attachments.len() >= super::MAX_BINARIES {
            return Err(DecodeError::InvalidPayload(
                "more binary values in one msgpack packet than the decoder accepts",
            ));
        }
        let bytes = Bytes::copy_from_slice(self.take(len)?);
        self.attachments.push(bytes);
        Ok(placeholder(self.attachments.len() - 1))
    }

    /// One value; `None` is JavaScript's `undefined` (fixext 1 of type 0).
    pub(super) fn value(&mut self, depth: usize) -> Result<Option<Value>, DecodeError> {
        let v = match Marker::from_u8(self.u8()?) {
            Marker::Null => Value::Null,
            Marker::True => Value::Bool(true),
            Marker::False => Value::Bool(false),
            Marker::FixPos(n) => Value::from(n),
            Marker::FixNeg(n) => Value::from(n),
            Marker::U8 => Value::from(self.u8()?),
            Marker::U16 => Value::from(u16::from_be_bytes(self.array()?)),
            Marker::U32 => Value::from(u32::from_be_bytes(self.array()?)),
            Marker::U64 => Value::from(u64::from_be_bytes(self.array()?)),
            Marker::I8 => Value::from(i8::from_be_bytes(self.array()?)),
            Marker::I16 => Value::from(i16::from_be_bytes(self.array()?)),
            Marker::I32 => Value::from(i32::from_be_bytes(self.array()?)),
            Marker::I64 => Value::from(i64::from_be_bytes(self.array()?)),
            Marker::F32 => float(f64::from(f32::from_be_bytes(self.array()?))),
            Marker::F64 => float(f64::from_be_bytes(self.array()?)),
            Marker::FixStr(n) => Value::from(self.str(usize::from(n))?),
            Marker::Str8 => {
                let n = usize::from(self.u8()?);
                Value::from(self.str(n)?)
            }
            Marker::Str16 => {
                let n = self.u16()?;
                Value::from(self.str(n)?)
            }
            Marker::Str32 => {
                let n = self.u32()?;
                Value::from(self.str(n)?)
            }
            Marker::Bin8 => {
                let n = usize::from(self.u8()?);
                self.binary(n)?
            }
            Marker::Bin16 => {
                let n = self.u16()?;
                self.binary(n)?
            }
            Marker::Bin32 => {
                let n = self.u32()?;
                self.binary(n)?
            }
            Marker::FixArray(n) => self.array_items(usize::from(n), depth)?,
            Marker::Array16 => {
                let n = self.u16()?;
                self.array_items(n, depth)?
            }
            Marker::Array32 => {
                let n = self.u32()?;
                self.array_items(n, depth)?
            }
            Marker::FixMap(n) => self.map_entries(usize::from(n), depth)?,
            Marker::Map16 => {
                let n = self.u16()?;
                self.map_entries(n, depth)?
            }
            Marker::Map32 => {
                let n = self.u32()?;
                self.map_entries(n, depth)?
            }
            Marker::FixExt1 => return self.fixext(1),
            Marker::FixExt2 => return self.fixext(2),
            Marker::FixExt4 => return self.fixext(4),
            Marker::FixExt8 => return self.fixext(8),
            Marker::FixExt16 => return self.fixext(16),
            Marker::Ext8 => {
                let n = usize::from(self.u8()?);
                self.ext(n)?
            }
            Marker::Ext16 => {
                let n = self.u16()?;
                self.ext(n)?
            }
            Marker::Ext32 => {
                let n = self.u32()?;
                self.ext(n)?
            }
            Marker::Reserved => {
                return Err(DecodeError::InvalidPayload("reserved msgpack marker 0xc1"));
            }
        };
        Ok(Some(v))
    }

    fn enter(depth: usize) -> Result<usize, DecodeError> {
        if depth >= MAX_DEPTH {
            return Err(DecodeError::InvalidPayload(
                "msgpack payload nested too deeply",
            ));
        }
        Ok(depth + 1)
    }

    fn array_items(&mut self, len: usize, depth: usize) -> Result<Value, DecodeError> {
        let depth = Self::enter(depth)?;
        // Every item takes at least one byte: never reserve more than the input holds.
        let mut items = Vec::with_capacity(len.min(self.buf.len()));
        for _ in 0..len {
            items.push(self.value(depth)?.unwrap_or(Value::Null));
        }
        Ok(Value::Array(items))
    }

    fn map_entries(&mut self, len: usize, depth: usize) -> Result<Value, DecodeError> {
        let depth = Self::enter(depth)?;
        let mut map = Map::new();
        for _ in 0..len {
            let key = self.key()?;
            if let Some(v) = self.value(depth)? {
                map.insert(key.to_string(), v);
            }
        }
        Ok(Value::Object(map))
    }

    /// Fixed-size extension: type 0 is `undefined` (size 1) or a `Date` (size 8).
    fn fixext(&mut self, size: usize) -> Result<Option<Value>, DecodeError> {
        let ty = i8::from_be_bytes(self.array()?);
        match (ty, size) {
            (0, 1) => {
                self.take(1)?;
                Ok(None)
            }
            (0, 8) => {
                let hi = i32::from_be_bytes(self.array()?);
                let lo = u32::from_be_bytes(self.array()?);
                let ms = i64::from(hi) * (1 << 32) + i64::from(lo);
                Ok(Some(date::to_json(ms).map_or(Value::Null, Value::String)))
            }
            _ => Ok(Some(self.other_ext(ty, size)?)),
        }
    }

    /// Variable-size extension: type 0 is an `ArrayBuffer` (binary).
    fn ext(&mut self, len: usize) -> Result<Value, DecodeError> {
        let ty = i8::from_be_bytes(self.array()?);
        if ty == 0 {
            return self.binary(len);
        }
        self.other_ext(ty, len)
    }

    fn other_ext(&mut self, ty: i8, len: usize) -> Result<Value, DecodeError> {
        let bin = self.binary(len)?;
        Ok(Value::Array(vec![Value::from(ty), bin]))
    }
}

/// A float as a JSON number; NaN and infinities have none and become null.
fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}
