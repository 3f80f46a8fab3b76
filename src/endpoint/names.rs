//! The names of users and groups on one side, for `-o`/`-g` without
//! `--numeric-ids`: rsync's sender sends names and its receiver maps each
//! to its own id (the engine's `owners` module does both ends here). This
//! machine asks its user database as it goes; a server's `/etc/passwd`
//! and `/etc/group` are read over SFTP once ([`IdNames::parse`]), as far
//! as the server lets them be read.

use std::collections::HashMap;

pub(crate) use crate::meta::Of;

/// How one side names its users and groups.
#[derive(Debug, Clone, Default)]
pub(crate) enum IdNames {
    /// This machine: asked as needed (NSS: files or a directory service).
    System,
    /// A server's files, read once.
    Tables { users: Table, groups: Table },
    /// The side's names could not be learned: ids stay numbers.
    #[default]
    Unknown,
}

/// Names and ids both ways (the first name of an id, as getpwuid gives).
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    names: HashMap<u32, String>,
    ids: HashMap<String, u32>,
}

impl Table {
    /// An `/etc/passwd` or `/etc/group` file: `name:x:id:...` lines,
    /// comments and lines that do not parse left out.
    fn parse(file: &str) -> Table {
        let mut table = Table::default();
        for line in file.lines().filter(|l| !l.starts_with('#')) {
            let mut fields = line.split(':');
            let (Some(name), Some(_), Some(id)) = (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let (Ok(id), false) = (id.trim().parse::<u32>(), name.is_empty()) else {
                continue;
            };
            table.names.entry(id).or_insert_with(|| name.to_string());
            table.ids.entry(name.to_string()).or_insert(id);
        }
        table
    }
}

impl IdNames {
    /// A server's names from its `/etc/passwd` and `/etc/group`.
    pub(crate) fn parse(passwd: &str, group: &str) -> IdNames {
        IdNames::Tables {
            users: Table::parse(passwd),
            groups: Table::parse(group),
        }
    }

    /// Whether names were learned at all.
    pub(crate) fn known(&self) -> bool {
        !matches!(self, IdNames::Unknown)
    }

    /// The name of user or group `id`, where it has one.
    pub(crate) fn name(&self, of: Of, id: u32) -> Option<String> {
        match self {
            IdNames::System => crate::local_io::users::name(of, id),
            IdNames::Tables { .. } => self.table(of)?.names.get(&id).cloned(),
            IdNames::Unknown => None,
        }
    }

    /// The id of the user or group called `name`, where there is one.
    pub(crate) fn id(&self, of: Of, name: &str) -> Option<u32> {
        match self {
            IdNames::System => crate::local_io::users::id(of, name),
            IdNames::Tables { .. } => self.table(of)?.ids.get(name).copied(),
            IdNames::Unknown => None,
        }
    }

    fn table(&self, of: Of) -> Option<&Table> {
        match (self, of) {
            (IdNames::Tables { users, .. }, Of::Users) => Some(users),
            (IdNames::Tables { groups, .. }, Of::Groups) => Some(groups),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_files_parse_both_ways_first_name_first() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n# comment\nbroken line\n\
                      alice:x:1000:1000::/home/alice:/bin/sh\ntoor:x:0:0::/:/bin/sh\n";
        let group = "root:x:0:\nstaff:x:50:alice,bob\n:x:7:\n";
        let names = IdNames::parse(passwd, group);
        assert_eq!(names.name(Of::Users, 0).as_deref(), Some("root"));
        assert_eq!(names.id(Of::Users, "toor"), Some(0));
        assert_eq!(names.id(Of::Users, "alice"), Some(1000));
        assert_eq!(names.name(Of::Users, 4242), None);
        assert_eq!(names.id(Of::Groups, "staff"), Some(50));
        assert_eq!(names.name(Of::Groups, 7), None);
        assert!(names.known() && !IdNames::Unknown.known());
    }
}
