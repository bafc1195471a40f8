//! Apache Parquet: the flat row's columns (`row`) as typed Arrow columns, snappy-compressed, in
//! row groups of 64k connections, handed to the output as each row group is done.

use std::io;

use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde_arrow::ArrayBuilder;

use super::record::ConnRecord;
use super::row::{arrow_fields, FlatRow};
use super::Exporter;
use crate::pipeline::Analysis;

const ROW_GROUP: usize = 1 << 16;

/// Connections as a Parquet file.
pub struct Parquet {
    /// Taken when the file's footer is written.
    writer: Option<ArrowWriter<Vec<u8>>>,
    columns: ArrayBuilder,
    rows: usize,
}

impl Parquet {
    /// A writer whose schema is the flat row's columns.
    pub fn new() -> io::Result<Self> {
        let fields = arrow_fields();
        let schema = std::sync::Arc::new(arrow_schema::Schema::new(fields.clone()));
        let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
        let writer = ArrowWriter::try_new(Vec::new(), schema, Some(props)).map_err(io::Error::other)?;
        let columns = ArrayBuilder::from_arrow(&fields).map_err(io::Error::other)?;
        Ok(Parquet { writer: Some(writer), columns, rows: 0 })
    }

    /// Writes the rows collected as a row group, and hands finished bytes to `out`.
    fn flush(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        let writer = self.writer.as_mut().expect("open until the end");
        if self.rows > 0 {
            let batch = self.columns.to_record_batch().map_err(io::Error::other)?;
            writer.write(&batch).map_err(io::Error::other)?;
            writer.flush().map_err(io::Error::other)?;
            self.rows = 0;
        }
        // Finished row groups are final: hand their bytes on instead of holding the file.
        out.append(writer.inner_mut());
        Ok(())
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
