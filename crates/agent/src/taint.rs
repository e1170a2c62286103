//! Owns the session's taint: whether content from outside the person and errand (a granted file the session
//! did not write, a command's output, an MCP server's answer, a web page, a plugin's text) has entered the
//! conversation, which sources it came from, and which hosts the session reached before it did.
//!
//! Once tainted, the model may be following instructions hidden in that content, so the policy
//! ([`crate::policy::Policy::decide`]) asks the person about the acts an attacker wants — a new host, an MCP
//! tool that changes things, an upload, a delete, a write to files that run code or steer errand — whatever
//! the rules say, and names the source. Taint never clears within a session: the content stays in the
//! conversation (or in a summary of it).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use errand_model::{ContentBlock, Message, Provenance};
use errand_sandbox::Grants;

/// What untrusted content a session (with its sub-agents) has taken in, and what it did before that.
#[derive(Debug, Clone, Default)]
pub struct Taint {
    /// The distinct sources, in the order they arrived: `file inbox/brief.docx`, `web example.com`.
    sources: Vec<String>,
    /// Files the session wrote itself: reading them back is reading its own words.
    written: HashSet<PathBuf>,
    /// Hosts reached while the session was still clean, or that the person allowed after it was tainted
    /// (lowercase).
    known_hosts: HashSet<String>,
}

/// One session tree's taint, shared by the loop, its sub-agents and the egress proxy's gate.
pub type SharedTaint = Arc<Mutex<Taint>>;

impl Taint {
    /// A clean session's taint.
    pub fn new() -> Taint {
        Taint::default()
    }

    /// Whether untrusted content has entered the conversation.
    pub fn is_tainted(&self) -> bool {
        !self.sources.is_empty()
    }

    /// The untrusted source that tainted the session, as the person reads it: `file inbox/brief.docx`, or
    /// `file inbox/brief.docx and 2 other sources`. `None` while the session is clean.
    pub fn source(&self) -> Option<String> {
        let first = self.sources.first()?;
        Some(match self.sources.len() {
            1 => first.clone(),
            2 => format!("{first} and {}", self.sources[1]),
            count => format!("{first} and {} other sources", count - 1),
        })
    }

    /// Notes content from `provenance` entering the conversation. Paths are shown as `grants` shows them.
    pub fn take_in(&mut self, provenance: &Provenance, grants: &Grants) {
        let source = match provenance {
            Provenance::Person | Provenance::Errand => return,
            Provenance::GrantedFile { path } if self.written.contains(path) => return,
            // A listing or a search names what it covered.
            Provenance::GrantedFile { path } if path.is_dir() => format!("folder {}", grants.display(path)),
            Provenance::GrantedFile { path } => format!("file {}", grants.display(path)),
            Provenance::Plugin { name } => format!("plugin {name}"),
            Provenance::Command => "a command's output".to_string(),
            other => other.origin(),
        };
        if !self.sources.contains(&source) {
            self.sources.push(source);
        }
    }

    /// Notes every block of `message` that came from outside the person and errand.
    pub fn take_in_message(&mut self, message: &Message, grants: &Grants) {
        for block in &message.content {
            match block {
                ContentBlock::Text { provenance: Some(provenance), .. }
                | ContentBlock::ToolResult { provenance: Some(provenance), .. } => self.take_in(provenance, grants),
                _ => {}
            }
        }
    }

    /// Notes a file the session wrote: its content is the session's own, so reading it back taints nothing.
    pub fn wrote(&mut self, path: &Path) {
        self.written.insert(path.to_path_buf());
    }

    /// Notes a host the session reached; remembered only while the session is clean.
    pub fn reached(&mut self, host: &str) {
        if !self.is_tainted() {
            self.known_hosts.insert(host.to_ascii_lowercase());
        }
    }

    /// Notes a host the person allowed the tainted session to reach: it is not asked about again.
    pub fn allowed_by_person(&mut self, host: &str) {
        self.known_hosts.insert(host.to_ascii_lowercase());
    }

    /// Whether the session reached `host` before it was tainted, or the person allowed it since.
    pub fn knows_host(&self, host: &str) -> bool {
        self.known_hosts.contains(&host.to_ascii_lowercase())
    }
}

