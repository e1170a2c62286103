//! `errand changes`, `errand undo` and `errand trash`: what sessions changed, and getting it back.

#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use errand_store::{ChangeKind, ChangeRecord, ContentDiff, PathState, Store, UndoOptions, UndoOutcome};

use crate::commands::{Failure, builder, open_store, usage_error};
use crate::render::thousands;
use crate::{EXIT_DONE, EXIT_ERROR, TrashCommand};

/// Diffs longer than this many lines are cut.
const DIFF_LINES: usize = 200;

pub(crate) fn changes(id: &str, json: bool) -> Result<u8, Failure> {
    let store = open_store(&builder()?)?;
    let session = store.session(id).map_err(usage_error)?;
    let records = store.changes(&session.id)?;
    // The changes the last undo put back (or found already as before): those are marked undone.
    let last_undo = store.last_undo(&session.id)?;
    let undone = |record: &ChangeRecord| {
        last_undo.as_ref().is_some_and(|(_, report)| {
            report.entries.iter().any(|entry| {
                entry.seq == record.seq
                    && !matches!(entry.outcome, UndoOutcome::Conflict { .. } | UndoOutcome::Failed { .. })
            })
        })
    };
    if json {
        let mut listed = Vec::with_capacity(records.len());
        for record in &records {
            let mut value = serde_json::to_value(record).context("serialize changes")?;
            value["undone"] = serde_json::Value::Bool(undone(record));
            listed.push(value);
        }
        outln!("{}", serde_json::to_string_pretty(&listed).context("serialize changes")?)?;
        return Ok(EXIT_DONE);
    }
    if records.is_empty() {
        outln!("session {} changed nothing", session.id)?;
        return Ok(EXIT_DONE);
    }
    if let Some((at, _)) = &last_undo {
        outln!("session {} was undone at {at}; changes marked (undone) are back as before the session\n", session.id)?;
    }
    let primary = primary_folder(&session);
    for record in &records {
        let mut shown = relative(&record.path, primary.as_deref());
        if undone(record) {
            // The mark rides on the path, so every kind of line carries it.
            shown.push_str(" (undone)");
        }
        match (&record.op, &record.to) {
            (ChangeKind::Moved, Some(to)) => outln!("{:<8} {shown} → {}", "moved", relative(to, primary.as_deref()))?,
            (ChangeKind::Mkdir, _) => outln!("{:<8} {shown}/", "created")?,
            (ChangeKind::Deleted, _) => {
                let what = if matches!(record.prior, PathState::Directory) { "folder, " } else { "" };
                let trash = record
                    .trash_entry
                    .as_deref()
                    .map(|id| format!(" ({what}in errand's trash as {id})"))
                    .unwrap_or_default();
                outln!("{:<8} {shown}{trash}", "deleted")?;
            }
            (op, _) => {
                let verb = if matches!(op, ChangeKind::Created) { "created" } else { "modified" };
                outln!("{verb:<8} {shown}")?;
                print_diff(&store, record, &shown)?;
            }
        }
    }
    Ok(EXIT_DONE)
}

/// A unified diff of a text file's content before and after the change.
fn print_diff(store: &Store, record: &ChangeRecord, shown: &str) -> std::io::Result<()> {
    let diff = match store.content_diff(&record.prior, record.after.as_ref(), shown, DIFF_LINES) {
        Ok(diff) => diff,
        Err(error) => {
            return outln!("  (no diff: {error})");
        }
    };
    match diff {
        ContentDiff::Text { diff, lines, truncated } => {
            for line in diff.lines() {
                outln!("  {line}")?;
            }
            if truncated {
                outln!("  … {} more diff lines (errand changes --json has the objects)", lines - DIFF_LINES)?;
            }
        }
        ContentDiff::Binary { size } => outln!("  (binary, {} bytes)", thousands(size))?,
        ContentDiff::Unchanged => outln!("  (content unchanged)")?,
        ContentDiff::Unrecorded => outln!("  (the result was not recorded: errand stopped during this change)")?,
        ContentDiff::None => {}
    }
    Ok(())
}

