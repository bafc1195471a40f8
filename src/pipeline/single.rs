//! One connection table on this thread, which also calls the observer and the sink; reading
//! and decoding run here too, or ahead on a thread of their own (`pipelined`).

use std::io;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;

use super::batch::{self, Batcher, IN_FLIGHT};
use super::deliver::{deliver, prefetch, GROUP};
use super::intake::{Intake, TablePacket};
use super::source::{read_timeline, DecodedRecord};
use super::{Analysis, FileReport, Observer, Options, Sink};
use crate::flow::table::ConnTable;

/// Records per message from the reading thread.
const READ_BATCH: usize = 1024;

pub(super) fn analyze(
    paths: &[PathBuf],
    opts: &Options,
    pipelined: bool,
    observer: Option<&mut Observer<'_>>,
    sink: &mut Sink<'_>,
) -> io::Result<Analysis> {
    let mut run = SingleTable {
        // Shortens the trait object's lifetime to the run's, which an `Option` does not do by itself.
        observer: observer.map(|o| o as &mut Observer<'_>),
        sink,
        table: ConnTable::new(opts.timeouts, opts.max_connections),
        intake: Intake::new(opts.decap),
        group: Vec::with_capacity(GROUP),
    };
    let progress = opts.progress.as_deref();
    let files = if pipelined { run.pipelined(paths, progress)? } else { run.sequential(paths, progress)? };
    run.deliver_group()?;
    let evicted = run.table.evicted;
    for conn in run.table.finish(run.intake.last_ts) {
        (run.sink)(conn)?;
    }
    Ok(run.intake.finish(files, evicted))
}

/// The state of a run with one table.
struct SingleTable<'o, 's> {
    observer: Option<&'o mut Observer<'o>>,
    sink: &'o mut Sink<'s>,
    table: ConnTable,
    intake: Intake,
    /// Packets waiting to be delivered as a group (`GROUP`).
    group: Vec<TablePacket>,
}

impl SingleTable<'_, '_> {
    fn sequential(&mut self, paths: &[PathBuf], progress: Option<&AtomicU64>) -> io::Result<Vec<FileReport>> {
        let decap = self.intake.decap();
        read_timeline(paths, decap, progress, &mut |record| self.apply(record))
    }

    /// The reading thread decodes ahead; this thread keeps the table. A closed output stops
    /// both: the reader notices when its channel is gone.
    fn pipelined(&mut self, paths: &[PathBuf], progress: Option<&AtomicU64>) -> io::Result<Vec<FileReport>> {
        let decap = self.intake.decap();
        let (tx, rx) = std::sync::mpsc::sync_channel(IN_FLIGHT);
        std::thread::scope(|scope| {
            let reader = scope.spawn(move || {
                let mut batcher = Batcher::new(tx, READ_BATCH);
                let reports = read_timeline(paths, decap, progress, &mut |record| batcher.push(record))?;
                batcher.finish()?;
                Ok(reports)
            });
            batch::receive(rx, |record| self.apply(record))?;
            reader.join().expect("the reading thread does not panic")
        })
    }

    /// Runs one record through the intake; the table takes it with the group it completes.
    fn apply(&mut self, record: DecodedRecord) -> io::Result<()> {
        self.intake.take(record, &mut self.group);
        if self.group.len() == GROUP {
            self.deliver_group()?;
        }
        Ok(())
    }

    /// Runs the waiting packets through the table; ended connections go to the sink.
    fn deliver_group(&mut self) -> io::Result<()> {
        prefetch(&self.table, &mut self.group);
        // By reference, not drained: the group's vector is reused as it is.
        for packet in &self.group {
            deliver(&mut self.table, packet, &mut self.observer);
            for conn in self.table.drain_ended() {
                (self.sink)(conn)?;
            }
        }
        self.group.clear();
        Ok(())
    }
}
