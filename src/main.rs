//! The `ferry` binary: everything lives in the library; see `ferry::main`.

fn main() {
    std::process::exit(ferry::main());
}
