//! Nothing to compile: this package exists for its `Cargo.toml`. As a default member of the workspace, its
//! dev-dependency turns on the `discord` and `matrix` features of ketamine-info-bot whenever tests are built, so
//! that `cargo test` from the repository root runs every test, end-to-end tests on both platforms included,
//! while `cargo run --release -- console` builds the core alone.