/// A lock on `taint` that survives a panic elsewhere (the state is a few sets; a half-done insert is harmless).
pub(crate) fn lock(taint: &SharedTaint) -> std::sync::MutexGuard<'_, Taint> {
    taint.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn grants() -> (tempfile::TempDir, Grants) {
        let folder = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(folder.path()).unwrap();
        let grants = Grants::new(vec![(root, errand_sandbox::GrantMode::ReadWrite)]).unwrap();
        (folder, grants)
    }

    #[test]
    fn the_person_and_errand_leave_a_session_clean() {
        let (_folder, grants) = grants();
        let mut taint = Taint::new();
        taint.take_in(&Provenance::Person, &grants);
        taint.take_in(&Provenance::Errand, &grants);
        assert!(!taint.is_tainted());
        assert_eq!(taint.source(), None);
    }

    #[test]
    fn each_outside_source_taints_and_is_named_once() {
        let (_folder, grants) = grants();
        let file = grants.primary().join("inbox/brief.docx");
        let mut taint = Taint::new();
        taint.take_in(&Provenance::GrantedFile { path: file.clone() }, &grants);
        assert_eq!(taint.source().as_deref(), Some("file inbox/brief.docx"));
        taint.take_in(&Provenance::GrantedFile { path: file }, &grants);
        taint.take_in(&Provenance::Web { host: "example.com".into() }, &grants);
        assert_eq!(taint.source().as_deref(), Some("file inbox/brief.docx and web example.com"));
        taint.take_in(&Provenance::Mcp { server: "files".into() }, &grants);
        taint.take_in(&Provenance::Command, &grants);
        taint.take_in(&Provenance::Plugin { name: "tools".into() }, &grants);
        assert_eq!(taint.source().as_deref(), Some("file inbox/brief.docx and 4 other sources"));
        let mut command = Taint::new();
        command.take_in(&Provenance::Command, &grants);
        assert_eq!(command.source().as_deref(), Some("a command's output"));
    }

    #[test]
    fn a_listing_names_its_folder() {
        let (_folder, grants) = grants();
        std::fs::create_dir(grants.primary().join("inbox")).unwrap();
        let mut taint = Taint::new();
        taint.take_in(&Provenance::GrantedFile { path: grants.primary().join("inbox") }, &grants);
        assert_eq!(taint.source().as_deref(), Some("folder inbox"));
    }

    #[test]
    fn reading_back_a_file_the_session_wrote_keeps_it_clean() {
        let (_folder, grants) = grants();
        let report = grants.primary().join("report.md");
        let mut taint = Taint::new();
        taint.wrote(&report);
        taint.take_in(&Provenance::GrantedFile { path: report }, &grants);
        assert!(!taint.is_tainted());
        taint.take_in(&Provenance::GrantedFile { path: grants.primary().join("other.md") }, &grants);
        assert!(taint.is_tainted());
    }

    #[test]
    fn hosts_are_known_when_reached_while_clean_or_allowed_by_the_person() {
        let (_folder, grants) = grants();
        let mut taint = Taint::new();
        taint.reached("API.example.com");
        taint.take_in(&Provenance::Command, &grants);
        taint.reached("evil.example.net");
        assert!(taint.knows_host("api.example.com"));
        assert!(!taint.knows_host("evil.example.net"));
        taint.allowed_by_person("Docs.example.org");
        assert!(taint.knows_host("docs.example.org"));
    }

    #[test]
    fn a_message_taints_by_its_blocks_provenance() {
        let (_folder, grants) = grants();
        let mut taint = Taint::new();
        let clean = Message {
            role: errand_model::Role::User,
            content: vec![ContentBlock::text_from("sort it", Provenance::Person), ContentBlock::text("plain")],
            cache: false,
        };
        taint.take_in_message(&clean, &grants);
        assert!(!taint.is_tainted());
        let result = ContentBlock::ToolResult {
            tool_use_id: "c1".into(),
            content: vec![ContentBlock::text("page")],
            is_error: false,
            provenance: Some(Provenance::Web { host: "example.com".into() }),
        };
        taint
            .take_in_message(&Message { role: errand_model::Role::User, content: vec![result], cache: false }, &grants);
        assert_eq!(taint.source().as_deref(), Some("web example.com"));
    }
}
