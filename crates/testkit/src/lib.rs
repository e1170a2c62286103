//! Scripted model server (work in progress).
