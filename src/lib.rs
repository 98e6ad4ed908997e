//! ticketd: an email-driven helpdesk. Mail comes in, tickets come out, notifications go back.
//!
//! The binary (`src/main.rs`) is a thin command-line layer over this library.

pub mod blobs;
pub mod config;
pub mod credentials;
pub mod daemon;
pub mod host;
pub mod inbound;
pub mod ingest;
pub mod mail;
pub mod notify;
pub mod outage;
pub mod outbound;
pub mod store;
pub mod tls;
