//! One JSON document: the items plus the packet accounting and what happened to each file.

use std::io::{self, Write};

use serde::Serialize;

use super::AccountingRecord;
use crate::analyze::FileReport;

#[derive(Serialize)]
struct Document<'a, T: Serialize> {
    files: &'a [FileReport],
    packets: AccountingRecord,
    #[serde(flatten)]
    items: T,
}

/// Writes `{"files": [...], "packets": {...}, "<key>": [...]}`.
pub fn write<T: Serialize>(
    out: &mut dyn Write,
    files: &[FileReport],
    packets: AccountingRecord,
    key: &str,
    items: &[T],
) -> io::Result<()> {
    let mut map = serde_json::Map::new();
    map.insert(key.to_string(), serde_json::to_value(items).map_err(io::Error::other)?);
    serde_json::to_writer_pretty(&mut *out, &Document { files, packets, items: map })?;
    out.write_all(b"\n")
}
