//! Apache Parquet: the connections' Arrow batches (`arrow`), snappy-compressed, in row groups
//! of 64k connections, handed to the output as each row group is done.

use std::io;

use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::arrow::ConnBatches;
use super::record::ConnRecord;
use super::Exporter;
use crate::pipeline::Analysis;

const ROW_GROUP: usize = 1 << 16;

/// Connections as a Parquet file.
pub struct Parquet {
    /// Taken when the file's footer is written.
    writer: Option<ArrowWriter<Vec<u8>>>,
    batches: ConnBatches,
}

impl Parquet {
    /// A Parquet writer, ready for rows.
    pub fn new() -> io::Result<Self> {
        let batches = ConnBatches::new();
        let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
        let writer =
            ArrowWriter::try_new(Vec::new(), batches.schema(), Some(props)).map_err(io::Error::other)?;
        Ok(Parquet { writer: Some(writer), batches })
    }

    /// Writes the rows collected as a row group, and hands finished bytes to `out`.
    fn flush(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        let writer = self.writer.as_mut().expect("open until the end");
        if !self.batches.is_empty() {
            let batch = self.batches.take().map_err(io::Error::other)?;
            writer.write(&batch).map_err(io::Error::other)?;
            writer.flush().map_err(io::Error::other)?;
        }
        // Finished row groups are final: hand their bytes on instead of holding the file.
        out.append(writer.inner_mut());
        Ok(())
    }
}

impl Exporter for Parquet {
    fn record(&mut self, out: &mut Vec<u8>, record: &ConnRecord) -> io::Result<()> {
        self.batches.push(record);
        if self.batches.len() == ROW_GROUP {
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
