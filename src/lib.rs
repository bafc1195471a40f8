//! sockscope: connections, handshakes and teardowns in saved packet captures.
#![forbid(unsafe_code)]

pub mod capture;
pub mod check;
pub mod cli;
pub mod commands;
pub mod decode;
pub mod filter;
pub mod flow;
pub mod inputs;
pub mod pipeline;
pub mod report;
pub mod tcp;
