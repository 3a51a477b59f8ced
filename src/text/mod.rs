//! Leaf helpers for text that reaches a user or holds a secret: escaping
//! user-controlled strings for terminals, wall-clock, duration and byte-count wording,
//! and wiping buffers that held a key. Imports nothing from the crate.

pub mod escape;
pub mod size;
pub mod time;
pub mod wipe;
