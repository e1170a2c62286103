//! Tools (work in progress).
mod tool;
pub use tool::*;
/// wip
pub struct ReadLedger;
