//! ferry: copies and syncs files and directory trees between this machine and
//! SSH servers, with SFTP carrying the data. It sends only what the destination
//! lacks, resumes interrupted copies after verifying what is already there,
//! and replaces destination files only with complete copies.
//!
//! # Public surface
//!
//! The crate is a program with a library inside, not a library for others:
//! everything is `pub(crate)` except what the `ferry` binary and the
//! integration tests need.
//! - [`main`]: runs ferry with the process's arguments (the binary is one
//!   call to it).
//! - [`embedded`] (cargo feature `embedded`, on by default): the SSH server on
//!   loopback that `ferry demo` syncs into and that tests plug lying SFTP
//!   services and cut links into. A lean build (`--no-default-features`) leaves
//!   it and `ferry demo` out.
//!
//! # Layers
//!
//! Each module imports only those before it in this list (docs/DESIGN.md has
//! the table, which `import_graph.py` checks): the leaves `meta`, `paths`,
//! `mode`, `location`; `error`; `filter`; `report` (progress events);
//! `local_io` (blocking I/O on this machine); `hash` and `delta`; `ssh`
//! (connect, authenticate, check host keys); `sftp` (requests and
//! extensions); `protocol` (the helper); `endpoint` (local and remote trees
//! behind one trait); `engine` (plan and transfer); `embedded`; `cli` (flags,
//! settings, output).

#![warn(unreachable_pub, missing_docs)]

mod cli;
mod delta;
#[cfg(feature = "embedded")]
pub mod embedded;
mod endpoint;
mod engine;
mod error;
mod filter;
#[cfg(test)]
mod fuzz;
mod hash;
mod local_io;
mod location;
mod meta;
mod mode;
mod paths;
mod protocol;
mod report;
mod sftp;
mod ssh;

pub use cli::main;
