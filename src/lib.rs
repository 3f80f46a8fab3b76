//! ferry: copies and syncs files and directory trees between this machine and
//! SSH servers, with SFTP carrying the data. It sends only what the destination
//! lacks, resumes interrupted copies after verifying what is already there,
//! and replaces destination files only with complete copies.
//!
//! Layers, bottom to top: [`ssh`] (connect, authenticate, check host keys),
//! [`sftp`] (requests and extensions), [`endpoint`] (local and remote trees
//! behind one trait), [`hash`] (block hashes), [`engine`] (plan and transfer),
//! [`report`] (progress events), and [`cli`] (flags, settings, output).

pub mod cli;
pub mod delta;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod endpoint;
pub mod engine;
pub mod error;
pub mod filter;
pub mod hash;
pub mod local_io;
pub mod location;
pub mod meta;
pub mod mode;
pub mod paths;
pub mod protocol;
pub mod report;
pub mod sftp;
pub mod ssh;
