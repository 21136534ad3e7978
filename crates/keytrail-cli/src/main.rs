//! The `keytrail` binary: argument parsing, error printing and exit codes.

fn main() {
    std::process::exit(0);
}
