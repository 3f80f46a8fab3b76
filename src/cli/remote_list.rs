//! `--files-from=HOST:FILE`: the list is on the transfer's remote host, as
//! the remote rsync would open it; ferry reads it over SFTP once connected,
//! before anything is planned or written.

use super::settings::RemoteList;
use crate::endpoint::{Endpoint, FileHandle, RemoteFs};
use crate::error::{Cause, Error, FileError, Result};
use crate::filter::FilesFrom;

/// Reads the list. One that cannot be opened or read ends the run with
/// rsync's message and code (12: its server exits with the message before
/// the transfer begins); a lost connection stays what it is.
pub(super) async fn read(remote: &RemoteFs, list: &RemoteList, host: &str) -> Result<FilesFrom> {
    let data = match read_whole(remote, &list.path).await {
        Ok(data) => data,
        Err(Error::File(e)) => {
            return Err(Error::RemoteSide {
                host: host.to_string(),
                detail: format!(
                    "failed to open files-from file {}: {}",
                    list.path,
                    reason(&e)
                ),
                status: None,
            })
        }
        Err(e) => return Err(e),
    };
    let name = format!("{host}:{}", list.path);
    Ok(FilesFrom::parse_as(&name, &data, list.format))
}

/// The whole file, read until the server reports its end (its size is
/// only the server's word).
async fn read_whole(remote: &RemoteFs, path: &str) -> Result<Vec<u8>> {
    let file = remote.open_read(path).await?;
    let chunk = remote.features().chunk.max(1);
    let mut data = Vec::new();
    let read = loop {
        match file.read_at(data.len() as u64, chunk).await {
            Ok(bytes) if bytes.is_empty() => break Ok(()),
            Ok(bytes) => data.extend_from_slice(&bytes),
            Err(e) => break Err(e),
        }
    };
    let closed = file.close(false).await;
    read?;
    closed?;
    Ok(data)
}

/// What went wrong, without the path the error names (the message names
/// the list itself).
fn reason(error: &FileError) -> String {
    match &error.cause {
        Cause::Server(message) | Cause::Status { message, .. } => message.clone(),
        Cause::Io(source) => source.to_string(),
        Cause::Refused(_) | Cause::Dir { .. } | Cause::NoSpace { .. } => error.to_string(),
    }
}
