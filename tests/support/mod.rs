//! Test peers: a fake Discord and its contract checks.

#[cfg(feature = "discord")]
pub mod discord_contract;
#[cfg(feature = "discord")]
pub mod fake_discord;
