//! Test peers: a fake Discord with its contract checks, and a real Synapse with a member client; and the bot
//! as a process.

#[cfg(any(feature = "discord", feature = "matrix"))]
pub mod bot_process;
#[cfg(feature = "discord")]
pub mod discord_contract;
#[cfg(feature = "discord")]
pub mod fake_discord;
#[cfg(feature = "matrix")]
pub mod matrix_member;
#[cfg(feature = "matrix")]
pub mod synapse;
