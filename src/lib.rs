//! sockscope: connections, handshakes and teardowns in saved packet captures.
//!
//! The data path, module by module: `capture` reads pcap and pcapng files (gzip too) into
//! frames; `decode` turns a frame into a TCP segment or UDP datagram, layer by layer, through
//! tunnels; `pipeline` reads the files as one timeline, accounts for every packet, reassembles
//! fragments and runs the connection tables (`flow` for sockets and the table, `tcp` for
//! Zeek's state machine, handshakes and teardowns); `report` makes each ended connection a
//! typed record and writes it in the chosen format.
//!
//! [`Analyzer`] is the entry point for programs:
//!
//! ```
//! use sockscope::{Analyzer, Filter, Options};
//!
//! let analyzer = Analyzer::new(Options::default()).with_filter(Filter::parse("tcp and state=SF")?);
//! for conn in analyzer.connections(&["samples/teardowns.pcap"]) {
//!     let conn = conn?;
//!     println!("{} {} -> {} {}", conn.id, conn.orig, conn.resp, conn.history);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod analyzer;
pub mod capture;
pub mod check;
pub mod cli;
pub mod commands;
pub mod decode;
pub mod diff;
pub mod filter;
pub mod flow;
pub mod inputs;
pub mod pipeline;
pub mod report;
pub mod tcp;
pub mod types;

pub use analyzer::{Analyzer, Connections, Error, SummaryReport};
pub use filter::Filter;
pub use pipeline::Options;
pub use report::record::ConnRecord;
pub use tcp::verdict::ConnState;
pub use types::{Addr, Proto, Socket};

/// The README's Rust example, run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
