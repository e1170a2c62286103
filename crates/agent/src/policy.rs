//! Owns the permission policy: the rules a person wrote (`allow`, `ask`, `deny`), the plan gate, the session's
//! "allow for this session" answers, and [`Policy::decide`], the one function every tool call passes before it
//! runs. Does not ask anyone or run anything: it returns a [`Decision`] and the session acts on it.
//!
//! The order of a decision: hard limits (the grants, the plan gate) that no rule overrides; then deny rules;
//! then the taint gate (once untrusted content is in the conversation, new hosts, MCP tools that change things,
//! deletes and protected files are asked about whatever allows them); then the other rules (ask over allow);
//! then the defaults (reads are free, deletes and big calls ask, writes follow the plan, commands and hosts
//! ask).
//!
//! # Example
//!
//! ```
//! use errand_agent::policy::{Decision, PlanGate, Policy, Rule, RuleAction};
//! use errand_agent::taint::Taint;
//! use errand_sandbox::{GrantMode, Grants};
//! use errand_tools::Effects;
//!
//! let folder = tempfile::tempdir()?;
//! let grants = Grants::new(vec![(folder.path().to_path_buf(), GrantMode::ReadWrite)])?;
//! let rules = vec![Rule::parse(RuleAction::Deny, "read_file(secrets/**)", "config.toml")?];
//! let policy = Policy::new(rules, false);
//! let effects = Effects { read: vec![grants.primary().join("secrets/key.txt")], ..Effects::default() };
//! assert_eq!(
//!     policy.decide("read_file", &effects, &grants, &PlanGate::Off, &Taint::new()),
//!     Decision::Deny("reading secrets/key.txt is denied by the rule `deny read_file(secrets/**)` from config.toml".into())
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use errand_sandbox::{Access, GrantMode, Grants};
use errand_tools::Effects;
use globset::{GlobBuilder, GlobMatcher};

use crate::taint::Taint;

/// A call writing more files than this at once asks first, even when the plan covers them.
pub const MAX_FILES_PER_CALL: usize = 20;

/// The pseudo-tool whose rules judge network hosts: `--allow-net HOST` adds `allow network(HOST)`, and its
/// rules apply to the hosts any call declares.
const NETWORK: &str = "network";

/// What every question the taint gate asks says, before the source: only the person's answer settles it.
pub const AFTER_UNTRUSTED: &str = "after the session read untrusted content";

/// The reason every change is refused before the plan is approved.
const PLAN_PENDING: &str = "nothing may change before the plan is approved; call propose_plan first";

/// A rule could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A rule's text is malformed.
    #[error(
        "invalid {action} rule `{rule}` from {origin}: {problem}; write it as TOOL or TOOL(PATTERN), for example \
         write_file(reports/**)"
    )]
    InvalidRule {
        /// What the rule would have done.
        action: RuleAction,
        /// The rule as written.
        rule: String,
        /// Where it came from (`--allow`, `config.toml`, a settings file, `session`).
        origin: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// What a rule does to the calls it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    /// Run matching calls without asking.
    Allow,
    /// Ask the person before running matching calls.
    Ask,
    /// Refuse matching calls.
    Deny,
}

impl fmt::Display for RuleAction {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            RuleAction::Allow => "allow",
            RuleAction::Ask => "ask",
            RuleAction::Deny => "deny",
        })
    }
}

/// One permission rule: `TOOL` or `TOOL(PATTERN)`, both parts globs.
///
/// TOOL matches the tool's name. PATTERN matches what the call declares: paths (as [`Grants::display`] shows
/// them, or absolute; `*` stays within one path component, `**` crosses them), command lines (`*` matches
/// anything, spaces and `/` included) and host names (case-insensitive). A rule with a pattern never matches a
/// call that declares nothing.
#[derive(Debug, Clone)]
pub struct Rule {
    /// What a match does.
    pub action: RuleAction,
    /// The rule as written, without the action: `write_file(reports/**)`.
    pub text: String,
    /// Where it came from, for messages: `--allow`, `config.toml`, `/x/.errand/settings.toml`, `session`.
    pub source: String,
    tool: GlobMatcher,
    pattern: Option<Pattern>,
    /// For `network(HOST, METHOD PATH)`: the requests to HOST the rule is about. Such a rule judges a command's
    /// requests one by one at errand's proxy; calls that declare only a host are judged by host rules.
    request: Option<RequestPattern>,
}

/// The `METHOD PATH` part of a request rule: `GET /v1/*`, `* /upload`, `POST *`.
#[derive(Debug, Clone)]
struct RequestPattern {
    /// Uppercase; `None` for `*` (any method).
    method: Option<String>,
    /// Matched against the path without its query; `*` crosses `/`.
    path: GlobMatcher,
}

impl RequestPattern {
    fn parse(text: &str) -> Result<RequestPattern, String> {
        let mut parts = text.split_whitespace();
        let (Some(method), Some(path), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "`{text}` is not METHOD PATH; write the request part as, for example, `GET /v1/*` or `* /upload`"
            ));
        };
        let method = match method {
            "*" => None,
            method if method.bytes().all(|byte| byte.is_ascii_alphabetic()) => Some(method.to_ascii_uppercase()),
            method => return Err(format!("`{method}` is not an HTTP method (GET, POST, ... or *)")),
        };
        if !(path.starts_with('/') || path.starts_with('*')) {
            return Err(format!("the path `{path}` must start with / (or be *)"));
        }
        let path = compile(path, false, false)
            .map_err(|problem| format!("the path `{path}` is not a valid glob ({problem})"))?;
        Ok(RequestPattern { method, path })
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        let path = path.split(['?', '#']).next().unwrap_or_default();
        self.method.as_deref().is_none_or(|wanted| wanted.eq_ignore_ascii_case(method)) && self.path.is_match(path)
    }
}

/// A rule's pattern, compiled once per kind of thing it may be matched against.
#[derive(Debug, Clone)]
struct Pattern {
    path: GlobMatcher,
    command: GlobMatcher,
    host: GlobMatcher,
}

impl Rule {
    /// Parses `text` (`TOOL` or `TOOL(PATTERN)`) from `source`. Malformed rules (unbalanced parentheses, an
    /// empty tool or pattern, a bad glob) are an error naming the rule, its source and the problem.
    pub fn parse(action: RuleAction, text: &str, source: &str) -> Result<Rule, PolicyError> {
        let text = text.trim();
        let invalid = |problem: String| PolicyError::InvalidRule {
            action,
            rule: text.to_string(),
            origin: source.to_string(),
            problem,
        };
        let (tool, pattern) = split_rule(text).map_err(|problem| invalid(problem.to_string()))?;
        let tool = tool.trim();
        if tool.is_empty() {
            return Err(invalid("the tool name is empty".to_string()));
        }
        if tool.contains(char::is_whitespace) {
            return Err(invalid(format!(
                "the tool name `{tool}` contains a space; put what follows it in parentheses"
            )));
        }
        let names_network = tool == NETWORK;
        let tool = compile(tool, false, false)
            .map_err(|problem| invalid(format!("the tool name `{tool}` is not a valid glob ({problem})")))?;
        // `network(HOST, METHOD PATH)`: a rule about single requests to HOST.
        let (pattern, request) = match pattern.map(|pattern| pattern.split_once(',')) {
            Some(Some((host, request))) if names_network => {
                (Some(host), Some(RequestPattern::parse(request.trim()).map_err(invalid)?))
            }
            _ => (pattern, None),
        };
        let pattern = match pattern.map(str::trim) {
            None => None,
            Some("") => {
                return Err(invalid(
                    "the pattern in parentheses is empty; drop the parentheses to match every call of the tool"
                        .to_string(),
                ));
            }
            Some(pattern) => {
                let bad_glob =
                    |problem: String| invalid(format!("the pattern `{pattern}` is not a valid glob ({problem})"));
                // Paths are shown without a leading `./`, so a pattern written with one should still match.
                let path_pattern = pattern.strip_prefix("./").unwrap_or(pattern);
                Some(Pattern {
                    path: compile(path_pattern, true, false).map_err(bad_glob)?,
                    command: compile(pattern, false, false).map_err(bad_glob)?,
                    host: compile(pattern, false, true).map_err(bad_glob)?,
                })
            }
        };
        Ok(Rule { action, text: text.to_string(), source: source.to_string(), tool, pattern, request })
    }

    /// What in the call triggers this rule (for `ask` and `deny`: any matching path, command or host), as a
    /// phrase for the reason; `None` when the rule does not apply. A `network` rule judges the hosts of every
    /// call, whichever tool declares them.
    fn triggered_by(&self, tool: &str, subjects: &[Subject<'_>], grants: &Grants) -> Option<String> {
        if self.request.is_some() {
            return None;
        }
        if !self.tool.is_match(tool) {
            if !self.tool.is_match(NETWORK) {
                return None;
            }
            let mut hosts = subjects.iter().filter(|subject| matches!(subject, Subject::Host(_)));
            return match &self.pattern {
                None => hosts.next(),
                Some(pattern) => hosts.find(|subject| subject.matches(pattern, grants)),
            }
            .map(|subject| subject.describe(grants));
        }
        match &self.pattern {
            None => Some(format!("calling {tool}")),
            Some(pattern) => {
                subjects.iter().find(|subject| subject.matches(pattern, grants)).map(|subject| subject.describe(grants))
            }
        }
    }

    /// Whether this is an `allow network(…)` rule (or `allow network`) that lets any tool reach `host`.
    fn allows_network_to(&self, host: &str) -> bool {
        self.action == RuleAction::Allow && self.request.is_none() && self.names_host(host)
    }

    /// Whether this is a `network` rule whose host pattern matches `host` (whatever its request part).
    fn names_host(&self, host: &str) -> bool {
        self.tool.is_match(NETWORK) && self.pattern.as_ref().is_none_or(|pattern| pattern.host.is_match(host))
    }

    /// Whether this `network` rule applies to the request `method path` to `host`: its host matches, and its
    /// request part, if it has one, matches too.
    fn applies_to_request(&self, host: &str, method: &str, path: &str) -> bool {
        self.names_host(host) && self.request.as_ref().is_none_or(|request| request.matches(method, path))
    }

    /// Whether this (`allow`) rule covers the whole call: every written path, command and host matches (or,
    /// for a call that only reads, every path it reads).
    fn covers(&self, tool: &str, subjects: &[Subject<'_>], grants: &Grants) -> bool {
        if self.request.is_some() || !self.tool.is_match(tool) {
            return false;
        }
        let Some(pattern) = &self.pattern else {
            return true;
        };
        let changes: Vec<&Subject<'_>> = subjects.iter().filter(|subject| !subject.is_read()).collect();
        let required = if changes.is_empty() { subjects.iter().collect() } else { changes };
        !required.is_empty() && required.iter().all(|subject| subject.matches(pattern, grants))
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} {}", self.action, self.text)
    }
}

/// Splits `TOOL(PATTERN)` into its parts; parentheses inside the pattern must balance.
fn split_rule(text: &str) -> Result<(&str, Option<&str>), &'static str> {
    let Some(open) = text.find('(') else {
        if text.contains(')') {
            return Err("it has a closing parenthesis but no opening one");
        }
        return Ok((text, None));
    };
    if text[..open].contains(')') {
        return Err("it has a closing parenthesis before the opening one");
    }
    let mut depth = 0usize;
    for (index, character) in text[open..].char_indices() {
        match character {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    let close = open + index;
                    if close + 1 != text.len() {
                        return Err("text follows the closing parenthesis");
                    }
                    return Ok((&text[..open], Some(&text[open + 1..close])));
                }
            }
            _ => {}
        }
    }
    Err("the parenthesis after the tool name is never closed")
}

