//! Leaf helpers for text that reaches a user or holds a secret: masked
//! addresses, escaping user-controlled strings for terminals, sentences, wall-clock, duration and
//! byte-count wording,
//! and wiping buffers that held a key. Imports nothing from the crate.

pub mod address;
pub mod escape;
pub mod sentence;
pub mod size;
pub mod time;
pub mod wipe;
