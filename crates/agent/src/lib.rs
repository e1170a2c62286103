//! Agent (work in progress).
