//! Office files (work in progress).
