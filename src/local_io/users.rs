//! This machine's user and group names (getpwuid_r, getpwnam_r,
//! getgrgid_r, getgrnam_r: whatever NSS says, /etc/passwd or a directory
//! service), for `-o`/`-g` without `--numeric-ids`.

use std::ffi::{CStr, CString};

use crate::meta::Of;

/// Largest buffer a lookup grows to: an entry of a group with many members
/// can be long, but not this long.
const MOST_BUFFER: usize = 1 << 20;

/// A `get*_r` function: a key (an id, or a name), the entry to fill, a
/// buffer for its strings and its length, where to say it was found.
type GetR<K, E> =
    unsafe extern "C" fn(K, *mut E, *mut libc::c_char, libc::size_t, *mut *mut E) -> libc::c_int;

/// One `get*_r` lookup of `key` into an entry of type `E` (passwd or
/// group), with a buffer for its strings that grows while the call says
/// ERANGE; `take` reads what is wanted from a found entry while the buffer
/// lives.
fn lookup<K: Copy, E, T>(key: K, call: GetR<K, E>, take: impl Fn(&E) -> Option<T>) -> Option<T> {
    // SAFETY: passwd and group are plain C structs, valid when zeroed;
    // the call fills them.
    let mut entry: E = unsafe { std::mem::zeroed() };
    let mut found: *mut E = std::ptr::null_mut();
    let mut buffer = vec![0 as libc::c_char; 1024];
    loop {
        // SAFETY: the entry, a buffer with its true length and a place for
        // the result, as the get*_r functions require; a name key is a
        // NUL-terminated string that outlives the call.
        let rc = unsafe {
            call(
                key,
                &mut entry,
                buffer.as_mut_ptr(),
                buffer.len(),
                &mut found,
            )
        };
        match rc {
            libc::ERANGE if buffer.len() < MOST_BUFFER => {
                let longer = buffer.len() * 4;
                buffer.resize(longer, 0);
            }
            0 if !found.is_null() => return take(&entry),
            _ => return None,
        }
    }
}

fn text(name: *const libc::c_char) -> Option<String> {
    if name.is_null() {
        return None;
    }
    // SAFETY: a found entry's name is a NUL-terminated string in the
    // lookup's buffer, which outlives this copy.
    Some(
        unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// The name of user or group `id`, where it has one.
pub(crate) fn name(of: Of, id: u32) -> Option<String> {
    match of {
        Of::Users => lookup(id, libc::getpwuid_r, |e| text(e.pw_name)),
        Of::Groups => lookup(id, libc::getgrgid_r, |e| text(e.gr_name)),
    }
}

/// The id of the user or group called `name`, where there is one.
pub(crate) fn id(of: Of, name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    let key = name.as_ptr();
    match of {
        Of::Users => lookup(key, libc::getpwnam_r, |e| Some(e.pw_uid)),
        Of::Groups => lookup(key, libc::getgrnam_r, |e| Some(e.gr_gid)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_found_both_ways_and_an_unused_id_not_at_all() {
        for of in [Of::Users, Of::Groups] {
            assert_eq!(name(of, 0).as_deref(), Some("root"));
            assert_eq!(id(of, "root"), Some(0));
            assert_eq!(name(of, 4_242_424), None);
            assert_eq!(id(of, "no such name, surely"), None);
            assert_eq!(id(of, "a\0b"), None);
        }
    }
}
