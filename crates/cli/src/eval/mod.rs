//! `errand eval`: runs a suite of task folders against a model and grades what each run leaves behind with
//! deterministic checks (docs/eval.md). Every run is a real `errand run` of this binary, in a scratch copy of
//! the task's input and a store of the suite's own; the checks read the folder afterwards.

#![allow(clippy::print_stderr)]

mod checks;
mod import;
mod report;
mod runner;
mod task;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::commands::{Failure, usage_error};
use crate::{EXIT_CANCELLED, EXIT_DONE, EXIT_ERROR, EXIT_USAGE};

/// `errand eval --help`'s description (clap takes it from the subcommand, so `Command::Eval` names it).
pub(crate) const LONG_ABOUT: &str = "Runs a suite of tasks against a model and grades the results with deterministic checks. A suite \
is a folder of task folders; a task folder holds task.toml (the prompt, how errand runs, the checks), input/ \
(copied into a fresh scratch folder for each run) and optionally expected/ (files the checks compare with). \
Each run is a real `errand run --json` of this errand, in a store of the suite's own under a temporary folder \
(its sessions and undo never mix with yours), with your config.toml and keys. Every task.toml is read and \
checked before anything runs. Exit status: 0 when every run of every task passed, 1 when any failed, 2 when \
the suite could not be read. See docs/eval.md for task.toml and the check kinds.";

/// `errand eval`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  errand eval examples/eval\n  \
errand eval examples/eval --filter receipts --repeat 5\n  \
errand eval examples/eval/receipts-to-xlsx --keep\n  \
errand eval examples/eval --provider openai --base-url http://localhost:11434/v1 --model qwen3 --json\n  \
errand eval import spreadsheetbench ~/data/sample_data_200 ~/evals/spreadsheetbench\n\n\
A task.toml:\n  prompt = \"Turn these receipts into expenses.xlsx with totals as formulas\"\n  [run]\n  \
plan = false\n  max_turns = 40\n  [[check]]\n  kind = \"cell_equals\"\n  path = \"expenses.xlsx\"\n  \
cell = \"B10\"\n  value = 182.4\n  formula = \"=SUM(B2:B9)\""
)]
pub struct EvalArgs {
    /// Another job: `import`.
    #[command(subcommand)]
    pub command: Option<EvalCommand>,
    /// A suite folder (its subfolders holding task.toml are its tasks), or one task folder [default: the
    /// current folder].
    #[arg(value_name = "SUITE_DIR")]
    pub suite: Option<PathBuf>,
    /// The provider for every run: `anthropic` or `openai` [default: config.toml's].
    #[arg(long, value_parser = provider_name, value_name = "P")]
    pub provider: Option<String>,
    /// The model for every run, as the provider knows it [default: config.toml's].
    #[arg(long, value_name = "M")]
    pub model: Option<String>,
    /// The provider's base URL for every run, e.g. http://localhost:11434/v1.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Run only the tasks whose folder name contains NAME.
    #[arg(long, value_name = "NAME")]
    pub filter: Option<String>,
    /// Run each task N times, for its pass rate, pass@N and the spread of cost, turns and time.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repeat: u32,
    /// Print one JSON object at the end instead of text (progress still goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Keep the scratch folders and the runs' store afterwards, and say where, to look at what a run left.
    #[arg(long)]
    pub keep: bool,
}

/// `errand eval`'s other jobs.
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Turn a published benchmark into task folders.
    #[command(subcommand)]
    Import(ImportCommand),
}