pub(crate) fn undo(id: &str, dry_run: bool, force: bool, json: bool) -> Result<u8, Failure> {
    let store = open_store(&builder()?)?;
    let session = store.session(id).map_err(usage_error)?;
    // Undone before, and everything is still as undo left it: say so rather than report restoring it again.
    // After a partial undo, or a resume that changed more, undo goes on.
    if let Some(undone_at) = &session.undone_at {
        let check = store.undo(&session.id, UndoOptions { dry_run: true, force })?;
        if check.entries.iter().all(|entry| entry.outcome == UndoOutcome::AlreadyOriginal) {
            if json {
                // The report as every undo prints it (each change already as before), saying why.
                let mut value = serde_json::to_value(&check).context("serialize the undo report")?;
                value["dry_run"] = serde_json::Value::Bool(dry_run);
                value["already_undone"] = serde_json::Value::Bool(true);
                value["undone_at"] = serde_json::Value::String(undone_at.clone());
                outln!("{}", serde_json::to_string_pretty(&value).context("serialize the undo report")?)?;
            } else {
                outln!("session {} is already undone (at {undone_at}); nothing to do", session.id)?;
            }
            return Ok(EXIT_DONE);
        }
    }
    let report = store.undo(&session.id, UndoOptions { dry_run, force })?;
    let code = if report.is_complete() { EXIT_DONE } else { EXIT_ERROR };
    if json {
        outln!("{}", serde_json::to_string_pretty(&report).context("serialize the undo report")?)?;
        return Ok(code);
    }
    let primary = primary_folder(&session);
    if report.entries.is_empty() {
        outln!("session {} changed nothing; nothing to undo", session.id)?;
        return Ok(code);
    }
    let would = if dry_run { "would be " } else { "" };
    for entry in &report.entries {
        let shown = relative(&entry.path, primary.as_deref());
        let line = match &entry.outcome {
            UndoOutcome::Restored => match &entry.to {
                Some(to) => format!("{would}moved back   {} → {shown}", relative(to, primary.as_deref())),
                None => format!("{would}restored     {shown}"),
            },
            UndoOutcome::Removed => format!("{would}removed      {shown}"),
            UndoOutcome::AlreadyOriginal => format!("unchanged    {shown} (already as before)"),
            UndoOutcome::Conflict { reason } => format!("NOT restored {shown}: {reason}"),
            UndoOutcome::Failed { reason } => format!("FAILED       {shown}: {reason}"),
        };
        outln!("{line}")?;
    }
    if dry_run {
        outln!("\ndry run: nothing was changed; run `errand undo {}` to do it", session.id)?;
    } else if code != EXIT_DONE {
        outln!(
            "\nsome paths were not restored (see above); `errand undo {} --force` restores them anyway",
            session.id
        )?;
    } else {
        outln!(
            "\nsession {} is undone; what undo removed or replaced is in errand's trash: `errand trash list` shows \
             it, `errand trash restore ID` puts an entry back once its path is free",
            session.id
        )?;
    }
    Ok(code)
}

pub(crate) fn trash(command: TrashCommand) -> Result<u8, Failure> {
    let store = open_store(&builder()?)?;
    match command {
        TrashCommand::List { json } => {
            let entries = store.trash_list()?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&entries).context("serialize the trash")?)?;
            } else if entries.is_empty() {
                eprintln!("the trash is empty");
            } else {
                outln!("{:<10}  {:<19}  {:>12}  PATH", "ID", "DELETED", "BYTES")?;
                for entry in &entries {
                    let deleted = entry.deleted_at.get(..19).unwrap_or(&entry.deleted_at).replace('T', " ");
                    let folder = if matches!(entry.kind, errand_store::TrashKind::Directory) { "/" } else { "" };
                    outln!(
                        "{:<10}  {deleted:<19}  {:>12}  {}{folder}",
                        entry.id,
                        thousands(entry.size),
                        entry.original_path.display()
                    )?;
                }
            }
        }
        TrashCommand::Restore { id } => {
            let entry = store.trash_restore(&id).map_err(usage_error)?;
            outln!("restored {}", entry.original_path.display())?;
        }
        TrashCommand::Empty { older_than } => {
            let emptied = store.trash_empty(older_than)?;
            outln!("removed {} entries ({} bytes) from the trash for good", emptied.entries, thousands(emptied.bytes))?;
        }
    }
    Ok(EXIT_DONE)
}

fn primary_folder(session: &errand_store::SessionRecord) -> Option<PathBuf> {
    errand_agent::stored_folders(session).ok()?.into_iter().next().map(|(path, _)| path)
}

fn relative(path: &Path, primary: Option<&Path>) -> String {
    match primary.and_then(|primary| path.strip_prefix(primary).ok()) {
        Some(inside) if !inside.as_os_str().is_empty() => inside.display().to_string(),
        _ => path.display().to_string(),
    }
}
