//! Every kind of event the agent emits is rendered by the desk or ignored on purpose. The kinds come from the
//! agent's own `EventMsg::kind` (and docs/events.md must list the same), so a new kind fails here until
//! `desk.js` handles it or says why it does not.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

const EVENTS_MD: &str = include_str!("../../../docs/events.md");
const DESK_JS: &str = include_str!("../assets/desk.js");

/// The keys of a top-level `const NAME = { … };` object in desk.js: lines indented two spaces that start with
/// a capitalised name followed by `(` (a method) or `:` (a value).
fn table_keys(name: &str) -> BTreeSet<String> {
    let start = format!("const {name} = {{\n");
    let body = DESK_JS.split_once(&start).unwrap_or_else(|| panic!("desk.js has no {name} table")).1;
    let body = body.split_once("\n};\n").unwrap_or_else(|| panic!("{name} ends with `}};`")).0;
    body.lines()
        .filter_map(|line| line.strip_prefix("  "))
        .filter(|line| line.starts_with(|c: char| c.is_ascii_uppercase()))
        .filter_map(|line| line.split(['(', ':']).next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_agent_emits_the_kinds_docs_events_md_lists() {
    let kinds = errand_testkit::fixtures::event_kinds();
    assert!(kinds.len() >= 20 && kinds.contains("TaskStarted") && kinds.contains("Finished"), "{kinds:?}");
    let documented: BTreeSet<String> = EVENTS_MD
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|line| line.split_once("` |"))
        .map(|(kind, _)| kind.to_string())
        .filter(|kind| kind.starts_with(|c: char| c.is_ascii_uppercase()))
        .collect();
    assert_eq!(kinds, documented, "EventMsg::kind and docs/events.md disagree");
}

#[test]
fn the_desk_renders_or_explicitly_ignores_every_event_kind() {
    let kinds = errand_testkit::fixtures::event_kinds();
    let handled = table_keys("HANDLERS");
    let ignored = table_keys("IGNORED");
    assert!(!handled.is_empty() && !ignored.is_empty(), "{handled:?} {ignored:?}");
    let both: Vec<_> = handled.intersection(&ignored).collect();
    assert!(both.is_empty(), "handled and ignored at once: {both:?}");
    let missing: Vec<_> = kinds.iter().filter(|kind| !handled.contains(*kind) && !ignored.contains(*kind)).collect();
    assert!(missing.is_empty(), "desk.js neither handles nor ignores {missing:?}: add a handler or an IGNORED reason");
    let unknown: Vec<_> = handled.union(&ignored).filter(|kind| !kinds.contains(*kind)).collect();
    assert!(unknown.is_empty(), "desk.js names kinds the agent does not emit: {unknown:?}");
}
