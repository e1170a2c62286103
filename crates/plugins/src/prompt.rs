//! Pure text helpers the agent uses with skills and commands: names, invocations, argument and path
//! substitution, finding `` !`cmd` `` snippets and `@file` references, and the skills section of the prompt.

use std::ops::Range;
use std::path::Path;

use serde::Serialize;

use crate::plugin::Skill;

/// The form of a name used to call a skill, command or agent: lowercase, with spaces, slashes and colons
/// made `-` (so `/plugin:name` stays unambiguous) and runs of `-` collapsed.
pub fn normalise_name(name: &str) -> String {
    let mut normalised = String::with_capacity(name.len());
    for character in name.trim().chars().flat_map(char::to_lowercase) {
        let character =
            if character.is_whitespace() || matches!(character, '/' | '\\' | ':') { '-' } else { character };
        if !(character == '-' && normalised.ends_with('-')) {
            normalised.push(character);
        }
    }
    normalised.trim_matches('-').to_string()
}

/// A slash command as typed: `/plugin:name arguments` or `/name arguments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invocation {
    /// The plugin, when written with `plugin:`.
    pub plugin: Option<String>,
    /// The command or skill, as typed (compare with [`normalise_name`]).
    pub name: String,
    /// Everything after the name, trimmed.
    pub arguments: String,
}

/// Reads `/plugin:name args`; `None` when the text is not a slash command.
pub fn parse_invocation(text: &str) -> Option<Invocation> {
    let rest = text.trim_start().strip_prefix('/')?;
    let (head, arguments) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let (plugin, name) = match head.split_once(':') {
        Some((plugin, name)) if !plugin.is_empty() && !name.is_empty() => (Some(plugin.to_string()), name),
        _ => (None, head),
    };
    if name.is_empty() || name.contains(':') {
        return None;
    }
    Some(Invocation { plugin, name: name.to_string(), arguments: arguments.trim().to_string() })
}

/// Splits arguments the way a shell would: whitespace separates, quotes group, a backslash escapes (except
/// inside single quotes). Slash commands of every kind (plugins' and MCP servers' prompts) read their words
/// with it.
pub fn split_arguments(arguments: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut characters = arguments.chars();
    while let Some(character) = characters.next() {
        match (quote, character) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('"') | None, '\\') => {
                if let Some(next) = characters.next() {
                    word.push(next);
                }
                in_word = true;
            }
            (Some(_), character) => word.push(character),
            (None, '\'' | '"') => {
                quote = Some(character);
                in_word = true;
            }
            (None, character) if character.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, character) => {
                word.push(character);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Fills a skill or command body with its arguments: `$ARGUMENTS` (all of them, as typed),
/// `$ARGUMENTS[N]` (the N-th word, from 0) and `$1`…`$9` (the N-th word, from 1), splitting words like a
/// shell. Missing words become empty. A body with none of these placeholders gets the arguments appended as
/// `\n\nARGUMENTS: <args>`, so they are never lost.
pub fn substitute_arguments(body: &str, arguments: &str) -> String {
    let arguments = arguments.trim();
    let words = split_arguments(arguments);
    let word = |index: usize| words.get(index).map(String::as_str).unwrap_or_default();
    let mut filled = String::with_capacity(body.len() + arguments.len());
    let mut placeholders = false;
    let mut rest = body;
    while let Some(start) = rest.find('$') {
        filled.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        if let Some(tail) = after.strip_prefix("ARGUMENTS") {
            placeholders = true;
            let indexed = tail.strip_prefix('[').and_then(|inner| {
                let end = inner.find(']')?;
                Some((inner[..end].trim().parse::<usize>().ok()?, &inner[end + 1..]))
            });
            match indexed {
                Some((index, tail)) => {
                    filled.push_str(word(index));
                    rest = tail;
                }
                None => {
                    filled.push_str(arguments);
                    rest = tail;
                }
            }
        } else if let Some(digit) = after.chars().next().and_then(|c| c.to_digit(10)).filter(|digit| *digit > 0) {
            placeholders = true;
            filled.push_str(word(digit as usize - 1));
            rest = &after[1..];
        } else {
            filled.push('$');
            rest = after;
        }
    }
    filled.push_str(rest);
    if !placeholders && !arguments.is_empty() {
        filled.push_str("\n\nARGUMENTS: ");
        filled.push_str(arguments);
    }
    filled
}

/// Replaces `${CLAUDE_PLUGIN_ROOT}` with the plugin's folder and, for a skill, `${CLAUDE_SKILL_DIR}` with the
/// skill's folder.
pub fn substitute_paths(body: &str, skill_dir: Option<&Path>, plugin_root: &Path) -> String {
    let filled = body.replace("${CLAUDE_PLUGIN_ROOT}", &plugin_root.display().to_string());
    match skill_dir {
        Some(folder) => filled.replace("${CLAUDE_SKILL_DIR}", &folder.display().to_string()),
        None => filled,
    }
}

/// A `` !`command` `` in a command body: run through the shell tool (with approval), its output put in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShellSnippet {
    /// Byte range of the whole `` !`...` `` in the body.
    pub range: Range<usize>,
    /// The command between the backticks.
    pub command: String,
}

