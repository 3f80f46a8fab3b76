//! rsync's filter rules: `--exclude`, `--include`, their `-from` files and
//! `--filter`, in command-line order, deciding which paths a sync sees.

/// Which option a filter rule came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterFlag {
    Exclude,
    Include,
    ExcludeFrom,
    IncludeFrom,
    Filter,
}

/// One filter option as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterArg {
    pub flag: FilterFlag,
    pub value: String,
}
