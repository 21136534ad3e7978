//! Image scan benchmark (being written).

fn main() {}
