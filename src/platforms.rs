//! Adapters: each translates one platform's events into [`crate::Incoming`] and renders [`crate::Reply`] for it.
//! They hold no product logic.

pub mod console;
#[cfg(feature = "discord")]
pub mod discord;
#[cfg(feature = "matrix")]
pub mod matrix;
