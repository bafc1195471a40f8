//! Apache Parquet: the connection record's flat columns (as in the CSV), snappy-compressed, in row
//! groups of 64k connections, streamed to the output as each row group is done.

use std::io::{self, Write};
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, StringBuilder, UInt16Builder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde_json::Value;

const ROW_GROUP: usize = 1 << 16;

/// Column name, type, and where its value sits in a connection's JSON record.
const COLUMNS: [(&str, DataType, &[&str]); 24] = [
    ("id", DataType::UInt64, &["id"]),
    ("proto", DataType::Utf8, &["proto"]),
    ("orig_ip", DataType::Utf8, &["orig", "ip"]),
    ("orig_port", DataType::UInt16, &["orig", "port"]),
    ("resp_ip", DataType::Utf8, &["resp", "ip"]),
    ("resp_port", DataType::UInt16, &["resp", "port"]),
    ("conn_state", DataType::Utf8, &["conn_state"]),
    ("history", DataType::Utf8, &["history"]),
    ("ts", DataType::Float64, &["ts"]),
    ("duration", DataType::Float64, &["duration"]),
    ("orig_pkts", DataType::UInt64, &["orig_pkts"]),
    ("resp_pkts", DataType::UInt64, &["resp_pkts"]),
    ("orig_bytes", DataType::UInt64, &["orig_bytes"]),
    ("resp_bytes", DataType::UInt64, &["resp_bytes"]),
    ("orig_ip_bytes", DataType::UInt64, &["orig_ip_bytes"]),
    ("resp_ip_bytes", DataType::UInt64, &["resp_ip_bytes"]),
    ("handshake_state", DataType::Utf8, &["handshake", "state"]),
    ("handshake_rtt", DataType::Float64, &["handshake", "rtt"]),
    ("teardown_state", DataType::Utf8, &["teardown", "state"]),
    ("teardown_initiator", DataType::Utf8, &["teardown", "initiator"]),
    ("teardown_kind", DataType::Utf8, &["teardown", "kind"]),
    ("tunnel", DataType::Utf8, &["tunnel", "path"]),
    ("tunnel_parents", DataType::Utf8, &["tunnel", "parents"]),
    ("end", DataType::Utf8, &["end"]),
];

enum Builder {
    U64(UInt64Builder),
    U16(UInt16Builder),
    F64(Float64Builder),
    Str(StringBuilder),
}

pub struct ParquetRows {
    writer: ArrowWriter<Vec<u8>>,
    schema: Arc<Schema>,
    columns: Vec<Builder>,
    rows: usize,
}

impl ParquetRows {
    pub fn new() -> io::Result<Self> {
        let schema = Arc::new(Schema::new(
            COLUMNS.iter().map(|(name, ty, _)| Field::new(*name, ty.clone(), true)).collect::<Vec<_>>(),
        ));
        let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
        let writer =
            ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props)).map_err(io::Error::other)?;
        Ok(ParquetRows { writer, schema, columns: new_builders(), rows: 0 })
    }

    /// Adds one connection, given as its JSON record; writes a row group to `out` when full.
    pub fn push(&mut self, record: &Value, out: &mut dyn Write) -> io::Result<()> {
        for ((_, _, path), column) in COLUMNS.iter().zip(&mut self.columns) {
            let v = path.iter().try_fold(record, |v, key| v.get(key)).filter(|v| !v.is_null());
            match column {
                Builder::U64(b) => b.append_option(v.and_then(Value::as_u64)),
                Builder::U16(b) => b.append_option(v.and_then(Value::as_u64).map(|n| n as u16)),
                Builder::F64(b) => b.append_option(v.and_then(Value::as_f64)),
                Builder::Str(b) => b.append_option(v.map(text)),
            }
        }
        self.rows += 1;
        if self.rows == ROW_GROUP {
            self.flush(out)?;
        }
        Ok(())
    }

    /// Writes what is left and the file footer.
    pub fn finish(mut self, out: &mut dyn Write) -> io::Result<()> {
        self.flush(out)?;
        let rest = self.writer.into_inner().map_err(io::Error::other)?;
        out.write_all(&rest)
    }

    fn flush(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if self.rows > 0 {
            let arrays: Vec<ArrayRef> = std::mem::replace(&mut self.columns, new_builders())
                .into_iter()
                .map(|b| -> ArrayRef {
                    match b {
                        Builder::U64(mut b) => Arc::new(b.finish()),
                        Builder::U16(mut b) => Arc::new(b.finish()),
                        Builder::F64(mut b) => Arc::new(b.finish()),
                        Builder::Str(mut b) => Arc::new(b.finish()),
                    }
                })
                .collect();
            let batch = RecordBatch::try_new(self.schema.clone(), arrays).map_err(io::Error::other)?;
            self.writer.write(&batch).map_err(io::Error::other)?;
            self.writer.flush().map_err(io::Error::other)?;
            self.rows = 0;
        }
        // Finished row groups are final: hand their bytes on instead of holding the file.
        out.write_all(self.writer.inner())?;
        self.writer.inner_mut().clear();
        Ok(())
    }
}

fn new_builders() -> Vec<Builder> {
    COLUMNS
        .iter()
        .map(|(_, ty, _)| match ty {
            DataType::UInt64 => Builder::U64(UInt64Builder::new()),
            DataType::UInt16 => Builder::U16(UInt16Builder::new()),
            DataType::Float64 => Builder::F64(Float64Builder::new()),
            _ => Builder::Str(StringBuilder::new()),
        })
        .collect()
}

/// Strings as they are; the tunnel path's kinds joined by '/'; parents' ids by ' '.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::Object(o) => o.get("kind").and_then(Value::as_str).unwrap_or("").to_string(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(if items.iter().all(Value::is_object) { "/" } else { " " }),
        other => other.to_string(),
    }
}
