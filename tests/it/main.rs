//! Integration tests: the `ticketd` binary against real peers (a SQLite file, a PostgreSQL server).

mod agents;
mod cli;
mod daemon;
mod directory;
mod durability;
mod fixtures;
mod full_disk;
mod hostile;
mod imap;
mod mta;
mod notify;
mod pipeline;
mod postfix;
mod smtp_peer;
mod support;
mod systemd;
mod threading;
