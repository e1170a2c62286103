//! Plan mode: the `propose_plan` and `update_plan` tools, the plan a person approves, and the checklist it
//! becomes.
//!
//! These two tools are the session's own ([`Placement::Session`]): they change what the session allows, so
//! the loop runs their calls rather than `errand-tools`.

use errand_tools::{Effects, Placement, Tool, ToolContext, ToolError, ToolOutput};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Name of the tool the model proposes a plan with.
pub const PROPOSE_PLAN: &str = "propose_plan";
/// Name of the tool the model marks checklist progress with.
pub const UPDATE_PLAN: &str = "update_plan";

/// A plan the model proposed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// One or two sentences on what will be done.
    pub summary: String,
    /// The steps, in order.
    pub steps: Vec<String>,
    /// What the plan will change; actions outside it are flagged and asked about.
    #[serde(default)]
    pub effects: PlanEffects,
}

/// The changes a plan declares, as paths (globs allowed) relative to the primary folder or absolute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanEffects {
    /// Files to create.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub create: Vec<String>,
    /// Files to modify.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modify: Vec<String>,
    /// Paths to move (`from`, or `from -> to`).
    #[serde(default, rename = "move", skip_serializing_if = "Vec::is_empty")]
    pub moves: Vec<String>,
    /// Paths to delete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delete: Vec<String>,
    /// Commands to run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    /// Hosts to reach.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network: Vec<String>,
}

impl Plan {
    /// Parses the model's `propose_plan` arguments; the error says what to fix.
    pub fn from_input(input: &Value) -> Result<Plan, String> {
        let plan: Plan = serde_json::from_value(input.clone()).map_err(|error| {
            format!("invalid propose_plan arguments: {error}; send {{summary, steps: [..], effects?: {{create?, modify?, move?, delete?}}}}")
        })?;
        if plan.steps.is_empty() {
            return Err("a plan needs at least one step".into());
        }
        Ok(plan)
    }
}

/// How far a step has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Not started.
    Pending,
    /// Being worked on.
    InProgress,
    /// Finished.
    Done,
    /// Left out, with the model's note saying why.
    Skipped,
}

/// One checklist entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The step as the plan states it.
    pub text: String,
    /// Its status.
    pub status: StepStatus,
    /// The model's note, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The arguments of `update_plan`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepUpdate {
    step: usize,
    status: StepStatus,
    #[serde(default)]
    note: Option<String>,
}

/// Applies an `update_plan` call to `steps`; returns the confirmation for the model and the step's index.
pub fn update_checklist(steps: &mut [Step], input: &Value) -> Result<(String, usize), String> {
    let update: StepUpdate = serde_json::from_value(input.clone()).map_err(|error| {
        format!("invalid update_plan arguments: {error}; send {{step: number, status: \"in_progress\"|\"done\"|\"skipped\", note?}}")
    })?;
    if update.status == StepStatus::Pending {
        return Err("status must be in_progress, done or skipped".into());
    }
    let count = steps.len();
    let Some(step) = update.step.checked_sub(1).and_then(|index| steps.get_mut(index)) else {
        return Err(format!("there is no step {}; the plan has steps 1 to {count}", update.step));
    };
    step.status = update.status;
    step.note = update.note;
    let status = match update.status {
        StepStatus::InProgress => "in progress",
        StepStatus::Done => "done",
        StepStatus::Skipped => "skipped",
        StepStatus::Pending => "pending",
    };
    Ok((format!("step {} of {count} marked {status}", update.step), update.step - 1))
}

/// `propose_plan`: the model proposes its plan for the person to review. The session runs it
/// ([`Placement::Session`]): the review happens there, and approving changes what the session allows.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProposePlan;

