//! Plugins written for Claude name tools by Claude's names (`Read`, `Write`, `Bash`, …): in `allowed-tools`,
//! an agent definition's `tools`, and hook matchers. errand's tools have names of their own; this is the one
//! table between the two, so a plugin works as its author wrote it.

/// errand's tool and the Claude tool it stands for.
const NAMES: &[(&str, &str)] = &[
    ("read_file", "Read"),
    ("write_file", "Write"),
    ("edit_file", "Edit"),
    ("run_command", "Bash"),
    ("glob", "Glob"),
    ("grep", "Grep"),
    ("list_dir", "LS"),
    ("web_fetch", "WebFetch"),
    ("skill", "Skill"),
    ("task", "Task"),
];

/// The Claude name of one of errand's tools, when it has one.
pub(crate) fn claude_name(errand_tool: &str) -> Option<&'static str> {
    NAMES.iter().find(|(errand, _)| *errand == errand_tool).map(|(_, claude)| *claude)
}

/// errand's tool for a name a plugin uses: a Claude name (`Read`), a Claude permission pattern
/// (`Bash(git status:*)` names `run_command`), or already one of errand's names (`read_file`,
/// `mcp__server__tool`), which stays as it is.
pub(crate) fn errand_name(plugin_name: &str) -> &str {
    let bare = plugin_name.split_once('(').map_or(plugin_name, |(name, _)| name).trim();
    NAMES.iter().find(|(_, claude)| *claude == bare).map_or(bare, |(errand, _)| *errand)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_both_ways() {
        assert_eq!(claude_name("write_file"), Some("Write"));
        assert_eq!(claude_name("delete_path"), None);
        assert_eq!(errand_name("Bash(git status:*)"), "run_command");
        assert_eq!(errand_name("Read"), "read_file");
        assert_eq!(errand_name("mcp__tracker__list"), "mcp__tracker__list");
        assert_eq!(errand_name("write_xlsx"), "write_xlsx");
        assert_eq!(errand_name("WebFetch"), "web_fetch");
    }
}
