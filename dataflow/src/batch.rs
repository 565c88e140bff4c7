//! `Batch`: an `Arc`'d Arrow record batch as it travels on timely streams, with a routing
//! key for exchanges and a sequence number that orders batches in catalog order.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A record batch on a timely stream. Cheap to clone; serialised as Arrow IPC when it
/// crosses a process boundary.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Target worker of the next exchange (set by the operator that routes).
    pub route: u64,
    /// Catalog order: partition index in the high 32 bits, batch number in the low 32.
    pub seq: u64,
    /// The rows.
    pub data: Arc<RecordBatch>,
}

impl Batch {
    /// Wraps a record batch.
    pub fn new(data: RecordBatch, seq: u64) -> Self {
        Self { route: 0, seq, data: Arc::new(data) }
    }

    /// Rows in the batch.
    pub fn num_rows(&self) -> usize {
        self.data.num_rows()
    }

    /// The same batch with another routing key.
    pub fn routed(mut self, route: u64) -> Self {
        self.route = route;
        self
    }

    /// Encodes the batch as an Arrow IPC stream.
    pub fn to_ipc(&self) -> Result<Vec<u8>, arrow_schema::ArrowError> {
        let mut bytes = Vec::new();
        let mut writer = StreamWriter::try_new(&mut bytes, &self.data.schema())?;
        writer.write(&self.data)?;
        writer.finish()?;
        drop(writer);
        Ok(bytes)
    }

    /// Decodes a batch written by [`Batch::to_ipc`].
    pub fn from_ipc(bytes: &[u8], route: u64, seq: u64) -> Result<Self, arrow_schema::ArrowError> {
        let mut reader = StreamReader::try_new(bytes, None)?;
        let data = match reader.next() {
            Some(batch) => batch?,
            None => RecordBatch::new_empty(reader.schema()),
        };
        Ok(Self { route, seq, data: Arc::new(data) })
    }
}

/// The wire form: routing key, order, then the IPC bytes as one byte string.
#[derive(Serialize, Deserialize)]
struct Wire {
    route: u64,
    seq: u64,
    #[serde(with = "byte_string")]
    ipc: Vec<u8>,
}

/// Bytes as a serde byte string (one length and a copy, not a sequence of numbers).
mod byte_string {
    use serde::Serializer;
    use serde::de::{Deserializer, Error, Visitor};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Bytes;
        impl<'de> Visitor<'de> for Bytes {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("Arrow IPC bytes")
            }
            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_byte_buf(Bytes)
    }
}

impl Serialize for Batch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ipc = self.to_ipc().map_err(serde::ser::Error::custom)?;
        Wire { route: self.route, seq: self.seq, ipc }.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Batch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(d)?;
        Batch::from_ipc(&wire.ipc, wire.route, wire.seq).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float32Array, Int64Array};

    #[test]
    fn serde_round_trip_through_bincode() {
        let batch = RecordBatch::try_from_iter([("id", Arc::new(Int64Array::from(vec![7, 8])) as _)]).unwrap();
        let bytes = bincode::serialize(&Batch::new(batch.clone(), 42).routed(5)).unwrap();
        let back: Batch = bincode::deserialize(&bytes).unwrap();
        assert_eq!((back.route, back.seq), (5, 42));
        assert_eq!(back.data.as_ref(), &batch);
    }

    #[test]
    fn ipc_round_trip_keeps_rows_and_keys() {
        let batch = RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from(vec![1, 2, 3])) as _),
            ("mag", Arc::new(Float32Array::from(vec![Some(20.5), None, Some(f32::NAN)])) as _),
        ])
        .unwrap();
        let b = Batch::new(batch.clone(), 7).routed(3);
        let back = Batch::from_ipc(&b.to_ipc().unwrap(), b.route, b.seq).unwrap();
        assert_eq!(back.route, 3);
        assert_eq!(back.seq, 7);
        assert_eq!(back.data.num_rows(), 3);
        assert_eq!(back.data.column(0), batch.column(0));
        assert!(back.data.column(1).is_null(1));
    }
}
