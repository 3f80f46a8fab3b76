//! The `ferry` binary: everything lives in the library; see `ferry::cli`.

fn main() {
    std::process::exit(ferry::cli::main());
}
