//! CLI (work in progress).
