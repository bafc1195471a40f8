//! The values every layer shares: capture time, sockets, TCP sequence numbers, Community IDs.

mod community_id;
mod seq;
mod socket;
mod time;

pub use community_id::CommunityId;
pub use seq::SeqNum;
pub use socket::{Addr, Proto, Socket};
pub use time::{Duration, Timestamp};
