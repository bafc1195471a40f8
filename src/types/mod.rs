//! The values every layer shares: capture time, sockets, TCP sequence numbers.

mod seq;
mod socket;
mod time;

pub use seq::SeqNum;
pub use socket::{Addr, Proto, Socket};
pub use time::{Duration, Timestamp};
