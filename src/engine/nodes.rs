//! `-D`: fifos, sockets and device nodes, made on the destination as
//! rsync's generator makes them (mknod under a temporary name, attributes,
//! then renamed over what is there). SFTP v3 has no mknod: a remote
//! destination makes them through its helper, and a run that needs one
//! where none can start is refused before anything is written.

use crate::endpoint::{Endpoint, Kind, Meta};
use crate::error::{Error, FileError, Result};

use super::staging::Places;
use super::Options;

/// The destination must be able to make the nodes the plan holds.
pub(crate) async fn check_destination<D: Endpoint>(dst: &D) -> Result<()> {
    if super::offers(dst, |f| f.makes_nodes).await? {
        return Ok(());
    }
    Err(Error::Unsupported(format!(
        "-D (--devices, --specials; part of -a): the source has fifos, sockets or devices, \
         and SFTP cannot make them on {}; ferry needs its helper there: --remote-ferry \
         upload, or ferry installed on the server (or leave them out with --no-D)",
        dst.label().machine()
    )))
}

/// Makes the node `meta` describes at `dest`, replacing what is there.
pub(crate) async fn make<D: Endpoint>(
    dst: &D,
    dest: &str,
    meta: &Meta,
    opts: &Options,
    places: &Places,
) -> Result<()> {
    let Kind::Node(node) = meta.kind else {
        return Ok(());
    };
    if node.kind.is_device() && node.rdev == 0 {
        // Listed over SFTP v3, which carries no device numbers.
        let message = "the device's number is unknown: SFTP does not carry it; ferry needs \
                       its helper on the source's server (--remote-ferry upload)";
        return Err(FileError::refused(dst.label(), dest, message).into());
    }
    let old = dst.lstat(dest).await?;
    let temp = super::make_way_for(dst, dest, old.as_ref(), opts, places).await?;
    dst.make_node(&temp, node, meta.mode & 0o777).await?;
    // The owner first: a chown takes setuid and setgid bits away.
    if opts.owners.wanted() {
        dst.set_owner(&temp, opts.owners.change(meta.owner, None))
            .await?;
    }
    if opts.perms {
        dst.set_mode(&temp, meta.mode).await?;
    }
    if opts.times {
        dst.set_mtime(&temp, meta.mtime).await?;
    }
    dst.rename(&temp, dest).await
}
