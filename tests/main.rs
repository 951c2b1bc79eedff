#![recursion_limit = "256"]

//! All integration tests, linked into one binary (see `autotests = false` in Cargo.toml).

#[cfg(not(all(feature = "discord", feature = "matrix")))]
compile_error!(
    "the end-to-end tests drive both platforms: run `cargo test` from the repository root, which builds them"
);

mod cli;
mod discord;
mod matrix;
mod support;
