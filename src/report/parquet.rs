//! Apache Parquet: the flat row's columns (`row`) as typed Arrow columns (times as UTC
//! timestamps, spans as durations, parents as lists), snappy-compressed, in row groups of 64k
//! connections, handed to the output as each row group is done.

use std::io;
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, UInt64Builder};
use arrow_array::cast::AsArray;
use arrow_array::types::{DurationMicrosecondType, Float64Type, TimestampMicrosecondType};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};

use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde_arrow::ArrayBuilder;

use super::record::ConnRecord;
use super::row::{arrow_fields, FlatRow, Kind, KINDS};
use super::Exporter;
use crate::pipeline::Analysis;

const ROW_GROUP: usize = 1 << 16;

/// Connections as a Parquet file.
pub struct Parquet {
    /// Taken when the file's footer is written.
    writer: Option<ArrowWriter<Vec<u8>>>,
    /// The file's schema: the columns in their kinds' types.
    schema: Arc<Schema>,
    columns: ArrayBuilder,
    rows: usize,
}

impl Parquet {
    /// A Parquet writer, ready for rows.
    pub fn new() -> io::Result<Self> {
        let fields = arrow_fields();
        let typed: Vec<Field> = fields.iter().zip(KINDS).map(|(f, k)| typed_field(f, *k)).collect();
        let schema = Arc::new(Schema::new(typed));
        let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
        let writer =
            ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props)).map_err(io::Error::other)?;
        let columns = ArrayBuilder::from_arrow(&fields).map_err(io::Error::other)?;
        Ok(Parquet { writer: Some(writer), schema, columns, rows: 0 })
    }

    /// Writes the rows collected as a row group, and hands finished bytes to `out`.
    fn flush(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        let writer = self.writer.as_mut().expect("open until the end");
        if self.rows > 0 {
            let built = self.columns.to_record_batch().map_err(io::Error::other)?;
            let columns = built.columns().iter().zip(KINDS).map(|(c, k)| typed_column(c, *k)).collect();
            let batch = RecordBatch::try_new(self.schema.clone(), columns).map_err(io::Error::other)?;
            writer.write(&batch).map_err(io::Error::other)?;
            writer.flush().map_err(io::Error::other)?;
            self.rows = 0;
        }
        // Finished row groups are final: hand their bytes on instead of holding the file.
        out.append(writer.inner_mut());
        Ok(())
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

/// A column as serde_arrow filled it, in its kind's Arrow type: seconds to whole microseconds
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

impl Exporter for Parquet {
    fn record(&mut self, out: &mut Vec<u8>, record: &ConnRecord) -> io::Result<()> {
        self.columns.push(FlatRow::new(record)).map_err(io::Error::other)?;
        self.rows += 1;
        if self.rows == ROW_GROUP {
            self.flush(out)?;
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<u8>, _analysis: &Analysis) -> io::Result<()> {
        self.flush(out)?;
        let writer = self.writer.take().expect("ended once");
        out.extend(writer.into_inner().map_err(io::Error::other)?);
        Ok(())
    }
}
