//! What the control plane sends a client for one statement: a sequence of frames in the
//! body of the HTTP response, each `tag (1 byte) | length (u32, big-endian) | payload`.
//!
//! | tag | payload | |
//! |---|---|---|
//! | `Q` | JSON `{"id": n}` | the statement is running as query n (for `POST /cancel/n`) |
//! | `S` | Arrow IPC stream: the result schema, no batch | before any `R` |
//! | `R` | Arrow IPC stream: one record batch | result rows, in order |
//! | `P` | JSON [`ProgressFrame`] | about every 250 ms while the query runs |
//! | `T` | UTF-8 text | `EXPLAIN` output, notices |
//! | `E` | UTF-8 text | the statement failed; last frame |
//! | `D` | JSON [`DoneFrame`] | the statement succeeded; last frame |

use anyhow::{Context, Result, bail};
use arrow_array::RecordBatch;
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{Schema, SchemaRef};
use serde::{Deserialize, Serialize};
use std::io::{self, Read};

/// Progress of a running query (from process 0's workers; with several processes the
/// partition counts are process 0's share, which the others mirror).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProgressFrame {
    pub partitions_read: u64,
    pub partitions_total: u64,
    pub rows_read: u64,
    pub bytes_read: u64,
    pub rows_out: u64,
    pub seconds: f64,
    pub processes: usize,
}

/// How a statement ended.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DoneFrame {
    /// Rows the statement produced.
    pub rows_out: u64,
    /// Rows sent to the client (fewer when the client asked for at most n).
    pub rows_sent: u64,
    /// Rows decoded by scans, over all processes.
    pub rows_read: u64,
    /// Compressed bytes read by scans, over all processes.
    pub bytes_read: u64,
    pub seconds: f64,
}

/// One decoded frame.
#[derive(Debug)]
pub enum Frame {
    Query(u64),
    Schema(SchemaRef),
    Rows(RecordBatch),
    Progress(ProgressFrame),
    Text(String),
    Error(String),
    Done(DoneFrame),
}

fn frame(tag: u8, payload: &[u8]) -> Result<Vec<u8>> {
    let len = u32::try_from(payload.len()).context("a frame over 4 GiB (send fewer rows per frame)")?;
    let mut out = Vec::with_capacity(5 + payload.len());
    out.push(tag);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

fn ipc(schema: &Schema, batch: Option<&RecordBatch>) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut writer = StreamWriter::try_new(&mut buf, schema)?;
    if let Some(b) = batch {
        writer.write(b)?;
    }
    writer.finish()?;
    drop(writer);
    Ok(buf)
}

impl Frame {
    /// Encodes this frame.
    pub fn encode(&self) -> Result<Vec<u8>> {
        Ok(match self {
            Frame::Query(id) => frame(b'Q', &serde_json::to_vec(&serde_json::json!({ "id": id }))?)?,
            Frame::Schema(schema) => frame(b'S', &ipc(schema, None)?)?,
            Frame::Rows(batch) => frame(b'R', &ipc(&batch.schema(), Some(batch))?)?,
            Frame::Progress(p) => frame(b'P', &serde_json::to_vec(p)?)?,
            Frame::Text(t) => frame(b'T', t.as_bytes())?,
            Frame::Error(e) => frame(b'E', e.as_bytes())?,
            Frame::Done(d) => frame(b'D', &serde_json::to_vec(d)?)?,
        })
    }

    /// Reads the next frame; `None` at a clean end of the stream.
    pub fn read(input: &mut impl Read) -> Result<Option<Self>> {
        let mut head = [0u8; 5];
        match input.read_exact(&mut head[..1]) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e).context("reading from the server"),
        }
        input.read_exact(&mut head[1..]).context("reading from the server")?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut payload = vec![0u8; len];
        input.read_exact(&mut payload).context("reading from the server")?;
        let text = |p: Vec<u8>| String::from_utf8_lossy(&p).into_owned();
        Ok(Some(match head[0] {
            b'Q' => {
                let v: serde_json::Value = serde_json::from_slice(&payload)?;
                Frame::Query(v["id"].as_u64().context("a query frame without an id")?)
            }
            b'S' => Frame::Schema(StreamReader::try_new(io::Cursor::new(payload), None)?.schema()),
            b'R' => {
                let mut reader = StreamReader::try_new(io::Cursor::new(payload), None)?;
                Frame::Rows(reader.next().context("a rows frame without a batch")??)
            }
            b'P' => Frame::Progress(serde_json::from_slice(&payload)?),
            b'T' => Frame::Text(text(payload)),
            b'E' => Frame::Error(text(payload)),
            b'D' => Frame::Done(serde_json::from_slice(&payload)?),
            other => bail!("the server sent an unknown frame (tag {other}); is it the same starflow version?"),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field};
    use std::sync::Arc;

    #[test]
    fn frames_round_trip() {
        let schema =
            Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false), Field::new("b", DataType::Utf8, true)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(vec![1, 2])), Arc::new(StringArray::from(vec![Some("x"), None]))],
        )
        .unwrap();
        let done = DoneFrame { rows_out: 2, rows_sent: 2, rows_read: 10, bytes_read: 99, seconds: 0.5 };
        let mut bytes = Vec::new();
        for f in [
            Frame::Query(7),
            Frame::Schema(schema.clone()),
            Frame::Rows(batch.clone()),
            Frame::Text("plan".into()),
            Frame::Done(done.clone()),
        ] {
            bytes.extend(f.encode().unwrap());
        }
        let mut input = io::Cursor::new(bytes);
        assert!(matches!(Frame::read(&mut input).unwrap(), Some(Frame::Query(7))));
        assert!(matches!(Frame::read(&mut input).unwrap(), Some(Frame::Schema(s)) if s == schema));
        assert!(matches!(Frame::read(&mut input).unwrap(), Some(Frame::Rows(b)) if b == batch));
        assert!(matches!(Frame::read(&mut input).unwrap(), Some(Frame::Text(t)) if t == "plan"));
        assert!(matches!(Frame::read(&mut input).unwrap(), Some(Frame::Done(d)) if d == done));
        assert!(Frame::read(&mut input).unwrap().is_none());
    }
}