/// An `@path` in a command body: a file to inline, if the session's grants allow reading it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileReference {
    /// Byte range of the `@path` token in the body.
    pub range: Range<usize>,
    /// The path as written.
    pub path: String,
}

/// The lines of `body` outside fenced code blocks, with their byte offsets: examples inside fences are
/// documentation, not things to run or read.
fn unfenced_lines(body: &str) -> Vec<(usize, &str)> {
    let mut lines = Vec::new();
    let mut offset = 0;
    let mut fence: Option<&str> = None;
    for line in body.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|marker| trimmed.starts_with(marker));
        match (fence, marker) {
            (None, Some(marker)) => fence = Some(marker),
            (Some(open), Some(marker)) if open == marker => fence = None,
            (None, None) => lines.push((offset, line.strip_suffix('\n').unwrap_or(line))),
            _ => {}
        }
        offset += line.len();
    }
    lines
}

/// Finds every `` !`command` `` outside fenced code blocks, each within one line.
pub fn shell_snippets(body: &str) -> Vec<ShellSnippet> {
    let mut snippets = Vec::new();
    for (offset, line) in unfenced_lines(body) {
        let mut searched = 0;
        while let Some(found) = line[searched..].find("!`") {
            let start = searched + found;
            let Some(length) = line[start + 2..].find('`') else { break };
            let command = line[start + 2..start + 2 + length].trim();
            let end = start + 2 + length + 1;
            if !command.is_empty() {
                snippets.push(ShellSnippet { range: offset + start..offset + end, command: command.to_string() });
            }
            searched = end;
        }
    }
    snippets
}

/// Finds every `@path` outside code (fenced blocks and inline code): an `@` at the start of a line or after
/// whitespace or `(`, followed by the path up to the next space. Trailing punctuation is not part of the path,
/// and an `@` inside a word (an email address) is not a reference.
pub fn file_references(body: &str) -> Vec<FileReference> {
    let mut references = Vec::new();
    for (offset, line) in unfenced_lines(body) {
        let mut in_code = false;
        let mut previous: Option<char> = None;
        let mut characters = line.char_indices().peekable();
        while let Some((index, character)) = characters.next() {
            if character == '`' {
                in_code = !in_code;
            }
            let starts_token = previous.is_none_or(|previous| previous.is_whitespace() || previous == '(');
            previous = Some(character);
            if character != '@' || in_code || !starts_token {
                continue;
            }
            let token_end = line[index + 1..]
                .find(|c: char| c.is_whitespace() || c == '`')
                .map_or(line.len(), |end| index + 1 + end);
            let token = &line[index + 1..token_end];
            let path = token.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '"', '\'']);
            if !path.is_empty() && !path.starts_with('@') {
                let end = index + 1 + path.len();
                references.push(FileReference { range: offset + index..offset + end, path: path.to_string() });
            }
            while characters.peek().is_some_and(|(next, _)| *next < token_end) {
                characters.next();
            }
            previous = line[..token_end].chars().last();
        }
    }
    references
}

/// The longest description shown in the skills section, in characters; longer ones are cut with `…`.
const DESCRIPTION_LIMIT: usize = 250;