/// A host glob as the rules compile it (case-insensitive); the error says why it is not a valid glob.
pub(crate) fn compile_host_glob(glob: &str) -> Result<GlobMatcher, String> {
    compile(glob, false, true).map_err(|problem| format!("not a valid glob ({problem})"))
}

fn compile(glob: &str, literal_separator: bool, case_insensitive: bool) -> Result<GlobMatcher, String> {
    GlobBuilder::new(glob)
        .literal_separator(literal_separator)
        .case_insensitive(case_insensitive)
        .build()
        .map(|glob| glob.compile_matcher())
        .map_err(|error| error.kind().to_string())
}

/// What the policy decided about one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run it.
    Allow,
    /// Ask the person first; says why, for the person and the model.
    Ask(String),
    /// Refuse it; says why, for the person and the model.
    Deny(String),
}

/// Where the plan stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanGate {
    /// `--no-plan`: writes inside writable grants need no plan.
    Off,
    /// Plan mode before approval: nothing may change.
    Pending,
    /// A plan was approved; writes inside its stated effects are allowed.
    Approved(ApprovedPlan),
}

/// The effects an approved plan stated, as path globs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApprovedPlan {
    /// Path globs (relative to the primary folder, or absolute) of files the plan creates. A glob ending in
    /// `/` covers everything under that folder. Create and modify globs are interchangeable.
    pub create: Vec<String>,
    /// Path globs of files the plan modifies.
    pub modify: Vec<String>,
    /// Path globs of what the plan moves: `from` (the source must match), or `from -> to` (both ends must).
    pub moves: Vec<String>,
    /// Path globs of what the plan deletes.
    pub delete: Vec<String>,
    /// Command-line globs of the commands the plan runs (`*` matches anything, spaces included).
    pub commands: Vec<String>,
    /// The person approved the plan themselves (not `--yes`): deletes the plan names are granted.
    pub deletes_granted: bool,
}

impl ApprovedPlan {
    /// The first created, modified or moved path the plan does not cover, described for the reason.
    fn first_uncovered(&self, effects: &Effects, grants: &Grants) -> Option<String> {
        let writes_covered =
            |path: &Path| self.create.iter().chain(&self.modify).any(|entry| plan_entry_matches(entry, path, grants));
        let move_covered = |from: &Path, to: &Path| {
            self.moves.iter().any(|entry| match entry.split_once("->") {
                Some((source, destination)) => {
                    plan_entry_matches(source, from, grants) && plan_entry_matches(destination, to, grants)
                }
                None => plan_entry_matches(entry, from, grants),
            })
        };
        let created = effects.create.iter().map(|path| Subject::Create(path));
        let modified = effects.modify.iter().map(|path| Subject::Modify(path));
        if let Some(subject) = created.chain(modified).find(|subject| !subject.path().is_some_and(&writes_covered)) {
            return Some(subject.describe(grants));
        }
        effects
            .moves
            .iter()
            .find(|(from, to)| !move_covered(from, to))
            .map(|(from, to)| Subject::Move { from, to, end: from }.describe(grants))
    }

    /// Whether the plan names every one of these commands.
    fn covers_commands(&self, commands: &[String]) -> bool {
        commands.iter().all(|command| {
            self.commands
                .iter()
                .any(|entry| compile(entry.trim(), false, false).is_ok_and(|glob| glob.is_match(command)))
        })
    }

    /// Whether the person granted every one of these deletes by approving the plan.
    fn grants_deletes(&self, deleted: &[PathBuf], grants: &Grants) -> bool {
        self.deletes_granted
            && deleted.iter().all(|path| self.delete.iter().any(|entry| plan_entry_matches(entry, path, grants)))
    }
}

/// Whether one plan glob covers `path`. A malformed glob (the plan comes from the model) covers nothing, so the
/// call is asked about rather than refused.
fn plan_entry_matches(entry: &str, path: &Path, grants: &Grants) -> bool {
    let entry = entry.trim();
    let entry = entry.strip_prefix("./").unwrap_or(entry);
    if entry.is_empty() {
        return false;
    }
    let glob = if entry.ends_with('/') { format!("{entry}**") } else { entry.to_string() };
    compile(&glob, true, false).is_ok_and(|glob| path_matches(&glob, path, grants))
}

/// A path glob matches the path as shown to the person (relative to the primary folder) or the absolute path.
fn path_matches(glob: &GlobMatcher, path: &Path, grants: &Grants) -> bool {
    glob.is_match(grants.display(path)) || glob.is_match(path)
}