impl Tool for ProposePlan {
    fn name(&self) -> &'static str {
        PROPOSE_PLAN
    }

    fn description(&self) -> &'static str {
        "Propose your plan for the person to approve before changing anything. List every path you \
will create, modify, move or delete in effects (globs allowed); other changes will need extra approval."
    }

    fn input_schema(&self) -> Value {
        let paths = json!({"type": "array", "items": {"type": "string"}});
        json!({
            "type": "object",
            "properties": {
                "summary": {"type": "string"},
                "steps": {"type": "array", "items": {"type": "string"}},
                "effects": {"type": "object", "properties": {
                    "create": paths, "modify": paths, "move": paths, "delete": paths,
                }},
            },
            "required": ["summary", "steps"],
        })
    }

    // Its arguments are checked by the review, which tells the model what to fix.
    fn effects(&self, _input: &Value, _ctx: &ToolContext) -> Result<Effects, ToolError> {
        Ok(Effects::default())
    }

    fn run<'a>(&'a self, _input: Value, _ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async { ToolOutput::error(RUN_BY_THE_SESSION) })
    }

    fn mutates(&self) -> bool {
        false
    }

    fn placement(&self) -> Placement {
        Placement::Session
    }

    // The review is the person's say on it.
    fn gated(&self) -> bool {
        false
    }
}

/// `update_plan`: the model marks a step of the approved plan. The session runs it ([`Placement::Session`]):
/// the checklist is the session's.
#[derive(Debug, Clone, Copy, Default)]
pub struct UpdatePlan;

impl Tool for UpdatePlan {
    fn name(&self) -> &'static str {
        UPDATE_PLAN
    }

    fn description(&self) -> &'static str {
        "Mark a step of the approved plan (numbered from 1) in_progress, done or skipped."
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "step": {"type": "integer"},
                "status": {"enum": ["in_progress", "done", "skipped"]},
                "note": {"type": "string"},
            },
            "required": ["step", "status"],
        })
    }

    // Its arguments are checked against the checklist, which tells the model what to fix.
    fn effects(&self, _input: &Value, _ctx: &ToolContext) -> Result<Effects, ToolError> {
        Ok(Effects::default())
    }

    fn run<'a>(&'a self, _input: Value, _ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async { ToolOutput::error(RUN_BY_THE_SESSION) })
    }

    fn mutates(&self) -> bool {
        false
    }

    fn placement(&self) -> Placement {
        Placement::Session
    }

    // It changes nothing but the session's checklist.
    fn gated(&self) -> bool {
        false
    }
}

/// What a tool the session runs itself answers if called as an ordinary tool, which the session never does.
pub(crate) const RUN_BY_THE_SESSION: &str =
    "this tool is run by the session itself, not on its own; errand sends its calls to the session";

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn a_plan_parses_with_or_without_effects() {
        let plan = Plan::from_input(&json!({
            "summary": "Sort receipts",
            "steps": ["read", "move"],
            "effects": {"move": ["receipts/* -> sorted/"], "create": ["sorted/"]}
        }))
        .unwrap();
        assert_eq!(plan.effects.moves, vec!["receipts/* -> sorted/"]);
        let bare = Plan::from_input(&json!({"summary": "s", "steps": ["one"]})).unwrap();
        assert_eq!(bare.effects, PlanEffects::default());
        assert!(Plan::from_input(&json!({"summary": "s", "steps": []})).unwrap_err().contains("at least one step"));
        assert!(Plan::from_input(&json!({"steps": ["x"]})).unwrap_err().contains("summary"));
    }

    #[test]
    fn update_plan_moves_a_step_and_rejects_bad_numbers() {
        let mut steps: Vec<Step> =
            ["a", "b"].iter().map(|t| Step { text: t.to_string(), status: StepStatus::Pending, note: None }).collect();
        let (message, index) =
            update_checklist(&mut steps, &json!({"step": 2, "status": "done", "note": "ok"})).unwrap();
        assert_eq!((message.as_str(), index), ("step 2 of 2 marked done", 1));
        assert_eq!(steps[1].status, StepStatus::Done);
        assert!(
            update_checklist(&mut steps, &json!({"step": 3, "status": "done"})).unwrap_err().contains("steps 1 to 2")
        );
        assert!(update_checklist(&mut steps, &json!({"step": 0, "status": "done"})).is_err());
        assert!(update_checklist(&mut steps, &json!({"step": 1, "status": "finished"})).is_err());
    }

    #[test]
    fn the_plan_tool_specs_are_small() {
        let bytes = serde_json::to_vec(&ProposePlan.spec()).unwrap().len()
            + serde_json::to_vec(&UpdatePlan.spec()).unwrap().len();
        assert!(bytes < 1000, "{bytes}");
    }
}
