#![recursion_limit = "256"]

//! All integration tests, linked into one binary (see `autotests = false` in Cargo.toml).

mod cli;
#[cfg(feature = "discord")]
mod discord;
#[cfg(feature = "matrix")]
mod matrix;
mod support;