/// One thing a call declares it will do.
#[derive(Debug, Clone, Copy)]
enum Subject<'a> {
    Read(&'a Path),
    Create(&'a Path),
    Modify(&'a Path),
    /// One end (`end`) of a move; both ends are subjects.
    Move {
        from: &'a Path,
        to: &'a Path,
        end: &'a Path,
    },
    Delete(&'a Path),
    Command(&'a str),
    Host(&'a str),
}

impl<'a> Subject<'a> {
    fn all(effects: &'a Effects) -> Vec<Subject<'a>> {
        let paths = |list: &'a [PathBuf], make: fn(&'a Path) -> Subject<'a>| list.iter().map(move |path| make(path));
        paths(&effects.read, Subject::Read)
            .chain(paths(&effects.create, Subject::Create))
            .chain(paths(&effects.modify, Subject::Modify))
            .chain(
                effects.moves.iter().flat_map(|(from, to)| {
                    [Subject::Move { from, to, end: from }, Subject::Move { from, to, end: to }]
                }),
            )
            .chain(paths(&effects.delete, Subject::Delete))
            .chain(effects.commands.iter().map(|command| Subject::Command(command)))
            .chain(effects.hosts.iter().map(|host| Subject::Host(host)))
            .collect()
    }

    fn is_read(&self) -> bool {
        matches!(self, Subject::Read(_))
    }

    fn path(&self) -> Option<&'a Path> {
        match *self {
            Subject::Read(path) | Subject::Create(path) | Subject::Modify(path) | Subject::Delete(path) => Some(path),
            Subject::Move { end, .. } => Some(end),
            Subject::Command(_) | Subject::Host(_) => None,
        }
    }

    fn matches(&self, pattern: &Pattern, grants: &Grants) -> bool {
        match *self {
            Subject::Command(command) => pattern.command.is_match(command),
            Subject::Host(host) => pattern.host.is_match(host),
            _ => self.path().is_some_and(|path| path_matches(&pattern.path, path, grants)),
        }
    }

    /// A short phrase for reasons: "reading notes/a.md", "running `git push`".
    fn describe(&self, grants: &Grants) -> String {
        match *self {
            Subject::Read(path) => format!("reading {}", grants.display(path)),
            Subject::Create(path) => format!("creating {}", grants.display(path)),
            Subject::Modify(path) => format!("changing {}", grants.display(path)),
            Subject::Move { from, to, .. } => format!("moving {} to {}", grants.display(from), grants.display(to)),
            Subject::Delete(path) => format!("deleting {}", grants.display(path)),
            Subject::Command(command) => format!("running `{command}`"),
            Subject::Host(host) => format!("reaching {host}"),
        }
    }
}

/// The permission policy of one session: its rules, the `--allow-delete` flag, and the tools the person
/// allowed for the rest of the session.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: Vec<Rule>,
    allow_delete: bool,
    session_tools: Vec<String>,
    /// errand's own folders (its configuration, plugins and data): protected like `.errand/` when a grant
    /// holds them.
    protected_dirs: Vec<PathBuf>,
    /// Protected files a tool may write without asking once the person allowed that tool for the session, or
    /// an allow rule names the tool itself: `remember` and the folder's memory file ([`crate::memory`]).
    settled_by_allowance: Vec<(String, PathBuf)>,
}

impl Policy {
    /// A policy with these rules (order matters only for which rule a reason names); `allow_delete` is the
    /// `--allow-delete` flag.
    pub fn new(rules: Vec<Rule>, allow_delete: bool) -> Policy {
        Policy {
            rules,
            allow_delete,
            session_tools: Vec::new(),
            protected_dirs: Vec::new(),
            settled_by_allowance: Vec::new(),
        }
    }

    /// Lets the person's "allow for this session" answer for `tool`, or an allow rule naming `tool` itself (not
    /// a glob such as `*`), settle its writes of the protected file `path`: the first call is asked about, later
    /// ones run. For a tool that writes nothing but that one file (`remember` and the memory file). Deny and ask
    /// rules, and the taint gate, still come first.
    pub fn settle_by_allowance(&mut self, tool: &str, path: PathBuf) {
        self.settled_by_allowance.push((tool.to_string(), path));
    }

    /// Protects everything under `dirs` (errand's configuration and data folders) as `.errand/` is: writes
    /// there are always asked about. A person who grants their home folder must not find errand rewriting its
    /// own settings or plugins.
    pub fn protect(&mut self, dirs: impl IntoIterator<Item = PathBuf>) {
        self.protected_dirs.extend(dirs);
    }

    /// The person answered "allow for this session" for this tool: later calls of `tool` are allowed as if by
    /// an allow rule `tool` (still subject to deny rules and the hard limits).
    pub fn allow_for_session(&mut self, tool: &str) {
        if !self.session_tools.iter().any(|allowed| allowed == tool) {
            self.session_tools.push(tool.to_string());
        }
    }

    /// Takes in the tools the person allowed for the session while `other` (a sub-agent's copy of this
    /// policy) was in use.
    pub fn take_session_allows(&mut self, other: &Policy) {
        for tool in &other.session_tools {
            self.allow_for_session(tool);
        }
    }

    /// This policy with `rules` added after its own: the allow rules a skill loaded for one run brings. Deny
    /// and ask rules, the hard limits and the protected files still come before any allow rule: a skill's rule
    /// naming `remember` does not settle the memory file, only the person's own rules and answers do.
    pub fn with_rules(&self, rules: impl IntoIterator<Item = Rule>) -> Policy {
        let mut policy = self.clone();
        policy.rules.extend(rules);
        policy.settled_by_allowance.clear();
        policy
    }

    /// Whether errand itself may reach `host` (a schedule's webhook): an allow `network(…)` rule matches it,
    /// and no ask or deny rule does.
    pub fn allows_host(&self, host: &str) -> bool {
        let narrowed = self
            .rules
            .iter()
            .any(|rule| matches!(rule.action, RuleAction::Ask | RuleAction::Deny) && rule.names_host(host));
        !narrowed && self.rules.iter().any(|rule| rule.allows_network_to(host))
    }

    /// Whether a command may open a connection to `host` at all (a `CONNECT`, before any request is seen):
    /// as for any call reaching `host`, except that a request rule (`allow network(HOST, GET /v1/*)`) also
    /// opens it, for its requests to be judged one by one ([`Policy::judge_request`]).
    pub fn judge_connect(&self, host: &str, grants: &Grants) -> Decision {
        let effects = Effects { hosts: vec![host.to_string()], ..Effects::default() };
        match self.decide(NETWORK, &effects, grants, &PlanGate::Off, &Taint::new()) {
            Decision::Ask(_) if self.has_request_rules(host, RuleAction::Allow) => Decision::Allow,
            decision => decision,
        }
    }

    /// Whether a rule about single requests (`network(HOST, METHOD PATH)`) with `action` names `host`: then
    /// a connection to it must be opened up (TLS ended at errand's proxy) for each request to be judged.
    pub fn has_request_rules(&self, host: &str, action: RuleAction) -> bool {
        self.rules.iter().any(|rule| rule.action == action && rule.request.is_some() && rule.names_host(host))
    }

    /// Whether any request rule names `host`, whatever it does.
    pub fn judges_requests_to(&self, host: &str) -> bool {
        self.rules.iter().any(|rule| rule.request.is_some() && rule.names_host(host))
    }

    /// What the network rules say about one request a command sends through errand's proxy: a matching deny
    /// rule refuses it; then an ask rule asks; then a host rule or a matching request rule allows it. A host
    /// that only request rules open refuses the requests none of them matches.
    pub fn judge_request(&self, host: &str, method: &str, path: &str) -> Decision {
        let matching = |action: RuleAction| {
            self.rules.iter().find(|rule| rule.action == action && rule.applies_to_request(host, method, path))
        };
        let request = format!("{method} {} to {host}", path.split(['?', '#']).next().unwrap_or_default());
        if let Some(rule) = matching(RuleAction::Deny) {
            return Decision::Deny(format!("{request} is denied by the rule `{rule}` from {}", rule.source));
        }
        if let Some(rule) = matching(RuleAction::Ask) {
            return Decision::Ask(format!("{request} needs your approval (rule `{rule}` from {})", rule.source));
        }
        if matching(RuleAction::Allow).is_some() {
            return Decision::Allow;
        }
        let scoped: Vec<String> = self
            .rules
            .iter()
            .filter(|rule| rule.action == RuleAction::Allow && rule.request.is_some() && rule.names_host(host))
            .map(|rule| format!("`{rule}`"))
            .collect();
        if scoped.is_empty() {
            Decision::Deny(format!("{host} is not an allowed host; the person can allow it with --allow-net {host}"))
        } else {
            Decision::Deny(format!("{request} is outside what the rules allow for {host} ({})", scoped.join(", ")))
        }
    }

    /// Decides whether a call of `tool` with these declared `effects` may run, must be asked about, or is
    /// refused. Reasons name paths as [`Grants::display`] shows them.
    ///
    /// Once `taint` says untrusted content is in the conversation, [`Policy::tainted_ask`] comes right after
    /// the deny rules: nothing but the person's answer lets those calls run.
    pub fn decide(&self, tool: &str, effects: &Effects, grants: &Grants, plan: &PlanGate, taint: &Taint) -> Decision {
        if let Some(reason) = hard_limit(effects, grants, plan) {
            return Decision::Deny(reason);
        }

        let subjects = Subject::all(effects);
        let triggered = |action: RuleAction| {
            self.rules
                .iter()
                .filter(move |rule| rule.action == action)
                .find_map(|rule| rule.triggered_by(tool, &subjects, grants).map(|subject| (rule, subject)))
        };
        if let Some((rule, subject)) = triggered(RuleAction::Deny) {
            return Decision::Deny(format!("{subject} is denied by the rule `{rule}` from {}", rule.source));
        }
        if let Some(reason) = self.tainted_ask(effects, grants, plan, taint) {
            return Decision::Ask(reason);
        }
        if let Some((rule, subject)) = triggered(RuleAction::Ask) {
            return Decision::Ask(format!("{subject} needs your approval (rule `{rule}` from {})", rule.source));
        }
        // Files that run code or change errand's own rules: always asked about, whatever allows the rest; a
        // memory file once the person allowed its tool.
        let settles = |path: &PathBuf| {
            self.settled_by_allowance.iter().any(|(settled_tool, settled)| settled_tool == tool && settled == path)
        };
        let tool_allowed = self.session_tools.iter().any(|allowed| allowed == tool)
            || self.rules.iter().any(|rule| {
                rule.action == RuleAction::Allow
                    && split_rule(&rule.text).is_ok_and(|(name, _)| name.trim() == tool)
                    && rule.covers(tool, &subjects, grants)
            });
        if let Some(path) =
            effects.writes().find(|path| self.is_protected(path, grants) && !(settles(path) && tool_allowed))
        {
            if settles(path) {
                return Decision::Ask(format!(
                    "{tool} writes {}, which errand reads into every later session here: the first time in a \
                     session needs your approval (allowing {tool} for the session, or --allow {tool}, stops the \
                     question)",
                    grants.display(path)
                ));
            }
            return Decision::Ask(format!(
                "changing {} needs your approval: {PROTECTED_FILES} are protected",
                grants.display(path)
            ));
        }
        let allowed_by_rule = self.session_tools.iter().any(|allowed| allowed == tool)
            || self
                .rules
                .iter()
                .filter(|rule| rule.action == RuleAction::Allow)
                .any(|rule| rule.covers(tool, &subjects, grants));
        if allowed_by_rule {
            return Decision::Allow;
        }

        // Hosts the network rules allow are settled; the rest of the call is judged as if it reached none
        // of them.
        let unsettled = |host: &&String| !self.rules.iter().any(|rule| rule.allows_network_to(host));
        if effects.hosts.iter().any(|host| !unsettled(&host)) {
            let rest = Effects { hosts: effects.hosts.iter().filter(unsettled).cloned().collect(), ..effects.clone() };
            let subjects = Subject::all(&rest);
            let covered = self
                .rules
                .iter()
                .filter(|rule| rule.action == RuleAction::Allow)
                .any(|rule| rule.covers(tool, &subjects, grants));
            return if covered { Decision::Allow } else { self.default_decision(&rest, grants, plan) };
        }

        self.default_decision(effects, grants, plan)
    }

    /// Why the call needs the person's own answer because untrusted content is in the conversation (`None`
    /// when the session is clean or the call does none of these): it reaches a host the session had not
    /// reached before the taint, calls an MCP tool its server does not mark read-only, deletes what the
    /// person did not approve in a plan, or writes a protected file. Rules, `--allow-delete`, session
    /// allowances, skills and hooks do not answer it; the reason names the source.
    pub fn tainted_ask(&self, effects: &Effects, grants: &Grants, plan: &PlanGate, taint: &Taint) -> Option<String> {
        let source = taint.source()?;
        let act = if let Some(host) = effects.hosts.iter().find(|host| !taint.knows_host(host)) {
            format!("reaching {host}, a host this session had not reached before,")
        } else if let Some(call) = effects.external.first() {
            format!("calling {call}, an MCP tool its server does not mark read-only,")
        } else if !effects.delete.is_empty()
            && !matches!(plan, PlanGate::Approved(plan) if plan.grants_deletes(&effects.delete, grants))
        {
            format!("deleting {}", name_paths(&effects.delete, grants))
        } else if let Some(path) = effects.writes().find(|path| self.is_protected(path, grants)) {
            format!("changing {} (protected: {PROTECTED_FILES})", grants.display(path))
        } else {
            return None;
        };
        Some(format!(
            "{act} {AFTER_UNTRUSTED} ({source}) needs your approval; no rule allows this once untrusted content is \
             in the conversation, since it may carry instructions"
        ))
    }

    /// Whether writing `path` could make code run later or change what errand does ([`PROTECTED_FILES`]).
    fn is_protected(&self, path: &Path, grants: &Grants) -> bool {
        is_protected(path, grants) || self.protected_dirs.iter().any(|dir| path.starts_with(dir))
    }

    /// What happens when no rule matched.
    fn default_decision(&self, effects: &Effects, grants: &Grants, plan: &PlanGate) -> Decision {
        let mut seen = HashSet::new();
        let written: Vec<&PathBuf> = effects.writes().filter(|path| seen.insert(*path)).collect();
        if written.is_empty() && effects.commands.is_empty() && effects.hosts.is_empty() && effects.external.is_empty()
        {
            return Decision::Allow;
        }

        // What an outside tool changes, errand cannot journal or undo, and no plan can name it.
        if let Some(call) = effects.external.first() {
            return Decision::Ask(format!(
                "{call} is an MCP tool its server does not mark read-only; what it changes is outside errand's undo"
            ));
        }

        if !effects.delete.is_empty() {
            let granted_by_plan = match plan {
                PlanGate::Approved(plan) => plan.grants_deletes(&effects.delete, grants),
                PlanGate::Off | PlanGate::Pending => false,
            };
            if !self.allow_delete && !granted_by_plan {
                return Decision::Ask(format!("deleting {} needs your approval", name_paths(&effects.delete, grants)));
            }
        }

        if written.len() > MAX_FILES_PER_CALL {
            return Decision::Ask(format!(
                "this call changes {} files ({}); changing more than {MAX_FILES_PER_CALL} files at once needs your \
                 approval",
                written.len(),
                name_paths(&written, grants)
            ));
        }

        if let PlanGate::Approved(plan) = plan
            && let Some(uncovered) = plan.first_uncovered(effects, grants)
        {
            return Decision::Ask(format!("{uncovered} is outside the approved plan"));
        }

        let planned_commands = match plan {
            PlanGate::Approved(plan) => plan.covers_commands(&effects.commands),
            PlanGate::Off | PlanGate::Pending => false,
        };
        if let Some(command) = effects.commands.first()
            && !planned_commands
        {
            return Decision::Ask(format!("{} needs your approval", Subject::Command(command).describe(grants)));
        }
        if let Some(host) = effects.hosts.first() {
            return Decision::Ask(format!(
                "{} needs your approval (--allow-net {host} allows it)",
                Subject::Host(host).describe(grants)
            ));
        }
        Decision::Allow
    }
}

/// What [`is_protected`] covers, for reasons.
const PROTECTED_FILES: &str = "git hooks, shell startup files, errand's settings (.errand/, errand's own \
     folders), MCP server lists (.mcp.json), plugin files (.claude-plugin/, .claude/) and the folder's context \
     files (context.md, CLAUDE.md, AGENTS.md)";

/// Shell startup files: writing one changes what runs in every later shell.
const SHELL_STARTUP_FILES: [&str; 9] = [
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".profile",
    ".zshrc",
    ".zprofile",
    ".zshenv",
    ".zlogin",
];

/// Whether writing `path` could make code run later or change what errand does: anything under
/// `.git/hooks`, shell startup files, anything under a `.errand/` folder (settings, at whatever depth: a
/// subfolder may be granted on its own later), `.mcp.json` files (they start programs), plugin files
/// (`.claude-plugin/`, `.claude/`), and the context files at a grant's root, which reach every later
/// session's model as instructions.
fn is_protected(path: &Path, grants: &Grants) -> bool {
    let root = grants
        .grants()
        .iter()
        .filter(|grant| path.starts_with(&grant.root))
        .map(|grant| grant.root.as_path())
        .max_by_key(|root| root.as_os_str().len());
    let inside = root.and_then(|root| path.strip_prefix(root).ok()).unwrap_or(path);
    let names: Vec<&std::ffi::OsStr> = inside.iter().collect();
    names.windows(2).any(|pair| pair[0] == ".git" && pair[1] == "hooks")
        || names.iter().any(|name| [".errand", ".claude-plugin", ".claude"].iter().any(|dir| *name == *dir))
        || names.last().is_some_and(|last| *last == ".mcp.json")
        || (names.len() == 1 && crate::context::CONTEXT_FILE_NAMES.iter().any(|name| names[0] == *name))
        || names.last().is_some_and(|last| SHELL_STARTUP_FILES.iter().any(|name| *last == *name))
}

/// The limits no rule overrides: every path inside a grant, no write into a read-only grant, and nothing
/// changed before the plan is approved. Returns the reason for refusing.
fn hard_limit(effects: &Effects, grants: &Grants, plan: &PlanGate) -> Option<String> {
    let reads = effects.read.iter().map(|path| (path, Access::Read));
    let writes = effects.writes().map(|path| (path, Access::Write));
    if let Some(reason) = reads.chain(writes).find_map(|(path, access)| refusal(path, access, grants)) {
        return Some(reason);
    }
    let changes = effects.writes().next().is_some() || !effects.commands.is_empty() || !effects.hosts.is_empty();
    (matches!(plan, PlanGate::Pending) && changes).then(|| PLAN_PENDING.to_string())
}

/// Why `path` may not be accessed this way, if it may not.
fn refusal(path: &Path, access: Access, grants: &Grants) -> Option<String> {
    let shown = grants.display(path);
    // Effects are resolved by the tools already; this lexical check and the resolution below are a second
    // line, so a tool that forgot to resolve a path cannot reach outside.
    let Some(grant) = grants
        .grants()
        .iter()
        .filter(|grant| path.is_absolute() && path.starts_with(&grant.root))
        .max_by_key(|grant| grant.root.as_os_str().len())
    else {
        return Some(format!("{shown} is outside the granted folders"));
    };
    if access == Access::Write && grant.mode == GrantMode::ReadOnly {
        return Some(format!(
            "{shown} is in the read-only folder {}; errand may read it but not change it",
            grant.root.display()
        ));
    }
    let Some(text) = path.to_str() else {
        return Some(format!("{shown} cannot be checked against the granted folders: its name is not valid UTF-8"));
    };
    grants.resolve(text, access).err().map(|error| error.to_string())
}

/// "a", "a and b", or "a and 3 others".
fn name_paths(paths: &[impl AsRef<Path>], grants: &Grants) -> String {
    match paths {
        [] => String::new(),
        [only] => grants.display(only.as_ref()),
        [first, second] => format!("{} and {}", grants.display(first.as_ref()), grants.display(second.as_ref())),
        [first, rest @ ..] => format!("{} and {} others", grants.display(first.as_ref()), rest.len()),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use pretty_assertions::assert_eq;
    use tempfile::TempDir;

    use super::*;

    #[test]
    fn errand_itself_reaches_a_host_only_by_an_allow_rule_no_ask_or_deny_overrides() {
        let rule = |action, text: &str| Rule::parse(action, text, "config.toml").unwrap();
        let policy = Policy::new(
            vec![
                rule(RuleAction::Allow, "network(hooks.example.com)"),
                rule(RuleAction::Allow, "network(*.example.org)"),
                rule(RuleAction::Deny, "network(bad.example.org)"),
                rule(RuleAction::Allow, "write_file(**)"),
            ],
            false,
        );
        assert!(policy.allows_host("hooks.example.com"));
        assert!(policy.allows_host("ci.example.org"));
        assert!(!policy.allows_host("bad.example.org"), "a deny rule wins");
        assert!(!policy.allows_host("example.net"), "nothing allows it");
        assert!(!Policy::new(Vec::new(), false).allows_host("hooks.example.com"));
    }

    /// A temporary layout: `work` (read-write, primary), `other` (read-write), `reference` (read-only), and
    /// `outside` (not granted); `work/escape` is a symlink to `outside`.
    struct Tree {
        _temp: TempDir,
        folders: Vec<(&'static str, PathBuf)>,
        grants: Grants,
    }

    fn tree() -> Tree {
        let temp = TempDir::new().unwrap();
        let base = fs::canonicalize(temp.path()).unwrap();
        let folders: Vec<(&'static str, PathBuf)> =
            ["work", "other", "reference", "outside"].into_iter().map(|name| (name, base.join(name))).collect();
        for (_, folder) in &folders {
            fs::create_dir_all(folder).unwrap();
        }
        fs::write(base.join("outside/secret.txt"), "secret").unwrap();
        symlink(base.join("outside"), base.join("work/escape")).unwrap();
        let grants = Grants::new(vec![
            (base.join("work"), GrantMode::ReadWrite),
            (base.join("other"), GrantMode::ReadWrite),
            (base.join("reference"), GrantMode::ReadOnly),
        ])
        .unwrap();
        Tree { _temp: temp, folders, grants }
    }

    impl Tree {
        /// Replaces `{work}`, `{other}`, `{reference}` and `{outside}` with the folders' absolute paths.
        fn expand(&self, text: &str) -> String {
            self.folders.iter().fold(text.to_string(), |text, (name, folder)| {
                text.replace(&format!("{{{name}}}"), folder.to_str().unwrap())
            })
        }

        /// A path from the table: relative to `work`, or absolute through a placeholder.
        fn path(&self, text: &str) -> PathBuf {
            self.folders[0].1.join(self.expand(text))
        }

        /// Effects from a compact spec: `;`-separated `read P`, `create P`, `modify P`, `move P -> Q`,
        /// `delete P`, `run COMMAND`, `host NAME`, `create-many N FOLDER`, and `read-raw P` (not made absolute).
        fn effects(&self, spec: &str) -> Effects {
            let mut effects = Effects::default();
            for item in spec.split(';').map(str::trim).filter(|item| !item.is_empty()) {
                let (kind, rest) = item.split_once(' ').unwrap();
                match kind {
                    "read" => effects.read.push(self.path(rest)),
                    "read-raw" => effects.read.push(PathBuf::from(rest)),
                    "create" => effects.create.push(self.path(rest)),
                    "modify" => effects.modify.push(self.path(rest)),
                    "move" => {
                        let (from, to) = rest.split_once(" -> ").unwrap();
                        effects.moves.push((self.path(from), self.path(to)));
                    }
                    "delete" => effects.delete.push(self.path(rest)),
                    "run" => effects.commands.push(rest.to_string()),
                    "host" => effects.hosts.push(rest.to_string()),
                    "create-many" => {
                        let (count, folder) = rest.split_once(' ').unwrap();
                        for index in 1..=count.parse::<usize>().unwrap() {
                            effects.create.push(self.path(&format!("{folder}/file-{index:02}.md")));
                        }
                    }
                    _ => panic!("unknown effect kind in {item:?}"),
                }
            }
            effects
        }
    }

    /// The plan gate of a case, with placeholders in its globs.
    enum Plan {
        Off,
        Pending,
        Approved {
            create: &'static [&'static str],
            modify: &'static [&'static str],
            moves: &'static [&'static str],
            delete: &'static [&'static str],
            deletes_granted: bool,
        },
        /// An approved plan that names only these commands.
        Commands(&'static [&'static str]),
    }

    const NO_PLAN_GLOBS: Plan =
        Plan::Approved { create: &[], modify: &[], moves: &[], delete: &[], deletes_granted: true };

    /// The expected decision, with a fragment its reason must contain.
    #[derive(Debug)]
    enum Expected {
        Allow,
        Ask(&'static str),
        Deny(&'static str),
    }

    struct Case {
        name: &'static str,
        /// `allow|ask|deny TEXT`, all from source `test.toml`.
        rules: &'static [&'static str],
        session: &'static [&'static str],
        allow_delete: bool,
        plan: Plan,
        tool: &'static str,
        effects: &'static str,
        /// Untrusted content (`file inbox/brief.docx`) is in the conversation.
        tainted: bool,
        /// Hosts reached before the taint.
        reached: &'static [&'static str],
        expected: Expected,
    }

    const BASE: Case = Case {
        name: "",
        rules: &[],
        session: &[],
        allow_delete: false,
        plan: Plan::Off,
        tool: "write_file",
        effects: "",
        tainted: false,
        reached: &[],
        expected: Expected::Allow,
    };

    fn cases() -> Vec<Case> {
        vec![
            // Commands a plan names, and protected files.
            Case {
                name: "a command the approved plan names runs without asking",
                plan: Plan::Commands(&["make *", "git status"]),
                tool: "run_command",
                effects: "run make report",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "a command the approved plan does not name asks",
                plan: Plan::Commands(&["make *"]),
                tool: "run_command",
                effects: "run rm -rf build",
                expected: Expected::Ask("running `rm -rf build` needs your approval"),
                ..BASE
            },
            Case {
                name: "a git hook is protected even with --no-plan",
                effects: "create .git/hooks/pre-commit",
                expected: Expected::Ask("changing .git/hooks/pre-commit needs your approval"),
                ..BASE
            },
            Case {
                name: "a shell startup file is protected even from an allow rule",
                rules: &["allow write_file"],
                effects: "modify sub/.bashrc",
                expected: Expected::Ask("shell startup files"),
                ..BASE
            },
            Case {
                name: "errand's folder settings are protected",
                effects: "modify .errand/settings.toml",
                expected: Expected::Ask("errand's settings (.errand/"),
                ..BASE
            },
            Case {
                name: "anything under a nested .errand folder is protected",
                effects: "create sub/.errand/notes.txt",
                expected: Expected::Ask("errand's settings (.errand/"),
                ..BASE
            },
            Case {
                name: "a context file at the grant's root is protected even from an allow rule",
                rules: &["allow write_file"],
                effects: "modify AGENTS.md",
                expected: Expected::Ask("changing AGENTS.md needs your approval"),
                ..BASE
            },
            Case {
                name: "CLAUDE.md and context.md at the root are protected too",
                effects: "create CLAUDE.md",
                expected: Expected::Ask("context files"),
                ..BASE
            },
            Case {
                name: "a file named like a context file deeper down is ordinary",
                effects: "modify notes/context.md",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "a deny rule still beats protection",
                rules: &["deny write_file(.git/**)"],
                effects: "create .git/hooks/pre-commit",
                expected: Expected::Deny("denied by the rule"),
                ..BASE
            },
            // Hard limits.
            Case {
                name: "reading outside every grant is denied even with an allow rule",
                rules: &["allow read_file"],
                tool: "read_file",
                effects: "read {outside}/secret.txt",
                expected: Expected::Deny("secret.txt is outside the granted folders"),
                ..BASE
            },
            Case {
                name: "a relative path in the effects counts as outside",
                tool: "read_file",
                effects: "read-raw notes/a.md",
                expected: Expected::Deny("notes/a.md is outside the granted folders"),
                ..BASE
            },
            Case {
                name: "a path through a symlink leading outside is denied by the resolution check",
                rules: &["allow read_file"],
                tool: "read_file",
                effects: "read escape/secret.txt",
                expected: Expected::Deny("symbolic link"),
                ..BASE
            },
            Case {
                name: "writing into a read-only grant is denied even with an allow rule",
                rules: &["allow write_file", "allow write_file({reference}/**)"],
                effects: "modify {reference}/a.md",
                expected: Expected::Deny("is in the read-only folder"),
                ..BASE
            },
            Case {
                name: "the destination of a move into a read-only grant is denied",
                tool: "move_path",
                effects: "move notes/a.md -> {reference}/a.md",
                expected: Expected::Deny("is in the read-only folder"),
                ..BASE
            },
            Case {
                name: "reading a read-only grant is allowed",
                tool: "read_file",
                effects: "read {reference}/a.md",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "a write before the plan is approved is denied even with an allow rule",
                rules: &["allow write_file"],
                session: &["write_file"],
                plan: Plan::Pending,
                effects: "create reports/a.md",
                expected: Expected::Deny("call propose_plan first"),
                ..BASE
            },
            Case {
                name: "a delete before the plan is approved is denied even with --allow-delete",
                allow_delete: true,
                plan: Plan::Pending,
                tool: "delete_path",
                effects: "delete tmp/a",
                expected: Expected::Deny("nothing may change before the plan is approved"),
                ..BASE
            },
            Case {
                name: "a command before the plan is approved is denied",
                rules: &["allow run_command"],
                plan: Plan::Pending,
                tool: "run_command",
                effects: "run ls",
                expected: Expected::Deny("call propose_plan first"),
                ..BASE
            },
            Case {
                name: "a network call before the plan is approved is denied",
                rules: &["allow fetch"],
                plan: Plan::Pending,
                tool: "fetch",
                effects: "host example.com",
                expected: Expected::Deny("call propose_plan first"),
                ..BASE
            },
            Case {
                name: "reading before the plan is approved is allowed",
                plan: Plan::Pending,
                tool: "read_file",
                effects: "read notes/a.md",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "a call with no effects (propose_plan) is allowed before approval",
                plan: Plan::Pending,
                tool: "propose_plan",
                effects: "",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "an outside path is denied before a deny rule is consulted",
                rules: &["deny read_file"],
                tool: "read_file",
                effects: "read {outside}/secret.txt",
                expected: Expected::Deny("outside the granted folders"),
                ..BASE
            },
            // Rules and their precedence.
            Case {
                name: "a deny rule on a read path blocks reading",
                rules: &["deny read_file(secrets/**)"],
                tool: "read_file",
                effects: "read secrets/a",
                expected: Expected::Deny(
                    "reading secrets/a is denied by the rule `deny read_file(secrets/**)` from test.toml",
                ),
                ..BASE
            },
            Case {
                name: "a deny rule does not fire on other paths",
                rules: &["deny read_file(secrets/**)"],
                tool: "read_file",
                effects: "read notes/secrets/a",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "deny wins over allow",
                rules: &["allow read_file", "deny read_file(secrets/**)"],
                tool: "read_file",
                effects: "read secrets/a",
                expected: Expected::Deny("denied by the rule"),
                ..BASE
            },
            Case {
                name: "deny wins over ask",
                rules: &["ask *", "deny read_file(secrets/**)"],
                tool: "read_file",
                effects: "read secrets/a",
                expected: Expected::Deny("`deny read_file(secrets/**)`"),
                ..BASE
            },
            Case {
                name: "ask wins over allow",
                rules: &["allow write_file", "ask write_file(reports/**)"],
                effects: "create reports/a.md",
                expected: Expected::Ask(
                    "creating reports/a.md needs your approval (rule `ask write_file(reports/**)` from test.toml)",
                ),
                ..BASE
            },
            Case {
                name: "an ask rule overrides the read default",
                rules: &["ask read_file(secrets/**)"],
                tool: "read_file",
                effects: "read secrets/a",
                expected: Expected::Ask("reading secrets/a needs your approval"),
                ..BASE
            },
            Case {
                name: "any read path of a writing call triggers a deny rule, with a glob tool part",
                rules: &["deny *(secrets/**)"],
                tool: "copy_file",
                effects: "read secrets/a; create notes/a",
                expected: Expected::Deny("reading secrets/a is denied"),
                ..BASE
            },
            Case {
                name: "either end of a move triggers a deny rule",
                rules: &["deny move_path(archive/**)"],
                tool: "move_path",
                effects: "move notes/a.md -> archive/a.md",
                expected: Expected::Deny("moving notes/a.md to archive/a.md is denied"),
                ..BASE
            },
            Case {
                name: "a rule with a pattern does not match a call declaring nothing",
                rules: &["deny list_files(**)"],
                tool: "list_files",
                effects: "",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "a rule without a pattern matches every call of the tool",
                rules: &["deny list_files"],
                tool: "list_files",
                effects: "",
                expected: Expected::Deny("calling list_files is denied"),
                ..BASE
            },
            Case {
                name: "a tool glob matches every tool of an MCP server",
                rules: &["ask mcp__tracker__*"],
                tool: "mcp__tracker__create_issue",
                effects: "",
                expected: Expected::Ask("calling mcp__tracker__create_issue needs your approval"),
                ..BASE
            },
            Case {
                name: "a tool glob does not match another server's tools",
                rules: &["ask mcp__tracker__*"],
                tool: "mcp__mail__send",
                effects: "",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "an absolute path pattern matches a path in the primary folder",
                rules: &["deny read_file({work}/secrets/**)"],
                tool: "read_file",
                effects: "read secrets/deep/a",
                expected: Expected::Deny("reading secrets/deep/a is denied"),
                ..BASE
            },
            Case {
                name: "a single star stays within one path component",
                rules: &["deny read_file(secrets/*)"],
                tool: "read_file",
                effects: "read secrets/deep/a",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "a pattern written with ./ matches",
                rules: &["deny read_file(./secrets/**)"],
                tool: "read_file",
                effects: "read secrets/a",
                expected: Expected::Deny("reading secrets/a is denied"),
                ..BASE
            },
            Case {
                name: "an allow rule overrides the plan default",
                rules: &["allow write_file(reports/**)"],
                plan: NO_PLAN_GLOBS,
                effects: "create reports/q3/summary.md",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "an allow rule does not cover a write elsewhere",
                rules: &["allow write_file(reports/**)"],
                plan: NO_PLAN_GLOBS,
                effects: "create notes/x.md",
                expected: Expected::Ask("creating notes/x.md is outside the approved plan"),
                ..BASE
            },
            Case {
                name: "an allow rule must cover every written path",
                rules: &["allow delete_path(tmp/**)"],
                tool: "delete_path",
                effects: "delete tmp/a.txt; delete notes/x.md",
                expected: Expected::Ask("deleting tmp/a.txt and notes/x.md needs your approval"),
                ..BASE
            },
            Case {
                name: "an allow rule on writes ignores what the call reads",
                rules: &["allow write_file(reports/**)"],
                plan: NO_PLAN_GLOBS,
                effects: "read notes/source.md; create reports/a.md",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "an allow rule covers a delete without --allow-delete",
                rules: &["allow delete_path(tmp/**)"],
                tool: "delete_path",
                effects: "delete tmp/scratch.txt",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "an absolute allow pattern covers a second grant",
                rules: &["allow delete_path({other}/old/**)"],
                tool: "delete_path",
                effects: "delete {other}/old/x.txt",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "a relative pattern does not match a path in a second grant",
                rules: &["allow delete_path(old/**)"],
                tool: "delete_path",
                effects: "delete {other}/old/x.txt",
                expected: Expected::Ask("/other/old/x.txt needs your approval"),
                ..BASE
            },
            Case {
                name: "an allow rule for another tool does not apply",
                rules: &["allow write_file"],
                tool: "delete_path",
                effects: "delete tmp/a",
                expected: Expected::Ask("deleting tmp/a needs your approval"),
                ..BASE
            },
            // Commands.
            Case {
                name: "a command pattern's star matches spaces and quotes",
                rules: &["allow run_command(git *)"],
                tool: "run_command",
                effects: "run git commit -m \"x y\"",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "a command pattern's star matches slashes",
                rules: &["allow run_command(git *)"],
                tool: "run_command",
                effects: "run git log -- src/main.rs",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "a command not matching the pattern asks",
                rules: &["allow run_command(git *)"],
                tool: "run_command",
                effects: "run gitk --all",
                expected: Expected::Ask("running `gitk --all` needs your approval"),
                ..BASE
            },
            Case {
                name: "a command deny rule wins over a broader allow",
                rules: &["allow run_command(git *)", "deny run_command(git push *)"],
                tool: "run_command",
                effects: "run git push origin main",
                expected: Expected::Deny("running `git push origin main` is denied"),
                ..BASE
            },
            Case {
                name: "commands ask by default",
                tool: "run_command",
                effects: "run ls -la",
                expected: Expected::Ask("running `ls -la` needs your approval"),
                ..BASE
            },
            Case {
                name: "an allow rule must cover every command of the call",
                rules: &["allow run_command(git *)"],
                tool: "run_command",
                effects: "run git status; run rm -rf build",
                expected: Expected::Ask("running `git status` needs your approval"),
                ..BASE
            },
            // Hosts.
            Case {
                name: "a host pattern allows a matching host",
                rules: &["allow fetch(*.github.com)"],
                tool: "fetch",
                effects: "host api.github.com",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "host patterns ignore case",
                rules: &["allow fetch(*.github.com)"],
                tool: "fetch",
                effects: "host API.GitHub.com",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "a host pattern does not match the bare domain",
                rules: &["allow fetch(*.github.com)"],
                tool: "fetch",
                effects: "host github.com",
                expected: Expected::Ask("reaching github.com needs your approval"),
                ..BASE
            },
            Case {
                name: "a host deny rule fires",
                rules: &["deny fetch(*.example)"],
                tool: "fetch",
                effects: "host tracker.example",
                expected: Expected::Deny("reaching tracker.example is denied"),
                ..BASE
            },
            Case {
                name: "a network rule (--allow-net) allows any tool's host",
                rules: &["allow network(docs.rs)"],
                tool: "web_fetch",
                effects: "host docs.rs",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "a network rule allows only the hosts it names",
                rules: &["allow network(docs.rs)"],
                tool: "web_fetch",
                effects: "host crates.io",
                expected: Expected::Ask("reaching crates.io needs your approval"),
                ..BASE
            },
            Case {
                name: "a network deny rule fires for any tool's host",
                rules: &["allow network(*.example)", "deny network(tracker.example)"],
                tool: "web_fetch",
                effects: "host tracker.example",
                expected: Expected::Deny(
                    "reaching tracker.example is denied by the rule `deny network(tracker.example)`",
                ),
                ..BASE
            },
            Case {
                name: "a network ask rule asks for any tool's host",
                rules: &["allow web_fetch", "ask network(*.example)"],
                tool: "web_fetch",
                effects: "host a.example",
                expected: Expected::Ask("reaching a.example needs your approval (rule `ask network(*.example)`"),
                ..BASE
            },
            Case {
                name: "a host the network rules allow leaves the rest of the call to be judged",
                rules: &["allow network(docs.rs)"],
                tool: "fetch",
                effects: "host docs.rs; run ls",
                expected: Expected::Ask("running `ls` needs your approval"),
                ..BASE
            },
            Case {
                name: "a network rule says nothing about a call without hosts",
                rules: &["deny network"],
                tool: "run_command",
                effects: "run ls",
                expected: Expected::Ask("running `ls` needs your approval"),
                ..BASE
            },
            // Deletes.
            Case {
                name: "deletes ask by default",
                tool: "delete_path",
                effects: "delete tmp/a.txt",
                expected: Expected::Ask("deleting tmp/a.txt needs your approval"),
                ..BASE
            },
            Case {
                name: "the delete reason names several paths briefly",
                tool: "delete_path",
                effects: "delete tmp/a.txt; delete tmp/b.txt; delete tmp/c.txt",
                expected: Expected::Ask("deleting tmp/a.txt and 2 others needs your approval"),
                ..BASE
            },
            Case {
                name: "--allow-delete allows deletes",
                allow_delete: true,
                tool: "delete_path",
                effects: "delete tmp/a.txt",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "a person-approved plan naming the delete allows it",
                plan: Plan::Approved {
                    create: &[],
                    modify: &[],
                    moves: &[],
                    delete: &["tmp/**"],
                    deletes_granted: true,
                },
                tool: "delete_path",
                effects: "delete tmp/a.txt; delete tmp/b/c.txt",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "a plan approved with --yes does not grant deletes",
                plan: Plan::Approved {
                    create: &[],
                    modify: &[],
                    moves: &[],
                    delete: &["tmp/**"],
                    deletes_granted: false,
                },
                tool: "delete_path",
                effects: "delete tmp/a.txt",
                expected: Expected::Ask("deleting tmp/a.txt needs your approval"),
                ..BASE
            },
            Case {
                name: "a granted plan covers only the deletes it names",
                plan: Plan::Approved {
                    create: &[],
                    modify: &[],
                    moves: &[],
                    delete: &["tmp/**"],
                    deletes_granted: true,
                },
                tool: "delete_path",
                effects: "delete tmp/a.txt; delete notes/keep.md",
                expected: Expected::Ask("deleting tmp/a.txt and notes/keep.md needs your approval"),
                ..BASE
            },
            // The 20-file threshold.
            Case {
                name: "twenty files in one call are fine",
                effects: "create-many 20 reports",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "twenty-one files in one call ask",
                effects: "create-many 21 reports",
                expected: Expected::Ask("this call changes 21 files (reports/file-01.md and 20 others)"),
                ..BASE
            },
            Case {
                name: "a path written twice counts once",
                effects: "create-many 20 reports; modify reports/file-01.md",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "both ends of a move count toward the threshold",
                effects: "create-many 19 reports; move notes/a.md -> notes/b.md",
                expected: Expected::Ask("this call changes 21 files"),
                ..BASE
            },
            Case {
                name: "the threshold applies when the plan covers the files",
                plan: Plan::Approved {
                    create: &["reports/**"],
                    modify: &[],
                    moves: &[],
                    delete: &[],
                    deletes_granted: true,
                },
                effects: "create-many 21 reports",
                expected: Expected::Ask("changes 21 files"),
                ..BASE
            },
            Case {
                name: "the threshold applies with --allow-delete",
                allow_delete: true,
                tool: "delete_path",
                effects: "create-many 20 reports; delete tmp/a",
                expected: Expected::Ask("changes 21 files"),
                ..BASE
            },
            Case {
                name: "an explicit allow rule lifts the threshold",
                rules: &["allow write_file(reports/**)"],
                effects: "create-many 21 reports",
                expected: Expected::Allow,
                ..BASE
            },
            // Writes and the plan.
            Case {
                name: "without a plan writes inside writable grants are allowed",
                effects: "create notes/x.md; modify {other}/y.md; move notes/a.md -> notes/b.md",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "an approved plan allows the writes it names",
                plan: Plan::Approved {
                    create: &["reports/**"],
                    modify: &["notes/index.md"],
                    moves: &[],
                    delete: &[],
                    deletes_granted: false,
                },
                effects: "create reports/q3.md; modify notes/index.md",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "create and modify globs are interchangeable",
                plan: Plan::Approved {
                    create: &["notes/index.md"],
                    modify: &["reports/**"],
                    moves: &[],
                    delete: &[],
                    deletes_granted: false,
                },
                effects: "modify notes/index.md; create reports/q3.md",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "a write outside the approved plan asks",
                plan: Plan::Approved {
                    create: &["reports/**"],
                    modify: &[],
                    moves: &[],
                    delete: &[],
                    deletes_granted: false,
                },
                effects: "create reports/q3.md; create notes/x.md",
                expected: Expected::Ask("creating notes/x.md is outside the approved plan"),
                ..BASE
            },
            Case {
                name: "absolute plan globs match",
                plan: Plan::Approved {
                    create: &["{other}/out/*.csv"],
                    modify: &[],
                    moves: &[],
                    delete: &[],
                    deletes_granted: false,
                },
                effects: "create {other}/out/table.csv",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "a plan entry ending in / covers everything under the folder",
                plan: Plan::Approved {
                    create: &["./reports/"],
                    modify: &[],
                    moves: &[],
                    delete: &[],
                    deletes_granted: false,
                },
                effects: "create reports/2024/q3.md",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "a malformed plan glob covers nothing",
                plan: Plan::Approved {
                    create: &["reports/[", ""],
                    modify: &[],
                    moves: &[],
                    delete: &[],
                    deletes_granted: false,
                },
                effects: "create reports/[",
                expected: Expected::Ask("creating reports/[ is outside the approved plan"),
                ..BASE
            },
            Case {
                name: "a move matches when its source matches the plan's moves",
                plan: Plan::Approved {
                    create: &[],
                    modify: &[],
                    moves: &["inbox/*"],
                    delete: &[],
                    deletes_granted: false,
                },
                tool: "move_path",
                effects: "move inbox/a.pdf -> archive/a.pdf",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "a move from elsewhere is outside the plan",
                plan: Plan::Approved {
                    create: &["notes/**"],
                    modify: &["notes/**"],
                    moves: &["inbox/*"],
                    delete: &[],
                    deletes_granted: false,
                },
                tool: "move_path",
                effects: "move notes/a.md -> inbox/a.md",
                expected: Expected::Ask("moving notes/a.md to inbox/a.md is outside the approved plan"),
                ..BASE
            },
            Case {
                name: "a plan move written a -> b needs both ends to match",
                plan: Plan::Approved {
                    create: &[],
                    modify: &[],
                    moves: &["inbox/* -> archive/**"],
                    delete: &[],
                    deletes_granted: false,
                },
                tool: "move_path",
                effects: "move inbox/a.pdf -> archive/2024/a.pdf",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "a plan move written a -> b refuses another destination",
                plan: Plan::Approved {
                    create: &[],
                    modify: &[],
                    moves: &["inbox/* -> archive/**"],
                    delete: &[],
                    deletes_granted: false,
                },
                tool: "move_path",
                effects: "move inbox/a.pdf -> trashcan/a.pdf",
                expected: Expected::Ask("moving inbox/a.pdf to trashcan/a.pdf is outside the approved plan"),
                ..BASE
            },
            Case {
                name: "a plan covering writes does not cover a command",
                plan: Plan::Approved { create: &["**"], modify: &[], moves: &[], delete: &[], deletes_granted: true },
                tool: "run_command",
                effects: "run make report",
                expected: Expected::Ask("running `make report` needs your approval"),
                ..BASE
            },
            // Session allowances.
            Case {
                name: "a session allowance allows later calls of the tool",
                session: &["run_command"],
                tool: "run_command",
                effects: "run make report",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "a session allowance does not apply to other tools",
                session: &["run_command"],
                tool: "fetch",
                effects: "host example.com",
                expected: Expected::Ask("reaching example.com needs your approval"),
                ..BASE
            },
            Case {
                name: "a session allowance is still subject to deny rules",
                rules: &["deny run_command(*rm -rf*)"],
                session: &["run_command"],
                tool: "run_command",
                effects: "run rm -rf build",
                expected: Expected::Deny("running `rm -rf build` is denied"),
                ..BASE
            },
            Case {
                name: "a session allowance is still subject to ask rules",
                rules: &["ask run_command(git push*)"],
                session: &["run_command"],
                tool: "run_command",
                effects: "run git push",
                expected: Expected::Ask("running `git push` needs your approval"),
                ..BASE
            },
            Case {
                name: "a session allowance is still subject to the hard limits",
                session: &["read_file"],
                tool: "read_file",
                effects: "read {outside}/secret.txt",
                expected: Expected::Deny("outside the granted folders"),
                ..BASE
            },
            Case {
                name: "a session allowance lifts the threshold like an allow rule",
                session: &["write_file"],
                effects: "create-many 21 reports",
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "a session allowance covers deletes like an allow rule",
                session: &["delete_path"],
                tool: "delete_path",
                effects: "delete tmp/a.txt",
                expected: Expected::Allow,
                ..BASE
            },
            // Untrusted content in the conversation: the acts an attacker wants need the person's answer.
            Case {
                name: "after taint, a host no one reached before asks though a rule allows it",
                rules: &["allow network(api.example.com)"],
                tool: "web_fetch",
                effects: "host api.example.com",
                tainted: true,
                expected: Expected::Ask(
                    "reaching api.example.com, a host this session had not reached before, after the session read \
                     untrusted content (file inbox/brief.docx) needs your approval",
                ),
                ..BASE
            },
            Case {
                name: "after taint, an allowed host reached before the taint needs no asking",
                rules: &["allow network(api.example.com)"],
                tool: "web_fetch",
                effects: "host api.example.com",
                tainted: true,
                reached: &["api.example.com"],
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "after taint, --allow-delete no longer covers a delete",
                allow_delete: true,
                tool: "delete_path",
                effects: "delete tmp/a.txt",
                tainted: true,
                expected: Expected::Ask("deleting tmp/a.txt after the session read untrusted content"),
                ..BASE
            },
            Case {
                name: "after taint, an allow rule no longer covers a delete",
                rules: &["allow delete_path"],
                tool: "delete_path",
                effects: "delete tmp/a.txt",
                tainted: true,
                expected: Expected::Ask("(file inbox/brief.docx)"),
                ..BASE
            },
            Case {
                name: "after taint, a session allowance no longer covers a delete",
                session: &["delete_path"],
                tool: "delete_path",
                effects: "delete tmp/a.txt",
                tainted: true,
                expected: Expected::Ask("deleting tmp/a.txt after"),
                ..BASE
            },
            Case {
                name: "after taint, a delete the person approved in the plan runs",
                plan: Plan::Approved {
                    create: &[],
                    modify: &[],
                    moves: &[],
                    delete: &["tmp/*"],
                    deletes_granted: true,
                },
                tool: "delete_path",
                effects: "delete tmp/a.txt",
                tainted: true,
                expected: Expected::Allow,
                ..BASE
            },
            Case {
                name: "after taint, a delete a plan approved by --yes names still asks",
                plan: Plan::Approved {
                    create: &[],
                    modify: &[],
                    moves: &[],
                    delete: &["tmp/*"],
                    deletes_granted: false,
                },
                allow_delete: true,
                tool: "delete_path",
                effects: "delete tmp/a.txt",
                tainted: true,
                expected: Expected::Ask("deleting tmp/a.txt after"),
                ..BASE
            },
            Case {
                name: "after taint, a deny rule still refuses",
                rules: &["deny delete_path(tmp/**)"],
                tool: "delete_path",
                effects: "delete tmp/a.txt",
                tainted: true,
                expected: Expected::Deny("denied by the rule `deny delete_path(tmp/**)`"),
                ..BASE
            },
            Case {
                name: "after taint, writing an MCP server list asks and names the source",
                rules: &["allow write_file"],
                effects: "create .mcp.json",
                tainted: true,
                expected: Expected::Ask("changing .mcp.json (protected:"),
                ..BASE
            },
            Case {
                name: "an MCP server list is protected even in a clean session",
                rules: &["allow write_file"],
                effects: "modify sub/.mcp.json",
                expected: Expected::Ask("changing sub/.mcp.json needs your approval"),
                ..BASE
            },
            Case {
                name: "a plugin's files are protected",
                rules: &["allow write_file"],
                effects: "modify tools/.claude-plugin/plugin.json",
                expected: Expected::Ask("plugin files"),
                ..BASE
            },
            Case {
                name: "after taint, ordinary writes still follow the rules",
                rules: &["allow write_file"],
                effects: "create out/report.md",
                tainted: true,
                expected: Expected::Allow,
                ..BASE
            },
        ]
    }

    fn decide(tree: &Tree, case: &Case) -> Decision {
        let rules = case
            .rules
            .iter()
            .map(|line| {
                let (action, text) = line.split_once(' ').unwrap();
                let action = match action {
                    "allow" => RuleAction::Allow,
                    "ask" => RuleAction::Ask,
                    "deny" => RuleAction::Deny,
                    _ => panic!("unknown action in {line:?}"),
                };
                Rule::parse(action, &tree.expand(text), "test.toml").unwrap()
            })
            .collect();
        let mut policy = Policy::new(rules, case.allow_delete);
        for tool in case.session {
            policy.allow_for_session(tool);
        }
        let expand = |globs: &[&str]| globs.iter().map(|glob| tree.expand(glob)).collect::<Vec<_>>();
        let plan = match &case.plan {
            Plan::Off => PlanGate::Off,
            Plan::Pending => PlanGate::Pending,
            Plan::Approved { create, modify, moves, delete, deletes_granted } => PlanGate::Approved(ApprovedPlan {
                create: expand(create),
                modify: expand(modify),
                moves: expand(moves),
                delete: expand(delete),
                commands: Vec::new(),
                deletes_granted: *deletes_granted,
            }),
            Plan::Commands(commands) => PlanGate::Approved(ApprovedPlan {
                commands: commands.iter().map(|c| c.to_string()).collect(),
                ..ApprovedPlan::default()
            }),
        };
        let mut taint = Taint::new();
        for host in case.reached {
            taint.reached(host);
        }
        if case.tainted {
            taint.take_in(&errand_model::Provenance::GrantedFile { path: tree.path("inbox/brief.docx") }, &tree.grants);
        }
        policy.decide(case.tool, &tree.effects(case.effects), &tree.grants, &plan, &taint)
    }

    #[test]
    fn an_outside_tool_is_asked_about_unless_a_rule_names_it() {
        let tree = tree();
        let effects = Effects { external: vec!["github/create_issue".into()], ..Effects::default() };
        let ask = Policy::new(Vec::new(), false).decide(
            "mcp__github__create_issue",
            &effects,
            &tree.grants,
            &PlanGate::Off,
            &Taint::new(),
        );
        assert!(matches!(&ask, Decision::Ask(reason) if reason.contains("github/create_issue")), "{ask:?}");
        let rule = Rule::parse(RuleAction::Allow, "mcp__github__*", "--allow").unwrap();
        let allowed = Policy::new(vec![rule], false).decide(
            "mcp__github__create_issue",
            &effects,
            &tree.grants,
            &PlanGate::Off,
            &Taint::new(),
        );
        assert_eq!(allowed, Decision::Allow);
        let read_only = Policy::new(Vec::new(), false).decide(
            "mcp__github__search",
            &Effects::default(),
            &tree.grants,
            &PlanGate::Off,
            &Taint::new(),
        );
        assert_eq!(read_only, Decision::Allow);
    }

    #[test]
    fn after_taint_an_outside_tool_asks_even_when_a_rule_names_it() {
        let tree = tree();
        let effects = Effects { external: vec!["github/create_issue".into()], ..Effects::default() };
        let rule = Rule::parse(RuleAction::Allow, "mcp__github__*", "--allow").unwrap();
        let mut taint = Taint::new();
        taint.take_in(&errand_model::Provenance::Mcp { server: "web".into() }, &tree.grants);
        let policy = Policy::new(vec![rule], false);
        assert_eq!(
            policy.decide("mcp__github__create_issue", &effects, &tree.grants, &PlanGate::Off, &taint),
            Decision::Ask(
                "calling github/create_issue, an MCP tool its server does not mark read-only, after the session read \
                 untrusted content (mcp web) needs your approval; no rule allows this once untrusted content is in \
                 the conversation, since it may carry instructions"
                    .into()
            )
        );
        let read_only = Effects::default();
        assert_eq!(
            policy.decide("mcp__github__search", &read_only, &tree.grants, &PlanGate::Off, &taint),
            Decision::Allow
        );
    }

    #[test]
    fn request_rules_judge_single_requests_and_open_their_host_for_inspection() {
        let tree = tree();
        let rule = |action, text: &str| Rule::parse(action, text, "config.toml").unwrap();
        let policy = Policy::new(
            vec![
                rule(RuleAction::Allow, "network(api.example.com, GET /v1/*)"),
                rule(RuleAction::Allow, "network(api.example.com, post /v1/search)"),
                rule(RuleAction::Deny, "network(*.example.org, * /admin*)"),
                rule(RuleAction::Allow, "network(*.example.org)"),
                rule(RuleAction::Ask, "network(docs.example.net, PUT *)"),
                rule(RuleAction::Allow, "network(docs.example.net)"),
            ],
            false,
        );
        assert_eq!(policy.judge_request("api.example.com", "GET", "/v1/repos/x?page=2"), Decision::Allow);
        assert_eq!(policy.judge_request("api.example.com", "POST", "/v1/search"), Decision::Allow);
        assert_eq!(
            policy.judge_request("api.example.com", "DELETE", "/v1/repos/x"),
            Decision::Deny(
                "DELETE /v1/repos/x to api.example.com is outside what the rules allow for api.example.com (`allow \
                 network(api.example.com, GET /v1/*)`, `allow network(api.example.com, post /v1/search)`)"
                    .into()
            )
        );
        assert!(matches!(policy.judge_request("api.example.com", "GET", "/v2/x"), Decision::Deny(_)));
        assert_eq!(policy.judge_request("cdn.example.org", "GET", "/a/b"), Decision::Allow);
        assert_eq!(
            policy.judge_request("cdn.example.org", "GET", "/admin/users"),
            Decision::Deny(
                "GET /admin/users to cdn.example.org is denied by the rule `deny network(*.example.org, * /admin*)` \
                 from config.toml"
                    .into()
            )
        );
        assert!(
            matches!(policy.judge_request("docs.example.net", "PUT", "/f"), Decision::Ask(reason) if reason.starts_with("PUT /f to docs.example.net needs your approval"))
        );
        assert_eq!(policy.judge_request("docs.example.net", "GET", "/f"), Decision::Allow);
        assert!(
            matches!(policy.judge_request("elsewhere.com", "GET", "/"), Decision::Deny(reason) if reason.contains("--allow-net elsewhere.com"))
        );

        // A connection opens where a host rule or a request rule allows it; request rules mean inspection.
        assert_eq!(policy.judge_connect("api.example.com", &tree.grants), Decision::Allow);
        assert_eq!(policy.judge_connect("cdn.example.org", &tree.grants), Decision::Allow);
        assert!(matches!(policy.judge_connect("elsewhere.com", &tree.grants), Decision::Ask(_)));
        assert!(policy.judges_requests_to("api.example.com") && policy.judges_requests_to("cdn.example.org"));
        assert!(!policy.judges_requests_to("elsewhere.com"));
        // Calls that name only a host (web_fetch) are judged by host rules: a request rule alone does not allow it.
        assert!(!policy.allows_host("api.example.com"));
        let effects = Effects { hosts: vec!["api.example.com".into()], ..Effects::default() };
        assert!(matches!(
            policy.decide("web_fetch", &effects, &tree.grants, &PlanGate::Off, &Taint::new()),
            Decision::Ask(_)
        ));
    }

    #[test]
    fn malformed_request_rules_say_how_to_write_them() {
        for (text, problem) in [
            ("network(api.example.com, GET)", "is not METHOD PATH"),
            ("network(api.example.com, GET v1/*)", "must start with /"),
            ("network(api.example.com, G3T /v1)", "is not an HTTP method"),
            ("network(api.example.com, GET /v1 extra)", "is not METHOD PATH"),
            ("network(api.example.com, GET /v1/[)", "not a valid glob"),
        ] {
            let error = Rule::parse(RuleAction::Allow, text, "config.toml").unwrap_err().to_string();
            assert!(error.contains(problem), "{text}: {error}");
        }
        // Only `network` rules have a request part; elsewhere a comma is part of the pattern.
        assert!(Rule::parse(RuleAction::Allow, "run_command(echo a, b)", "config.toml").is_ok());
    }

    #[test]
    fn errands_own_folders_are_protected_when_a_grant_holds_them() {
        let tree = tree();
        let settings = tree.path("errand-config/config.toml");
        let effects = Effects { modify: vec![settings.clone()], ..Effects::default() };
        let rule = Rule::parse(RuleAction::Allow, "write_file", "--allow").unwrap();
        let mut policy = Policy::new(vec![rule], false);
        assert_eq!(policy.decide("write_file", &effects, &tree.grants, &PlanGate::Off, &Taint::new()), Decision::Allow);
        policy.protect([tree.path("errand-config")]);
        let decision = policy.decide("write_file", &effects, &tree.grants, &PlanGate::Off, &Taint::new());
        assert!(
            matches!(&decision, Decision::Ask(reason) if reason.starts_with("changing errand-config/config.toml needs your approval")),
            "{decision:?}"
        );
    }

    #[test]
    fn the_memory_file_asks_once_then_follows_the_session_allowance_or_an_allow_rule_naming_remember() {
        let tree = tree();
        let memory = tree.path("work/.errand/memory.md");
        let effects = Effects { create: vec![memory.clone()], ..Effects::default() };
        let decide = |policy: &Policy, tool: &str, taint: &Taint| {
            policy.decide(tool, &effects, &tree.grants, &PlanGate::Off, taint)
        };
        let mut policy = Policy::new(vec![], false);
        policy.settle_by_allowance("remember", memory.clone());
        let asked = decide(&policy, "remember", &Taint::new());
        assert_eq!(
            asked,
            Decision::Ask(
                "remember writes work/.errand/memory.md, which errand reads into every later session here: the first \
                 time in a session needs your approval (allowing remember for the session, or --allow remember, \
                 stops the question)"
                    .into()
            )
        );
        policy.allow_for_session("remember");
        assert_eq!(decide(&policy, "remember", &Taint::new()), Decision::Allow);
        // Another tool writing the same file, or remember after untrusted content, is still asked about.
        policy.allow_for_session("write_file");
        assert!(
            matches!(decide(&policy, "write_file", &Taint::new()), Decision::Ask(reason) if reason.contains("protected"))
        );
        let mut tainted = Taint::new();
        tainted.take_in(&errand_model::Provenance::Web { host: "example.com".into() }, &tree.grants);
        assert!(
            matches!(decide(&policy, "remember", &tainted), Decision::Ask(reason) if reason.contains(AFTER_UNTRUSTED))
        );

        let rule = |text: &str| Rule::parse(RuleAction::Allow, text, "--allow").unwrap();
        for (rules, expected) in [(vec![rule("remember")], true), (vec![rule("*")], false), (vec![rule("rem*")], false)]
        {
            let mut policy = Policy::new(rules, false);
            policy.settle_by_allowance("remember", memory.clone());
            assert_eq!(decide(&policy, "remember", &Taint::new()) == Decision::Allow, expected, "{:?}", policy.rules);
        }
        // A skill's allowed-tools are not the person's word.
        let mut policy = Policy::new(vec![], false);
        policy.settle_by_allowance("remember", memory.clone());
        let skill = Rule::parse(RuleAction::Allow, "remember", "the skill notes:keeper").unwrap();
        assert!(matches!(decide(&policy.with_rules([skill]), "remember", &Taint::new()), Decision::Ask(_)));
        let deny = Rule::parse(RuleAction::Deny, "remember", "config.toml").unwrap();
        let mut policy = Policy::new(vec![rule("remember"), deny], false);
        policy.settle_by_allowance("remember", memory);
        assert!(matches!(decide(&policy, "remember", &Taint::new()), Decision::Deny(_)));
    }

    #[test]
    fn the_rule_matrix_decides_every_case_as_expected() {
        let tree = tree();
        let mut failures = Vec::new();
        for case in cases() {
            let decision = decide(&tree, &case);
            let as_expected = match (&case.expected, &decision) {
                (Expected::Allow, Decision::Allow) => true,
                (Expected::Ask(fragment), Decision::Ask(reason))
                | (Expected::Deny(fragment), Decision::Deny(reason)) => reason.contains(fragment),
                _ => false,
            };
            if !as_expected {
                failures.push(format!("{}: expected {:?}, got {decision:?}", case.name, case.expected));
            }
        }
        assert!(failures.is_empty(), "{} cases failed:\n{}", failures.len(), failures.join("\n"));
    }

    #[test]
    fn reasons_are_whole_sentences_naming_paths_as_displayed() {
        let tree = tree();
        let secret = tree.path("{outside}/secret.txt");
        let reference = tree.path("{reference}");
        let cases = [
            (
                Case { tool: "read_file", effects: "read {outside}/secret.txt", ..BASE },
                Decision::Deny(format!("{} is outside the granted folders", secret.display())),
            ),
            (
                Case { effects: "create {reference}/a.md", ..BASE },
                Decision::Deny(format!(
                    "{}/a.md is in the read-only folder {}; errand may read it but not change it",
                    reference.display(),
                    reference.display()
                )),
            ),
            (Case { plan: Plan::Pending, effects: "create a.md", ..BASE }, Decision::Deny(PLAN_PENDING.to_string())),
            (
                Case { tool: "delete_path", effects: "delete tmp/a.txt; delete tmp/b.txt", ..BASE },
                Decision::Ask("deleting tmp/a.txt and tmp/b.txt needs your approval".to_string()),
            ),
            (
                Case { effects: "create-many 21 out", ..BASE },
                Decision::Ask(
                    "this call changes 21 files (out/file-01.md and 20 others); changing more than 20 files at once \
                     needs your approval"
                        .to_string(),
                ),
            ),
            (
                Case { plan: NO_PLAN_GLOBS, effects: "modify notes/x.md", ..BASE },
                Decision::Ask("changing notes/x.md is outside the approved plan".to_string()),
            ),
            (
                Case { tool: "fetch", effects: "host example.com", ..BASE },
                Decision::Ask(
                    "reaching example.com needs your approval (--allow-net example.com allows it)".to_string(),
                ),
            ),
        ];
        for (case, expected) in cases {
            assert_eq!(decide(&tree, &case), expected);
        }
    }

    #[test]
    fn malformed_rules_are_errors_naming_the_rule_its_source_and_the_problem() {
        let cases = [
            ("", "the tool name is empty"),
            ("(reports/**)", "the tool name is empty"),
            ("write_file(reports/**", "the parenthesis after the tool name is never closed"),
            ("write_file(a(b)", "never closed"),
            ("write_file)", "a closing parenthesis but no opening one"),
            ("write)_file(x)", "a closing parenthesis before the opening one"),
            ("write_file(a)b", "text follows the closing parenthesis"),
            ("write_file(a))", "text follows the closing parenthesis"),
            ("write_file()", "the pattern in parentheses is empty"),
            ("write_file(  )", "the pattern in parentheses is empty"),
            ("run_command git *", "the tool name `run_command git *` contains a space"),
            ("write_file([a)", "the pattern `[a` is not a valid glob"),
            ("write_{a(x)", "the tool name `write_{a` is not a valid glob"),
        ];
        for (text, problem) in cases {
            let error = Rule::parse(RuleAction::Allow, text, "/x/.errand/settings.toml").unwrap_err();
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("invalid allow rule `{text}` from /x/.errand/settings.toml: ")),
                "{text:?}: {message}"
            );
            assert!(message.contains(problem), "{text:?}: {message}");
            assert!(message.ends_with("write it as TOOL or TOOL(PATTERN), for example write_file(reports/**)"));
        }
    }

    #[test]
    fn parsing_keeps_the_trimmed_text_and_source_and_allows_nested_parentheses() {
        let rule = Rule::parse(RuleAction::Ask, "  run_command(echo $(date))  ", "--ask").unwrap();
        assert_eq!(
            (rule.action, rule.text.as_str(), rule.source.as_str()),
            (RuleAction::Ask, "run_command(echo $(date))", "--ask")
        );
        assert_eq!(rule.to_string(), "ask run_command(echo $(date))");
        let tree = tree();
        let effects = Effects { commands: vec!["echo $(date)".to_string()], ..Effects::default() };
        let policy = Policy::new(vec![rule], false);
        assert_eq!(
            policy.decide("run_command", &effects, &tree.grants, &PlanGate::Off, &Taint::new()),
            Decision::Ask(
                "running `echo $(date)` needs your approval (rule `ask run_command(echo $(date))` from --ask)"
                    .to_string()
            )
        );
    }
}
