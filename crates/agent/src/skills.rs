//! Plugins in a session: skills (their list in the system prompt, the `skill` tool that loads one, read-only
//! grants on their folders, the tools a loaded skill allows without asking), slash commands (`/plugin:command
//! args`, expanded before the first request) and what a command sets for its run (its tools, its model).

use std::ops::Range;
use std::path::PathBuf;

use errand_model::{ContentBlock, SystemBlock, ToolCall};
use errand_plugins::{Command, Plugin, Skill};
use errand_sandbox::{Access, Grant, GrantMode, Grants};
use errand_tools::{Effects, Placement, Provenance, Tool, ToolContext, ToolError, ToolOutput};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::AgentError;
use crate::claude_names::errand_name;
use crate::event::{EventMsg, RunSummary};
use crate::policy::{Decision, PlanGate, Rule, RuleAction};
use crate::session::{End, PlanState, Session};

/// The tool that loads a skill.
pub(crate) const SKILL: &str = "skill";

/// Characters of the system prompt the list of skills may take.
const SKILLS_BUDGET: usize = 6_000;

/// The largest file an `@path` inlines; bigger ones are left for `read_file`.
const INLINE_LIMIT: u64 = 256 * 1024;

/// What the plugins add to one session: the skill folders it may read, whether `skill` and `task` are
/// offered, and what the current run's command and loaded skills set.
pub(crate) struct PluginState {
    /// Skill folders granted read-only for this session. Not stored with it: a resumed session grants them again.
    skill_folders: Vec<PathBuf>,
    /// Whether `skill` is offered: some skill is the model's to use.
    offer_skill: bool,
    /// For a sub-agent: what it keeps of its parent.
    pub(crate) parent: Option<crate::subagent::Parent>,
    /// What the current run's slash command and loaded skills set; reset when a run starts.
    run: RunShape,
}

/// What a slash command and the skills loaded during one run change about it.
#[derive(Default)]
struct RunShape {
    /// The command, and the only tools (errand's names) it allows.
    tools: Option<(String, Vec<String>)>,
    /// The model the command asks for.
    model: Option<String>,
    /// Each loaded skill with `allowed-tools`, as allow rules.
    skill_rules: Vec<(String, Vec<Rule>)>,
}

/// Adds the plugins' part to a new session: the skills section of the system prompt, whether `skill` and
/// `task` are offered, and a read-only grant on each skill's folder that no grant already covers. Returns the
/// grants with those folders added.
pub(crate) fn prepare(
    grants: Grants,
    plugins: &[Plugin],
    system: &mut [SystemBlock],
    warnings: &mut Vec<String>,
) -> (Grants, PluginState) {
    let section = skills_section(plugins);
    let offer_skill = section.is_some();
    if let Some(section) = section
        && let Some(block) = system.first_mut()
    {
        block.text.push_str(&section);
    }

    let mut folders: Vec<(PathBuf, GrantMode)> =
        grants.grants().iter().map(|grant| (grant.root.clone(), grant.mode)).collect();
    let mut skill_folders = Vec::new();
    for skill in plugins.iter().flat_map(|plugin| &plugin.skills) {
        let Ok(folder) = std::fs::canonicalize(&skill.folder) else {
            warnings.push(format!(
                "the folder of the skill {} ({}) cannot be read; files it mentions are not readable",
                skill.qualified_name(),
                skill.folder.display()
            ));
            continue;
        };
        // Inside a granted folder it is readable already, and a read-only grant would take writes away there.
        if !folders.iter().any(|(root, _)| folder.starts_with(root)) {
            folders.push((folder.clone(), GrantMode::ReadOnly));
            skill_folders.push(folder);
        }
    }
    let state = |skill_folders| PluginState { skill_folders, offer_skill, parent: None, run: RunShape::default() };
    if skill_folders.is_empty() {
        return (grants, state(Vec::new()));
    }
    match Grants::new(folders) {
        Ok(widened) => (widened, state(skill_folders)),
        Err(error) => {
            warnings.push(format!(
                "the skills' folders cannot be granted for reading ({error}); files they mention are not readable"
            ));
            (grants, state(Vec::new()))
        }
    }
}