/// `errand eval import`.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// SpreadsheetBench (CC BY-SA 4.0): one task folder per test case, graded by cells_match over the answer
    /// position.
    #[command(
        long_about = "Turns SpreadsheetBench's published format into errand task folders: SRC is the dataset \
folder holding dataset.json (a JSON array of instructions with id, instruction, spreadsheet_path, \
instruction_type and answer_position) and a folder of test cases per instruction ({n}_{id}_input.xlsx with \
{n}_{id}_answer.xlsx). Each test case becomes DEST/{id}-{n}: the instruction as the prompt (naming the \
workbook and the answer position), the input workbook in input/, the answer workbook in expected/, and a \
cells_match check per range of the answer position. Importing again replaces those folders. The benchmark's \
data is CC BY-SA 4.0: keep its notice with what you share.",
        after_help = "Examples:\n  errand eval import spreadsheetbench ~/data/sample_data_200 ~/evals/ssb\n  \
errand eval ~/evals/ssb --filter 13284 --repeat 3"
    )]
    Spreadsheetbench {
        /// The dataset folder holding dataset.json (or the dataset.json itself).
        #[arg(value_name = "SRC")]
        src: PathBuf,
        /// Where the task folders go (created if missing).
        #[arg(value_name = "DEST")]
        dest: PathBuf,
    },
}

fn provider_name(text: &str) -> Result<String, String> {
    crate::parse_provider(text).map(|kind| kind.as_str().to_string())
}

/// Runs `errand eval` and returns its exit status.
pub(crate) async fn eval(args: EvalArgs) -> Result<u8, Failure> {
    if let Some(EvalCommand::Import(ImportCommand::Spreadsheetbench { src, dest })) = &args.command {
        let imported = import::spreadsheetbench(src, dest).map_err(|error| usage_error(anyhow::anyhow!(error)))?;
        for skipped in &imported.skipped {
            eprintln!("skipped {skipped}");
        }
        outln!(
            "imported {} tasks into {}{}; run them with `errand eval {}`",
            imported.tasks.len(),
            dest.display(),
            if imported.skipped.is_empty() { String::new() } else { format!(" ({} skipped)", imported.skipped.len()) },
            dest.display()
        )?;
        return Ok(if imported.tasks.is_empty() { EXIT_ERROR } else { EXIT_DONE });
    }
    let dir = args.suite.clone().unwrap_or_else(|| PathBuf::from("."));
    let suite = match task::load_suite(&dir) {
        Ok(suite) => suite,
        Err(problems) => {
            for problem in &problems {
                eprintln!("error: {problem}");
            }
            eprintln!("nothing was run: fix the suite first (docs/eval.md describes task.toml)");
            return Ok(EXIT_USAGE);
        }
    };
    let tasks: Vec<&task::Task> = suite
        .tasks
        .iter()
        .filter(|task| args.filter.as_ref().is_none_or(|filter| task.name.contains(filter.as_str())))
        .collect();
    if tasks.is_empty() {
        let names: Vec<&str> = suite.tasks.iter().map(|task| task.name.as_str()).collect();
        return Err(usage_error(anyhow::anyhow!(
            "no task in {} matches --filter {}; its tasks are {}",
            suite.root.display(),
            args.filter.as_deref().unwrap_or(""),
            names.join(", ")
        )));
    }
    let exe = std::env::current_exe().context("cannot find this errand binary to run the tasks with")?;
    let workspace = runner::Workspace::create()?;
    let mut provider_flags = Vec::new();
    for (flag, value) in [("--provider", &args.provider), ("--model", &args.model), ("--base-url", &args.base_url)] {
        if let Some(value) = value {
            provider_flags.extend([flag.to_string(), value.clone()]);
        }
    }
    let launch = runner::Launch { exe, home: workspace.home.clone(), provider_flags };
    let interrupt = CancellationToken::new();
    let listener = {
        let interrupt = interrupt.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupt.cancel();
            }
        })
    };
    let started = Instant::now();
    let outcome = run_suite(&args, &tasks, &workspace, &launch, &interrupt).await;
    listener.abort();
    let wall_ms = started.elapsed().as_millis() as u64;
    if args.keep {
        eprintln!(
            "kept the scratch folders in {} and the runs' store in {} (ERRAND_HOME={} errand sessions lists the runs)",
            workspace.root.join("runs").display(),
            workspace.home.display(),
            workspace.home.display()
        );
    } else {
        workspace.remove();
    }
    let results = match outcome {
        Ok(results) => results,
        Err(RunError::Interrupted) => {
            eprintln!("interrupted: the run in progress was stopped");
            return Ok(EXIT_CANCELLED);
        }
        Err(RunError::Failed(error)) => return Err(error.into()),
    };
    if args.json {
        let first = results.iter().flat_map(|task| &task.runs).map(|run| &run.outcome).next();
        let provider = args.provider.clone().or_else(|| first.and_then(|outcome| outcome.provider.clone()));
        let model = args.model.clone().or_else(|| first.and_then(|outcome| outcome.model.clone()));
        let value =
            report::json(&suite.root.display().to_string(), provider.as_deref(), model.as_deref(), &results, wall_ms);
        outln!("{}", serde_json::to_string_pretty(&value).context("serialize the report")?)?;
    } else {
        if results.len() > 1 {
            outln!()?;
            for line in report::table(&results) {
                outln!("{line}")?;
            }
            outln!()?;
        }
        outln!("{}", report::summary_line(&results, wall_ms))?;
    }
    Ok(if results.iter().all(report::TaskResult::passed) { EXIT_DONE } else { EXIT_ERROR })
}

