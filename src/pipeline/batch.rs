//! Items handed between threads in batches, one channel message per batch rather than per item.
//! A receiver that stops (a closed output) makes the sender's next send fail, which stops it.

use std::io;
use std::sync::mpsc::{Receiver, SyncSender};

/// Batches in flight on a channel: bounds the memory between two threads.
pub(super) const IN_FLIGHT: usize = 8;

/// The error a sender sees when its receiver is gone (the output was closed).
pub(super) fn gone() -> io::Error {
    io::Error::from(io::ErrorKind::BrokenPipe)
}

/// Collects items and sends them `size` at a time.
pub(super) struct Batcher<T> {
    batch: Vec<T>,
    size: usize,
    tx: SyncSender<Vec<T>>,
}

impl<T> Batcher<T> {
    pub(super) fn new(tx: SyncSender<Vec<T>>, size: usize) -> Self {
        Batcher { batch: Vec::with_capacity(size), size, tx }
    }

    /// Adds an item, sending the batch it fills.
    pub(super) fn push(&mut self, item: T) -> io::Result<()> {
        self.batch.push(item);
        if self.batch.len() == self.size {
            let full = std::mem::replace(&mut self.batch, Vec::with_capacity(self.size));
            self.tx.send(full).map_err(|_| gone())?;
        }
        Ok(())
    }

    /// Sends what is left.
    pub(super) fn finish(self) -> io::Result<()> {
        self.tx.send(self.batch).map_err(|_| gone())
    }
}

/// Hands every item of every batch to `each` until the channel closes or `each` fails; on
/// failure the receiver is dropped, so the sender stops too.
pub(super) fn receive<T>(rx: Receiver<Vec<T>>, mut each: impl FnMut(T) -> io::Result<()>) -> io::Result<()> {
    for batch in rx {
        batch.into_iter().try_for_each(&mut each)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_arrive_in_order_and_a_failing_receiver_stops_the_sender() {
        let (tx, rx) = std::sync::mpsc::sync_channel(IN_FLIGHT);
        let sender = std::thread::spawn(move || {
            let mut batcher = Batcher::new(tx, 3);
            (0..10).try_for_each(|i| batcher.push(i)).and_then(|()| batcher.finish())
        });
        let mut got = Vec::new();
        receive(rx, |i| {
            got.push(i);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
        sender.join().unwrap().unwrap();

        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let sender = std::thread::spawn(move || {
            let mut batcher = Batcher::new(tx, 2);
            (0..1000).try_for_each(|i| batcher.push(i)).and_then(|()| batcher.finish())
        });
        let stopped = receive(rx, |i: i32| if i < 5 { Ok(()) } else { Err(gone()) });
        assert!(stopped.is_err());
        assert_eq!(sender.join().unwrap().unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }
}