/// The skills section of the system prompt, when some skill is the model's to use: a sentence saying to load a
/// skill before following it, then the skills under [`SKILLS_BUDGET`].
pub(crate) fn skills_section(plugins: &[Plugin]) -> Option<String> {
    let invocable: Vec<&Skill> =
        plugins.iter().flat_map(|plugin| &plugin.skills).filter(|skill| !skill.disable_model_invocation).collect();
    if invocable.is_empty() {
        return None;
    }
    let list = errand_plugins::skills_prompt(&invocable, SKILLS_BUDGET);
    Some(format!(
        "\n\nSkills: instructions for particular kinds of work, from the plugins in use. When the task matches one, \
         load it with the skill tool before following it.\n{}",
        list.trim_end()
    ))
}

/// `skill`: the model loads a skill's instructions. The session runs it ([`Placement::Session`]): a loaded
/// skill's `allowed-tools` change what the session allows for the rest of the run.
pub(crate) struct LoadSkill;

impl Tool for LoadSkill {
    fn name(&self) -> &'static str {
        SKILL
    }

    fn description(&self) -> &'static str {
        "Load a skill's instructions: `name` as listed under Skills in the system prompt \
         (plugin:skill, or the skill alone when only one plugin has it), `arguments` for its \
         $ARGUMENTS. Files the instructions mention are in the skill's folder; read_file reads them."
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"name": {"type": "string"}, "arguments": {"type": "string"}},
            "required": ["name"],
        })
    }

    // It touches nothing of the person's, so a rule about `skill` itself is what can refuse it.
    fn effects(&self, _input: &Value, _ctx: &ToolContext) -> Result<Effects, ToolError> {
        Ok(Effects::default())
    }

    fn run<'a>(&'a self, _input: Value, _ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async { ToolOutput::error(crate::plan::RUN_BY_THE_SESSION) })
    }

    fn mutates(&self) -> bool {
        false
    }

    fn placement(&self) -> Placement {
        Placement::Session
    }
}

impl PluginState {
    /// Whether `skill` is offered in a request: some skill is the model's to use and the run's command, if
    /// it restricts the tools, allows it.
    pub(crate) fn offers_skill(&self) -> bool {
        self.offer_skill && self.allows(SKILL)
    }

    /// Whether the run's command, if it restricts the tools, allows `tool` (errand's name).
    pub(crate) fn allows(&self, tool: &str) -> bool {
        self.allowed_tools().is_none_or(|allowed| allowed.iter().any(|name| name == tool))
    }

    /// The model the current run's command asks for, if any.
    pub(crate) fn model(&self) -> Option<&str> {
        self.run.model.as_deref()
    }

    /// The only tools the current run's command allows, if it restricts them.
    pub(crate) fn allowed_tools(&self) -> Option<&[String]> {
        self.run.tools.as_ref().map(|(_, tools)| tools.as_slice())
    }

    /// Whether `root` is one of the skill folders this session added (not one the person granted).
    pub(crate) fn is_skill_folder(&self, root: &std::path::Path) -> bool {
        self.skill_folders.iter().any(|folder| folder == root)
    }

    /// Makes this a sub-agent's state: never `task`, `skill` only when `offer_skill`.
    pub(crate) fn make_subagent(&mut self, offer_skill: bool, parent: crate::subagent::Parent) {
        self.offer_skill &= offer_skill;
        self.parent = Some(parent);
    }
}

/// The one candidate `wanted` names: `plugin:name`, or a bare `name` only one plugin has. Names compare in
/// their normalised form. `Err` holds the qualified names a bare name matched when more than one did, and is
/// empty when nothing matched.
fn choose<T: Copy>(candidates: &[(&str, &str, T)], wanted: &str) -> Result<T, Vec<String>> {
    let normalise = errand_plugins::normalise_name;
    let matches: Vec<&(&str, &str, T)> = match wanted.split_once(':') {
        Some((plugin, name)) => candidates
            .iter()
            .filter(|(owner, invocation, _)| normalise(owner) == normalise(plugin) && *invocation == normalise(name))
            .collect(),
        None => candidates.iter().filter(|(_, invocation, _)| *invocation == normalise(wanted)).collect(),
    };
    match matches.as_slice() {
        [(_, _, found)] => Ok(*found),
        // The same name twice in one plugin cannot happen: loading keeps the first.
        _ => Err(matches.iter().map(|(plugin, invocation, _)| format!("{plugin}:{invocation}")).collect()),
    }
}