/// Why a suite stopped before its end.
enum RunError {
    /// The person pressed Ctrl-C.
    Interrupted,
    /// errand eval itself could not go on (a scratch folder could not be made).
    Failed(anyhow::Error),
}

/// Runs every task `repeat` times, printing each task's results as it ends (unless `--json`).
async fn run_suite(
    args: &EvalArgs,
    tasks: &[&task::Task],
    workspace: &runner::Workspace,
    launch: &runner::Launch,
    interrupt: &CancellationToken,
) -> Result<Vec<report::TaskResult>, RunError> {
    let repeat = args.repeat as usize;
    let mut results = Vec::with_capacity(tasks.len());
    for (position, task) in tasks.iter().enumerate() {
        let mut runs = Vec::with_capacity(repeat);
        for attempt in 1..=repeat {
            if interrupt.is_cancelled() {
                return Err(RunError::Interrupted);
            }
            eprintln!("[{}/{}] {} run {attempt}/{repeat} …", position + 1, tasks.len(), task.name);
            let scratch = workspace.scratch(task, attempt).map_err(RunError::Failed)?;
            let outcome = runner::run(launch, task, &scratch, interrupt)
                .await
                .map_err(|runner::Interrupted| RunError::Interrupted)?;
            let context = checks::Context {
                scratch: &scratch,
                input: &task.input(),
                expected: &task.expected(),
                outcome: &outcome,
            };
            let mut graded: Vec<Option<checks::CheckResult>> = task
                .checks
                .iter()
                .map(|check| {
                    (!matches!(check, task::Check::UndoRestores {})).then(|| checks::evaluate(check, &context))
                })
                .collect();
            // Undo changes the folder, so it comes after every other check has read it.
            for (index, check) in task.checks.iter().enumerate() {
                if matches!(check, task::Check::UndoRestores {}) {
                    let undone = match &outcome.session {
                        Some(session) => runner::undo(launch, &scratch, session).await,
                        None => Err("the run started no session to undo".to_string()),
                    };
                    graded[index] = Some(checks::after_undo(undone, &context));
                }
            }
            let run = report::RunResult { outcome, checks: graded.into_iter().flatten().collect() };
            let failed = run.checks.iter().filter(|check| !check.passed).count();
            eprintln!(
                "[{}/{}] {} run {attempt}/{repeat}: {} ({}, {} of {} checks failed, {:.1}s)",
                position + 1,
                tasks.len(),
                task.name,
                if run.passed() { "passed" } else { "FAILED" },
                run.outcome.status,
                failed,
                run.checks.len(),
                run.outcome.wall_ms as f64 / 1000.0
            );
            if !args.keep {
                let _ = std::fs::remove_dir_all(&scratch);
            }
            runs.push(run);
        }
        let result = report::TaskResult { name: task.name.clone(), description: task.description.clone(), runs };
        if !args.json {
            for line in report::task_lines(&result) {
                outln!("{line}").map_err(|error| RunError::Failed(error.into()))?;
            }
        }
        results.push(result);
    }
    Ok(results)
}
