//! Test peers: a fake Discord with its contract checks, and a real Synapse with a member client; and the bot
//! as a process.

pub mod bot_process;
pub mod discord_contract;
pub mod fake_discord;
pub mod matrix_member;
#[allow(dead_code, reason = "shared with the state store's unit tests, which use the rest")]
pub mod postgres;
pub mod synapse;