/// The skill the model asks for by `name`, or why it cannot have it.
fn skill_for_model<'a>(plugins: &'a [Plugin], name: &str) -> Result<(&'a Plugin, &'a Skill), String> {
    let candidates: Vec<(&str, &str, (&Plugin, &Skill))> = plugins
        .iter()
        .flat_map(|plugin| {
            plugin.skills.iter().map(move |skill| (plugin.name.as_str(), skill.invocation.as_str(), (plugin, skill)))
        })
        .collect();
    let (plugin, skill) = choose(&candidates, name).map_err(|matched| {
        if matched.is_empty() {
            let known: Vec<String> = candidates
                .iter()
                .filter(|(_, _, (_, skill))| !skill.disable_model_invocation)
                .map(|(plugin, invocation, _)| format!("{plugin}:{invocation}"))
                .collect();
            format!("there is no skill {name:?}; the skills are: {}", known.join(", "))
        } else {
            format!("{name:?} names a skill in several plugins; call it by one of {}", matched.join(", "))
        }
    })?;
    if skill.disable_model_invocation {
        return Err(format!(
            "the skill {} is for the person to start (it sets disable-model-invocation); do not load it",
            skill.qualified_name()
        ));
    }
    Ok((plugin, skill))
}

/// A skill's instructions as they reach the model: a line naming its folder, then its body with the arguments
/// and paths filled in.
fn render_skill(plugin: &Plugin, skill: &Skill, arguments: &str) -> String {
    let body = errand_plugins::substitute_arguments(&skill.body, arguments);
    let body = errand_plugins::substitute_paths(&body, Some(&skill.folder), &plugin.root);
    format!(
        "Skill {} (its folder {} is readable with read_file):\n\n{}",
        skill.qualified_name(),
        skill.folder.display(),
        body.trim_end()
    )
}

/// errand's rule text for one `allowed-tools` entry: `Bash(git add:*)` is `run_command(git add*)`, `Read` is
/// `read_file`; Claude's `:*` (any arguments) becomes a glob's `*`.
fn rule_text(entry: &str) -> String {
    let tool = errand_name(entry);
    let pattern = entry.split_once('(').map(|(_, rest)| rest.strip_suffix(')').unwrap_or(rest).trim());
    match pattern {
        None | Some("") => tool.to_string(),
        Some(pattern) => match pattern.strip_suffix(":*") {
            Some(prefix) => format!("{tool}({prefix}*)"),
            None => format!("{tool}({pattern})"),
        },
    }
}

/// A loaded skill's `allowed-tools` as allow rules, and a warning for each entry errand cannot read.
fn skill_rules(skill: &Skill) -> (Vec<Rule>, Vec<String>) {
    let source = format!("the skill {}", skill.qualified_name());
    let mut rules = Vec::new();
    let mut warnings = Vec::new();
    for entry in skill.allowed_tools.iter().flatten() {
        match Rule::parse(RuleAction::Allow, &rule_text(entry), &source) {
            Ok(rule) => rules.push(rule),
            Err(error) => warnings.push(format!("{source}: allowed-tools entry {entry:?} is left out: {error}")),
        }
    }
    (rules, warnings)
}

/// A slash command the person typed, found among the plugins.
#[derive(Debug, Clone, Copy)]
enum Slash<'a> {
    Command(&'a Plugin, &'a Command),
    Skill(&'a Plugin, &'a Skill),
}

/// What a slash command becomes before anything runs: its text with arguments and paths filled in, the tools
/// it allows and the model it asks for.
#[derive(Debug)]
struct Expansion {
    /// `/plugin:name`, for messages.
    name: String,
    /// The plugin whose text it is.
    plugin: String,
    text: String,
    allowed_tools: Option<Vec<String>>,
    model: Option<String>,
    /// A skill started this way is loaded: its `allowed-tools` need no asking for the run (the skill, its
    /// rules, and warnings for entries that are no rule).
    skill_rules: Option<(String, Vec<Rule>, Vec<String>)>,
}