/// The skills section of the system prompt: one `- plugin:skill: description` line per skill the model may
/// use (those with `disable-model-invocation` are left out), descriptions on one line and cut to
/// [`DESCRIPTION_LIMIT`] characters. When `budget_chars` runs out, a last line says how many were left out.
/// The result never exceeds `budget_chars` characters.
pub fn skills_prompt(skills: &[&Skill], budget_chars: usize) -> String {
    let visible: Vec<&Skill> = skills.iter().copied().filter(|skill| !skill.disable_model_invocation).collect();
    let more = |count: usize| format!("({count} more skills not listed here for lack of room)\n");
    let mut prompt = String::new();
    let mut used = 0;
    for (index, skill) in visible.iter().enumerate() {
        let description: Vec<&str> = skill.description.split_whitespace().collect();
        let description = description.join(" ");
        let description = if description.chars().count() > DESCRIPTION_LIMIT {
            let cut: String = description.chars().take(DESCRIPTION_LIMIT - 1).collect();
            format!("{}…", cut.trim_end())
        } else {
            description
        };
        let line = format!("- {}: {description}\n", skill.qualified_name());
        let length = line.chars().count();
        let after = visible.len() - index - 1;
        let reserve = if after > 0 { more(after).chars().count() } else { 0 };
        if used + length + reserve > budget_chars {
            let rest = more(visible.len() - index);
            if used + rest.chars().count() <= budget_chars {
                prompt.push_str(&rest);
            }
            break;
        }
        prompt.push_str(&line);
        used += length;
    }
    prompt
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn names_normalise_for_invocation() {
        assert_eq!(normalise_name("Tidy Up"), "tidy-up");
        assert_eq!(normalise_name("reports/quarterly  close"), "reports-quarterly-close");
        assert_eq!(normalise_name(" a:b "), "a-b");
        assert_eq!(normalise_name("Ünïcode Naïve"), "ünïcode-naïve");
        assert_eq!(normalise_name("already-fine"), "already-fine");
    }

    #[test]
    fn invocations_parse() {
        assert_eq!(
            parse_invocation("/finance:dcf  ACME  2024 "),
            Some(Invocation { plugin: Some("finance".into()), name: "dcf".into(), arguments: "ACME  2024".into() })
        );
        assert_eq!(
            parse_invocation("/commit"),
            Some(Invocation { plugin: None, name: "commit".into(), arguments: String::new() })
        );
        assert_eq!(parse_invocation("not a command"), None);
        assert_eq!(parse_invocation("/"), None);
        assert_eq!(parse_invocation("/a:b:c"), None);
    }

    #[test]
    fn arguments_substitute_like_claude_code() {
        let body = "All: $ARGUMENTS. First: $1, second: $2, third: $3. Index 1: $ARGUMENTS[1]. Cost: $ $x";
        assert_eq!(
            substitute_arguments(body, "  'quarterly report' \"Q3 2024\" "),
            "All: 'quarterly report' \"Q3 2024\". First: quarterly report, second: Q3 2024, third: . Index 1: Q3 2024. Cost: $ $x"
        );
        assert_eq!(substitute_arguments("Summarise.", "notes.md"), "Summarise.\n\nARGUMENTS: notes.md");
        assert_eq!(substitute_arguments("Summarise.", "  "), "Summarise.");
        assert_eq!(substitute_arguments("Open $1", "a\\ b c"), "Open a b");
        assert_eq!(substitute_arguments("[$ARGUMENTS[9]]", "x"), "[]");
    }

    #[test]
    fn paths_substitute() {
        let body = "Run ${CLAUDE_PLUGIN_ROOT}/scripts/x.sh on ${CLAUDE_SKILL_DIR}/data.csv";
        assert_eq!(
            substitute_paths(body, Some(Path::new("/p/skills/s")), Path::new("/p")),
            "Run /p/scripts/x.sh on /p/skills/s/data.csv"
        );
        assert_eq!(
            substitute_paths(body, None, Path::new("/p")),
            "Run /p/scripts/x.sh on ${CLAUDE_SKILL_DIR}/data.csv"
        );
    }

    #[test]
    fn shell_snippets_are_found_outside_fences() {
        let body = "Status: !`git status`\nDiff: !`git diff HEAD` and !` `\n```\n!`rm -rf /`\n```\nLast: !`ls`";
        let snippets = shell_snippets(body);
        let commands: Vec<&str> = snippets.iter().map(|snippet| snippet.command.as_str()).collect();
        assert_eq!(commands, ["git status", "git diff HEAD", "ls"]);
        assert_eq!(&body[snippets[0].range.clone()], "!`git status`");
        assert_eq!(&body[snippets[2].range.clone()], "!`ls`");
    }

    #[test]
    fn file_references_skip_emails_and_code() {
        let body = "Read @notes/plan.md, then (@data.csv). Mail me@example.com.\n`@not-this` and @é/ü.txt\n```\n@fenced.md\n```\n@last";
        let references = file_references(body);
        let paths: Vec<&str> = references.iter().map(|reference| reference.path.as_str()).collect();
        assert_eq!(paths, ["notes/plan.md", "data.csv", "é/ü.txt", "last"]);
        for reference in &references {
            assert_eq!(&body[reference.range.clone()], format!("@{}", reference.path));
        }
    }

    fn skill(name: &str, description: &str, hidden: bool) -> Skill {
        Skill {
            name: name.into(),
            invocation: normalise_name(name),
            plugin: "p".into(),
            description: description.into(),
            path: PathBuf::new(),
            folder: PathBuf::new(),
            body: String::new(),
            argument_hint: None,
            allowed_tools: None,
            disable_model_invocation: hidden,
            user_invocable: true,
            model: None,
        }
    }

    #[test]
    fn skills_prompt_cuts_descriptions_and_respects_the_budget() {
        let long = "word ".repeat(100);
        let skills = [
            skill("Alpha", "Sorts\n  files.", false),
            skill("Hidden", "Never shown.", true),
            skill("Beta", &long, false),
            skill("Gamma", "Short.", false),
        ];
        let references: Vec<&Skill> = skills.iter().collect();
        let prompt = skills_prompt(&references, 10_000);
        let lines: Vec<&str> = prompt.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], "- p:alpha: Sorts files.");
        assert!(lines[1].starts_with("- p:beta: word word") && lines[1].ends_with("word…"), "{}", lines[1]);
        assert_eq!(lines[1].chars().count(), "- p:beta: ".len() + DESCRIPTION_LIMIT);
        assert_eq!(lines[2], "- p:gamma: Short.");
        assert!(!prompt.contains("Hidden"));

        let prompt = skills_prompt(&references, 80);
        assert_eq!(prompt, "- p:alpha: Sorts files.\n(2 more skills not listed here for lack of room)\n");
        assert!(prompt.chars().count() <= 80);
        assert_eq!(skills_prompt(&references, 10), "");
    }
}
