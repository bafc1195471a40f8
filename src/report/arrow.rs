//! Connections and sockets as Arrow record batches: the flat row's columns (`row`) in typed
//! Arrow columns (times as UTC timestamps, spans as durations, parents as lists). The Parquet
//! output writes these batches, and programs (the Python package) take them as they are.

use std::sync::Arc;

use super::record::ConnRecord;
use super::row::{arrow_fields, ArrowColumns, Kind, KINDS};
use crate::flow::inventory::SocketStats;
use arrow_array::builder::{ListBuilder, UInt64Builder};
use arrow_array::cast::AsArray;
use arrow_array::types::{DurationMicrosecondType, Float64Type, TimestampMicrosecondType};
use arrow_array::{ArrayRef, RecordBatch, StringArray, UInt16Array, UInt64Array};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};

/// Connection records gathered into record batches of the connections' schema.
pub struct ConnBatches {
    schema: SchemaRef,
    columns: ArrowColumns,
    rows: usize,
}

impl ConnBatches {
    /// An empty builder.
    pub fn new() -> Self {
        let typed: Vec<Field> = arrow_fields().iter().zip(KINDS).map(|(f, k)| typed_field(f, *k)).collect();
        ConnBatches { schema: Arc::new(Schema::new(typed)), columns: ArrowColumns::default(), rows: 0 }
    }

    /// The schema of every batch: one column per field of the flat row, all nullable.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Adds one record to the batch being built.
    pub fn push(&mut self, record: &ConnRecord) {
        self.columns.push(record);
        self.rows += 1;
    }

    /// Records added since the last batch was taken.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no record was added since the last batch was taken.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The records added so far as one batch (possibly empty); the builder starts again.
    pub fn take(&mut self) -> Result<RecordBatch, ArrowError> {
        let built = self.columns.finish();
        let columns = built.iter().zip(KINDS).map(|(c, k)| typed_column(c, *k)).collect();
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), columns)
    }
}

impl Default for ConnBatches {
    fn default() -> Self {
        ConnBatches::new()
    }
}

/// A column's field with its kind's Arrow type.
fn typed_field(field: &Field, kind: Kind) -> Field {
    let ty = match kind {
        Kind::Plain => return field.clone(),
        Kind::Time => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Kind::Span => DataType::Duration(TimeUnit::Microsecond),
        Kind::Ids => DataType::List(Arc::new(Field::new("item", DataType::UInt64, true))),
    };
    Field::new(field.name(), ty, true)
}

/// A column as it was built, in its kind's Arrow type: seconds to whole microseconds
/// (exact for microsecond captures), `[1,2]` to a list.
fn typed_column(column: &ArrayRef, kind: Kind) -> ArrayRef {
    let micros = |s: f64| (s * 1e6).round() as i64;
    match kind {
        Kind::Plain => column.clone(),
        Kind::Time => Arc::new(
            column
                .as_primitive::<Float64Type>()
                .unary::<_, TimestampMicrosecondType>(micros)
                .with_timezone("UTC"),
        ),
        Kind::Span => {
            Arc::new(column.as_primitive::<Float64Type>().unary::<_, DurationMicrosecondType>(micros))
        }
        Kind::Ids => {
            let mut lists = ListBuilder::new(UInt64Builder::new());
            for text in column.as_string::<i32>() {
                match text {
                    Some(t) => {
                        let ids = t.trim_matches(['[', ']']).split(',').filter_map(|id| id.parse().ok());
                        lists.values().extend(ids.map(Some));
                        lists.append(true);
                    }
                    None => lists.append(false),
                }
            }
            Arc::new(lists.finish())
        }
    }
}

/// The socket inventory as one batch, a row per socket with the columns of `sockets --format
/// csv`.
pub fn sockets_batch(sockets: &[SocketStats]) -> Result<RecordBatch, ArrowError> {
    let text = |f: fn(&SocketStats) -> String| -> ArrayRef {
        Arc::new(sockets.iter().map(|s| Some(f(s))).collect::<StringArray>())
    };
    let count =
        |f: fn(&SocketStats) -> u64| -> ArrayRef { Arc::new(sockets.iter().map(f).collect::<UInt64Array>()) };
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("proto", text(|s| s.proto.as_str().to_string())),
        ("ip", text(|s| s.ip.to_string())),
        ("port", Arc::new(sockets.iter().map(|s| s.port).collect::<UInt16Array>())),
        ("role", text(|s| s.role.as_str().to_string())),
        ("conns", count(|s| s.conns)),
        ("as_server", count(|s| s.as_server)),
        ("as_client", count(|s| s.as_client)),
        ("max_concurrent", count(|s| s.max_concurrent)),
        ("pkts_sent", count(|s| s.pkts_sent)),
        ("pkts_received", count(|s| s.pkts_received)),
        ("bytes_sent", count(|s| s.bytes_sent)),
        ("bytes_received", count(|s| s.bytes_received)),
    ];
    let fields: Vec<Field> =
        columns.iter().map(|(name, c)| Field::new(*name, c.data_type().clone(), false)).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns.into_iter().map(|(_, c)| c).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sockets' columns are the CSV's, in its order, and a batch holds every socket.
    #[test]
    fn socket_columns_are_the_csv_columns() {
        let sockets = crate::Analyzer::default().sockets(&["samples/teardowns.pcap"]).unwrap().0;
        let batch = sockets_batch(&sockets).unwrap();
        let mut csv = Vec::new();
        super::super::csv::write_sockets(&mut csv, &sockets).unwrap();
        let header = String::from_utf8(csv).unwrap().lines().next().unwrap().to_string();
        let names: Vec<&str> = batch.schema_ref().fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names.join(","), header);
        assert_eq!(batch.num_rows(), sockets.len());
        let ports = batch.column(2).as_primitive::<arrow_array::types::UInt16Type>();
        assert!(ports.iter().zip(&sockets).all(|(p, s)| p == Some(s.port)));
    }

    /// A batch holds the records pushed since the last one, and the builder starts again.
    #[test]
    fn batches_take_what_was_pushed() {
        let records = super::super::record::of_sample("teardowns.pcap");
        let mut batches = ConnBatches::new();
        records.iter().take(5).for_each(|r| batches.push(r));
        let first = batches.take().unwrap();
        records.iter().skip(5).for_each(|r| batches.push(r));
        let second = batches.take().unwrap();
        assert_eq!((first.num_rows(), second.num_rows()), (5, records.len() - 5));
        assert!(batches.is_empty());
        let ids = second.column(0).as_primitive::<arrow_array::types::UInt64Type>();
        assert_eq!(ids.value(0), records[5].id);
    }
}