/// What `input` is: `None` for plain text, else the expansion of the command it names or why none can run
/// (unknown, ambiguous, not for the person). A first word that is not a name of letters, digits, `-`, `_` and
/// `.` (with at most one `plugin:` before it), or that is an existing path at the root (`/tmp notes`), makes
/// plain text unless a plugin has that command. `mcp_commands` are the MCP prompts' commands, named in the error.
fn find_slash(plugins: &[Plugin], input: &str, mcp_commands: &[String]) -> Option<Result<Expansion, String>> {
    let invocation = errand_plugins::parse_invocation(input)?;
    let head = input.trim_start().trim_start_matches('/').split(char::is_whitespace).next().unwrap_or_default();
    if head.contains('/') {
        return None;
    }
    let mut candidates: Vec<(&str, &str, Slash<'_>)> = Vec::new();
    for plugin in plugins {
        for command in &plugin.commands {
            candidates.push((plugin.name.as_str(), command.invocation.as_str(), Slash::Command(plugin, command)));
        }
        // A command and a skill of one plugin with the same name: the command is the slash command.
        for skill in plugin.skills.iter().filter(|skill| plugin.command(&skill.invocation).is_none()) {
            candidates.push((plugin.name.as_str(), skill.invocation.as_str(), Slash::Skill(plugin, skill)));
        }
    }
    let name_like = |part: &str| {
        part.chars().next().is_some_and(char::is_alphanumeric)
            && part.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    let looks_like_command = match head.split_once(':') {
        Some((plugin, name)) => name_like(plugin) && name_like(name),
        None => name_like(head),
    } && !std::path::Path::new("/").join(head).exists();
    let found = match choose(&candidates, head) {
        Ok(found) => found,
        Err(matched) if !matched.is_empty() => {
            let names: Vec<String> = matched.iter().map(|name| format!("/{name}")).collect();
            return Some(Err(format!("/{head} names a command in several plugins; run one of {}", names.join(", "))));
        }
        Err(_) if !looks_like_command => return None,
        Err(_) => {
            let mut known: Vec<String> = candidates
                .iter()
                .filter(|(_, _, found)| !matches!(found, Slash::Skill(_, skill) if !skill.user_invocable))
                .map(|(plugin, invocation, _)| format!("/{plugin}:{invocation}"))
                .collect();
            known.extend(mcp_commands.iter().map(|command| format!("/{command}")));
            let listed = if known.is_empty() {
                "there are none: add plugins with --plugin-dir DIR or `errand plugins install`".to_string()
            } else {
                format!("the commands are: {}", known.join(", "))
            };
            return Some(Err(format!("/{head} is not a command here; {listed}")));
        }
    };
    let arguments = invocation.arguments.as_str();
    Some(Ok(match found {
        Slash::Command(plugin, command) => {
            let text = errand_plugins::substitute_arguments(&command.body, arguments);
            Expansion {
                name: format!("/{}:{}", plugin.name, command.invocation),
                plugin: plugin.name.clone(),
                text: errand_plugins::substitute_paths(&text, None, &plugin.root),
                allowed_tools: command.allowed_tools.clone(),
                model: command.model.clone(),
                skill_rules: None,
            }
        }
        Slash::Skill(_, skill) if !skill.user_invocable => {
            return Some(Err(format!(
                "/{} is a skill only the model may use (it sets user-invocable: false); describe the task instead",
                skill.qualified_name()
            )));
        }
        Slash::Skill(plugin, skill) => {
            let (rules, warnings) = skill_rules(skill);
            Expansion {
                name: format!("/{}", skill.qualified_name()),
                plugin: plugin.name.clone(),
                text: render_skill(plugin, skill, arguments),
                allowed_tools: skill.allowed_tools.clone(),
                model: skill.model.clone(),
                skill_rules: Some((skill.qualified_name(), rules, warnings)),
            }
        }
    }))
}

/// The model a command's or an agent's `model` means here. Claude's family names (`haiku`, `sonnet`, `opus`) keep the
/// session's model when it is of that family, become errand's pick of that family with the Anthropic
/// provider, and are ignored (`Err` says why) with another provider; any other name is used as written.
pub(crate) fn plugin_model(requested: &str, provider: &str, session_model: &str) -> Result<String, String> {
    // Claude's aliases float to the newest model of a family; these are errand's current picks.
    const FAMILIES: [(&str, &str); 3] =
        [("haiku", "claude-haiku-4-5"), ("sonnet", "claude-sonnet-4-5"), ("opus", "claude-opus-4-6")];
    let Some((family, pick)) = FAMILIES.iter().find(|(family, _)| requested.eq_ignore_ascii_case(family)) else {
        return Ok(requested.to_string());
    };
    if session_model.to_ascii_lowercase().contains(family) {
        Ok(session_model.to_string())
    } else if provider == "anthropic" {
        Ok(pick.to_string())
    } else {
        Err(format!(
            "asks for the Claude model family {family:?}, which the {provider} provider does not serve; the run keeps \
             {session_model}"
        ))
    }
}

/// Replaces each range of `text` with its text; ranges are in order and do not overlap.
fn splice(text: &str, replacements: &[(Range<usize>, String)]) -> String {
    let mut spliced = String::with_capacity(text.len());
    let mut at = 0;
    for (range, replacement) in replacements {
        spliced.push_str(&text[at..range.start]);
        spliced.push_str(replacement);
        at = range.end;
    }
    spliced.push_str(&text[at..]);
    spliced
}

/// The gate's answer for one call, and whether a plugin's hook stopped the task.
pub(crate) struct Gated {
    pub(crate) decision: Decision,
    pub(crate) stop: Option<String>,
}

impl Session {
    /// The person's grants, without the skill folders the session added.
    pub(crate) fn person_grants(&self) -> impl Iterator<Item = &Grant> {
        self.grants.grants().iter().filter(|grant| !self.plugin_state.is_skill_folder(&grant.root))
    }

    /// The permission gate for one call, recorded as a `PermissionDecided` event: refused when the run's
    /// command does not allow the tool, else the policy's decision, turned into an allow when a skill loaded
    /// in this run allows the tool (its rules count as allow rules: deny and ask rules, the grants, the plan
    /// gate and protected files still come first), then given to plugins' `PreToolUse` hooks.
    pub(crate) async fn gate(&mut self, call: &ToolCall, effects: &Effects) -> Result<Gated, AgentError> {
        if let Some((command, allowed)) = &self.plugin_state.run.tools
            && !allowed.contains(&call.name)
        {
            let reason = format!("{command} allows only {}; {} is not among them", allowed.join(", "), call.name);
            let decision = Decision::Deny(reason);
            self.record_decision(call, &decision)?;
            return Ok(Gated { decision, stop: None });
        }
        let gate = self.plan_gate();
        let (mut decision, tainted, allowed_by) = {
            // Held only while the policy decides (no await): the taint is read, not copied.
            let taint = crate::taint::lock(&self.taint);
            let decision = self.policy.decide(&call.name, effects, &self.grants, &gate, &taint);
            // What untrusted content may have asked for is the person's to answer: no skill or hook answers it.
            let tainted = self.policy.tainted_ask(effects, &self.grants, &gate, &taint).is_some();
            let allowed_by = (decision != Decision::Allow && !tainted)
                .then(|| {
                    self.plugin_state.run.skill_rules.iter().find(|(_, rules)| {
                        self.policy.with_rules(rules.iter().cloned()).decide(
                            &call.name,
                            effects,
                            &self.grants,
                            &gate,
                            &taint,
                        ) == Decision::Allow
                    })
                })
                .flatten()
                .map(|(skill, _)| skill.clone());
            (decision, tainted, allowed_by)
        };
        if allowed_by.is_some() {
            decision = Decision::Allow;
        }
        // Plugins' PreToolUse hooks have their say after the policy; they never let through what it denies.
        let mut verdict = self.pre_tool_use(call, effects, decision.clone()).await?;
        if tainted && verdict.decision == Decision::Allow {
            verdict.decision = decision;
        }
        if verdict.decision == Decision::Allow {
            let mut taint = crate::taint::lock(&self.taint);
            for host in &effects.hosts {
                taint.reached(host);
            }
        }
        match (&allowed_by, &verdict.decision) {
            (Some(skill), Decision::Allow) => self.emit(EventMsg::PermissionDecided {
                call_id: call.id.clone(),
                tool: call.name.clone(),
                decision: crate::event::PermissionDecision::Allow,
                reason: Some(format!("allowed for this run by the skill {skill} (its allowed-tools)")),
            })?,
            _ => self.record_decision(call, &verdict.decision)?,
        }
        Ok(Gated { decision: verdict.decision, stop: verdict.stop })
    }

    /// `skill {name, arguments?}`: the skill's instructions; its `allowed-tools` need no asking for the rest
    /// of the run.
    pub(crate) fn load_skill(&mut self, call: &ToolCall) -> Result<ToolOutput, AgentError> {
        let Some(name) = call.input["name"].as_str() else {
            return Ok(ToolOutput::error("skill needs `name`, a skill listed under Skills in the system prompt"));
        };
        let arguments = call.input["arguments"].as_str().unwrap_or_default();
        let (plugin, skill) = match skill_for_model(&self.options.plugins, name) {
            Ok(found) => found,
            Err(message) => return Ok(ToolOutput::error(message)),
        };
        let text = render_skill(plugin, skill, arguments);
        let name = plugin.name.clone();
        let (rules, warnings) = skill_rules(skill);
        let qualified = skill.qualified_name();
        for message in warnings {
            self.emit(EventMsg::Warning { message })?;
        }
        if !rules.is_empty() {
            self.plugin_state.run.skill_rules.push((qualified, rules));
        }
        Ok(ToolOutput { provenance: Provenance::Plugin { name }, ..ToolOutput::text(text) })
    }

    /// The run's input as the model gets it, each text block marked with where it came from. Plain text stays
    /// as typed (the person's, or in a sub-agent its parent model's); an MCP prompt's command becomes the prompt's messages
    /// ([`crate::mcp::expand_prompt`], the server's). A plugin's slash command (or a skill the person may start)
    /// becomes its body: arguments and paths filled in, each `` !`cmd` `` run as a `run_command` call through
    /// the permission gate and replaced by its output, each `@path` inside the grants inlined as a block of its
    /// own after the body (others left as written, with a warning). The body is the plugin's, or a command's
    /// once a snippet's output is in it: of the two, what a command printed is the less known. The command's
    /// tools and model then hold for the run. Resets what the previous run's command and skills set.
    /// `Err(End)` when the run ended while a snippet waited for approval.
    pub(crate) async fn expand_input(
        &mut self,
        input: &str,
        summary: &mut RunSummary,
        cancel: &CancellationToken,
    ) -> Result<Result<Vec<ContentBlock>, End>, AgentError> {
        self.plugin_state.run = RunShape::default();
        match crate::mcp::expand_prompt(&self.prompts, input).await {
            Some(Ok(content)) => return Ok(Ok(content)),
            Some(Err(reason)) => return Err(AgentError::SlashCommand { reason }),
            None => {}
        }
        let mcp_commands = crate::mcp::prompt_commands(&self.prompts);
        let Expansion { name, plugin, text, allowed_tools, model, skill_rules } =
            match find_slash(&self.options.plugins, input, &mcp_commands) {
                // A sub-agent's input is the prompt its parent's model wrote, not the person's words.
                None if self.is_subagent() => return Ok(Ok(vec![ContentBlock::text(input)])),
                None => return Ok(Ok(vec![ContentBlock::text_from(input, Provenance::Person)])),
                Some(Err(reason)) => return Err(AgentError::SlashCommand { reason }),
                Some(Ok(expansion)) => expansion,
            };

        let snippets = errand_plugins::shell_snippets(&text);
        let overlaps = |range: &Range<usize>| {
            snippets.iter().any(|snippet| snippet.range.start < range.end && range.start < snippet.range.end)
        };
        let references: Vec<_> = errand_plugins::file_references(&text)
            .into_iter()
            .filter(|reference| !overlaps(&reference.range))
            .collect();
        let mut replacements: Vec<(Range<usize>, String)> = Vec::new();
        let mut body_from = Provenance::Plugin { name: plugin };
        if !snippets.is_empty() {
            let calls: Vec<ToolCall> = snippets
                .iter()
                .enumerate()
                .map(|(number, snippet)| ToolCall {
                    id: format!("snippet-{}-{}", self.turn + 1, number + 1),
                    name: "run_command".into(),
                    input: json!({"command": snippet.command}),
                })
                .collect();
            // The person typed the command: its snippets run before any planning, each still asked about.
            let plan = std::mem::replace(&mut self.plan, PlanState::Off);
            let ran = self.run_tools(calls, summary, cancel).await;
            self.plan = plan;
            let (results, ended) = ran?;
            if let Some(end) = ended {
                return Ok(Err(end));
            }
            for (snippet, result) in snippets.iter().zip(results) {
                let ContentBlock::ToolResult { content, is_error, provenance, .. } = result else { continue };
                if provenance == Some(Provenance::Command) {
                    body_from = Provenance::Command;
                }
                let output: String = content
                    .iter()
                    .filter_map(
                        |block| if let ContentBlock::Text { text, .. } = block { Some(text.as_str()) } else { None },
                    )
                    .collect::<Vec<_>>()
                    .join("\n");
                // A command that succeeded with only standard output stands for that output, as in Claude Code.
                let output = match output.split_once("\n--- stdout\n") {
                    Some((_, stdout)) if !is_error && !stdout.contains("\n--- stderr\n") => stdout,
                    _ => output.as_str(),
                };
                let output = output.trim_end();
                let replacement = if is_error {
                    format!("(`{}` did not run: {output})", snippet.command)
                } else {
                    output.to_string()
                };
                replacements.push((snippet.range.clone(), replacement));
            }
        }
        let mut files = Vec::new();
        for reference in references {
            match self.inline_file(&reference.path) {
                Ok((path, content)) => {
                    let file = format!("<file path=\"{}\">\n{}\n</file>", reference.path, content.trim_end());
                    files.push(ContentBlock::text_from(file, Provenance::GrantedFile { path }));
                    replacements.push((reference.range, reference.path));
                }
                Err(problem) => self.emit(EventMsg::Warning {
                    message: format!("{name}: @{} {problem}; it is left as written", reference.path),
                })?,
            }
        }
        replacements.sort_by_key(|(range, _)| range.start);
        let text = splice(&text, &replacements).trim_end().to_string();

        if let Some((skill, rules, warnings)) = skill_rules {
            for message in warnings {
                self.emit(EventMsg::Warning { message })?;
            }
            self.plugin_state.run.skill_rules.push((skill, rules));
        }
        if let Some(tools) = allowed_tools {
            let mut mapped: Vec<String> = Vec::new();
            for tool in &tools {
                let tool = errand_name(tool).to_string();
                if !mapped.contains(&tool) {
                    mapped.push(tool);
                }
            }
            self.plugin_state.run.tools = Some((name.clone(), mapped));
        }
        if let Some(requested) = model {
            match plugin_model(&requested, &self.options.provider_name, &self.options.model) {
                Ok(model) => self.plugin_state.run.model = Some(model),
                Err(problem) => self.emit(EventMsg::Warning { message: format!("{name} {problem}") })?,
            }
        }
        let mut content = vec![ContentBlock::text_from(text, body_from)];
        content.extend(files);
        Ok(Ok(content))
    }

    /// The file an `@path` names (its absolute path) and its text, when the grants and rules let the session
    /// read it; otherwise why not, as the end of a sentence naming it.
    fn inline_file(&self, path: &str) -> Result<(PathBuf, String), String> {
        let resolved =
            self.grants.resolve(path, Access::Read).map_err(|_| "is not inside the granted folders".to_string())?;
        let effects = Effects { read: vec![resolved.clone()], ..Effects::default() };
        if self.policy.decide("read_file", &effects, &self.grants, &PlanGate::Off, &crate::taint::Taint::new())
            != Decision::Allow
        {
            return Err("may not be read without asking under your rules".to_string());
        }
        let metadata = std::fs::metadata(&resolved).map_err(|error| format!("cannot be read ({error})"))?;
        if !metadata.is_file() {
            return Err("is not a file".to_string());
        }
        if metadata.len() > INLINE_LIMIT {
            return Err(format!("is too big to inline ({} bytes; the limit is {INLINE_LIMIT})", metadata.len()));
        }
        let bytes = std::fs::read(&resolved).map_err(|error| format!("cannot be read ({error})"))?;
        let text = String::from_utf8(bytes).map_err(|_| "is not UTF-8 text".to_string())?;
        Ok((resolved, text))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use pretty_assertions::assert_eq;

    use super::*;

    fn plugin(folder: &Path, name: &str, files: &[(&str, &str)]) -> Plugin {
        let root = errand_testkit::fixtures::write_plugin(folder, name, files);
        let plugin = errand_plugins::load_plugin(&root).unwrap();
        assert!(plugin.warnings.is_empty(), "{:?}", plugin.warnings);
        plugin
    }

    fn skill(name: &str, extra: &str) -> (String, String) {
        (
            format!("skills/{name}/SKILL.md"),
            format!(
                "---\nname: {name}\ndescription: Does {name}.\n{extra}---\nBody of {name}: $ARGUMENTS in ${{CLAUDE_SKILL_DIR}}.\n"
            ),
        )
    }

    fn plugins(folder: &Path) -> Vec<Plugin> {
        let (tidy, tidy_text) = skill("tidy", "allowed-tools: Bash(git add:*), Read\n");
        let (hidden, hidden_text) = skill("hidden", "disable-model-invocation: true\n");
        let (quiet, quiet_text) = skill("quiet", "user-invocable: false\n");
        let (shared, shared_text) = skill("shared", "");
        let (other_shared, other_shared_text) = skill("shared", "");
        vec![
            plugin(
                folder,
                "alpha",
                &[
                    (&tidy, &tidy_text),
                    (&hidden, &hidden_text),
                    (&quiet, &quiet_text),
                    (&shared, &shared_text),
                    ("commands/greet.md", "Hello $1."),
                    ("commands/tidy.md", "The command wins."),
                ],
            ),
            plugin(folder, "beta", &[(&other_shared, &other_shared_text)]),
        ]
    }

    #[test]
    fn the_model_loads_skills_by_qualified_or_unique_name() {
        let folder = tempfile::tempdir().unwrap();
        let plugins = plugins(folder.path());
        let (plugin, skill) = skill_for_model(&plugins, "alpha:tidy").unwrap();
        assert_eq!((plugin.name.as_str(), skill.invocation.as_str()), ("alpha", "tidy"));
        assert_eq!(skill_for_model(&plugins, "Tidy").unwrap().1.invocation, "tidy");
        assert_eq!(skill_for_model(&plugins, "beta:shared").unwrap().0.name, "beta");
        let ambiguous = skill_for_model(&plugins, "shared").unwrap_err();
        assert!(ambiguous.contains("alpha:shared, beta:shared"), "{ambiguous}");
        let hidden = skill_for_model(&plugins, "hidden").unwrap_err();
        assert!(hidden.contains("disable-model-invocation"), "{hidden}");
        let unknown = skill_for_model(&plugins, "nope").unwrap_err();
        assert!(unknown.contains("alpha:tidy") && !unknown.contains("alpha:hidden"), "{unknown}");

        let text = render_skill(plugin, skill, "the Downloads folder");
        let folder_line = format!("Skill alpha:tidy (its folder {} is readable", skill.folder.display());
        assert!(text.starts_with(&folder_line), "{text}");
        assert!(
            text.ends_with(&format!("Body of tidy: the Downloads folder in {}.", skill.folder.display())),
            "{text}"
        );
    }

    #[test]
    fn slash_commands_are_found_and_paths_are_not_commands() {
        let folder = tempfile::tempdir().unwrap();
        let plugins = plugins(folder.path());
        let found = |input: &str| find_slash(&plugins, input, &["mcp__s__p".to_string()]);
        let greet = found("/alpha:greet Ana  'big world'").unwrap().unwrap();
        assert_eq!((greet.name.as_str(), greet.text.as_str()), ("/alpha:greet", "Hello Ana."));
        assert_eq!(found("/tidy").unwrap().unwrap().text, "The command wins.");
        let hidden = found("/hidden x").unwrap().unwrap();
        assert_eq!(hidden.name, "/alpha:hidden");
        assert!(hidden.text.contains("Body of hidden: x in "), "{}", hidden.text);
        let shared = found("/alpha:shared").unwrap().unwrap();
        assert!(shared.skill_rules.is_some() && shared.allowed_tools.is_none());
        assert!(found("/alpha/greet Ana").is_none(), "a path, though it normalises to a command's name");
        let quiet = found("/alpha:quiet").unwrap().unwrap_err();
        assert!(quiet.contains("user-invocable: false"), "{quiet}");
        let ambiguous = found("/shared").unwrap().unwrap_err();
        assert!(ambiguous.contains("/alpha:shared, /beta:shared"), "{ambiguous}");
        let unknown = found("/nope now").unwrap().unwrap_err();
        assert!(unknown.starts_with("/nope is not a command here; the commands are: /alpha:greet"), "{unknown}");
        assert!(unknown.contains("/mcp__s__p") && !unknown.contains("quiet"), "{unknown}");

        let folder = folder.path().display().to_string();
        assert!(found(&format!("{folder}/notes.md summarize")).is_none());
        assert!(found("/tmp summarize the logs").is_none(), "an existing folder at the root is a path");
        assert!(found("summarize /tmp").is_none());
        assert!(find_slash(&[], "/help", &[]).unwrap().unwrap_err().contains("there are none"));
    }

    #[test]
    fn allowed_tools_become_rules() {
        assert_eq!(rule_text("Bash(git add:*)"), "run_command(git add*)");
        assert_eq!(rule_text("Bash(npm run test)"), "run_command(npm run test)");
        assert_eq!(rule_text("Read"), "read_file");
        assert_eq!(rule_text("Write(reports/**)"), "write_file(reports/**)");
        assert_eq!(rule_text("mcp__tracker__list"), "mcp__tracker__list");
        assert_eq!(rule_text("Bash()"), "run_command");
    }

    #[test]
    fn a_commands_model_reads_claude_family_names() {
        assert_eq!(plugin_model("haiku", "anthropic", "claude-sonnet-4-5"), Ok("claude-haiku-4-5".into()));
        assert_eq!(
            plugin_model("sonnet", "anthropic", "claude-sonnet-4-5-20250929"),
            Ok("claude-sonnet-4-5-20250929".into())
        );
        assert_eq!(plugin_model("gpt-5-mini", "openai", "gpt-5"), Ok("gpt-5-mini".into()));
        assert!(plugin_model("Opus", "openai", "gpt-5").unwrap_err().contains("keeps gpt-5"));
    }

    #[test]
    fn splicing_replaces_ranges_in_order() {
        let text = "a !`x` b @f c";
        assert_eq!(splice(text, &[(2..6, "X".into()), (9..11, "f".into())]), "a X b f c");
        assert_eq!(splice("same", &[]), "same");
    }
}
