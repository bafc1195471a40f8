//! Three stages, each on a thread of its own: reading and decoding, the connection table, and
//! the sink (building and writing records). For end order, which only one table can tell.

use std::io;
use std::path::PathBuf;

use super::batch::{self, Batcher, IN_FLIGHT};
use super::{single, Analysis, Options, Sink};

/// Ended connections per message from the table's thread to the sink's.
pub(super) const CONN_BATCH: usize = 256;

/// A sink error (a closed output) stops the table's thread, which stops the reader.
pub(super) fn analyze(paths: &[PathBuf], opts: &Options, sink: &mut Sink<'_>) -> io::Result<Analysis> {
    let (tx, rx) = std::sync::mpsc::sync_channel(IN_FLIGHT);
    std::thread::scope(|scope| {
        let table = scope.spawn(move || {
            let mut batcher = Batcher::new(tx, CONN_BATCH);
            let analysis = single::analyze(paths, opts, true, None, &mut |conn| batcher.push(conn))?;
            batcher.finish()?;
            Ok(analysis)
        });
        let written = batch::receive(rx, &mut *sink);
        let analysis = table.join().expect("the table's thread does not panic");
        written.and(analysis)
    })
}
