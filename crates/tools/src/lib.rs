//! Owns the [`Tool`] trait and errand's built-in tools: the file tools (`list_dir`, `read_file`, `glob`,
//! `grep`, `write_file`, `edit_file`, `move_path`, `delete_path`), `run_command`, and the office tools
//! (`read_xlsx`, `write_xlsx`, `write_csv`, `read_docx`, `write_docx`, `read_pptx`, `write_pptx`, `write_pdf`,
//! `render_pages`, over `errand-office`), each confined to the granted folders, and `web_fetch`, which reads
//! one web page; all with bounded output and results that carry their provenance. Does not call the model.
//!
//! The [`ReadLedger`] remembers which file contents the model has already seen, so re-reading an unchanged
//! file costs one line instead of the whole file.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//!
//! use errand_sandbox::{GrantMode, Grants};
//! use errand_tools::{NoTrash, ReadLedger, ToolContext, builtin_tools};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let folder = tempfile::tempdir()?;
//! std::fs::write(folder.path().join("a.md"), "hello\n")?;
//! let grants = Grants::new(vec![(folder.path().to_path_buf(), GrantMode::ReadWrite)])?;
//! let ctx = ToolContext { grants: Arc::new(grants), ledger: Arc::new(ReadLedger::default()), turn: 1, trash: Arc::new(NoTrash), commands: None, staging: None, progress: None, cancel: Default::default(), host_allowed: None, call_id: String::new() };
//!
//! let tools = builtin_tools();
//! let read_file = tools.iter().find(|tool| tool.name() == "read_file").ok_or("no read_file")?;
//! let output = read_file.run(serde_json::json!({"path": "a.md"}), &ctx).await;
//! assert_eq!(output.content, vec![errand_model::ContentBlock::text("1\thello")]);
//! # Ok(())
//! # }
//! ```

mod bound;
mod command;
mod files;
mod ledger;
mod office;
mod tool;
mod web_fetch;
pub mod worker;

use std::sync::Arc;

pub use command::{CommandRunner, StagedChanges, apply_captured};
pub use files::write_atomically;
pub use ledger::ReadLedger;
pub use office::render::RenderSupport;
pub use tool::*;

/// The built-in tools, in the order they are offered to the model: the file tools `list_dir`, `read_file`,
/// `glob`, `grep`, `write_file`, `edit_file`, `move_path`, `delete_path`, `run_command`, then the office
/// tools `read_xlsx`, `write_xlsx`, `write_csv`, `read_docx`, `write_docx`, `read_pptx`, `write_pptx`,
/// `write_pdf` and `render_pages`, and `web_fetch`.
pub fn builtin_tools() -> Vec<Arc<dyn Tool>> {
    vec![
        Arc::new(files::list_dir::ListDir),
        Arc::new(files::read_file::ReadFile),
        Arc::new(files::glob::Glob),
        Arc::new(files::grep::Grep),
        Arc::new(files::write_file::WriteFile),
        Arc::new(files::edit_file::EditFile),
        Arc::new(files::move_path::MovePath),
        Arc::new(files::delete_path::DeletePath),
        Arc::new(command::RunCommand),
        Arc::new(office::workbooks::ReadXlsx),
        Arc::new(office::workbooks::WriteXlsx),
        Arc::new(office::workbooks::WriteCsv),
        Arc::new(office::documents::READ_DOCX),
        Arc::new(office::documents::WRITE_DOCX),
        Arc::new(office::documents::READ_PPTX),
        Arc::new(office::slides::WritePptx),
        Arc::new(office::documents::WRITE_PDF),
        Arc::new(office::render::RenderPages),
        Arc::new(web_fetch::WebFetch),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_tools_come_in_the_documented_order() {
        let names: Vec<&str> = builtin_tools().iter().map(|tool| tool.name()).collect();
        assert_eq!(
            names,
            [
                "list_dir",
                "read_file",
                "glob",
                "grep",
                "write_file",
                "edit_file",
                "move_path",
                "delete_path",
                "run_command",
                "read_xlsx",
                "write_xlsx",
                "write_csv",
                "read_docx",
                "write_docx",
                "read_pptx",
                "write_pptx",
                "write_pdf",
                "render_pages",
                "web_fetch"
            ]
        );
    }

    #[test]
    fn each_tool_says_where_it_runs() {
        let outside: Vec<(&str, Placement)> = builtin_tools()
            .iter()
            .filter(|tool| tool.placement() != Placement::FileWorker)
            .map(|tool| (tool.name(), tool.placement()))
            .collect();
        assert_eq!(
            outside,
            [
                ("delete_path", Placement::InProcess),
                ("run_command", Placement::CommandSandbox),
                ("render_pages", Placement::CommandSandbox),
                ("web_fetch", Placement::InProcess)
            ]
        );
    }

    #[test]
    fn only_run_command_runs_the_models_command_lines_and_every_builtin_is_gated() {
        let commands: Vec<&str> =
            builtin_tools().iter().filter(|tool| tool.runs_commands()).map(|tool| tool.name()).collect();
        assert_eq!(commands, ["run_command"]);
        let ungated: Vec<&str> = builtin_tools().iter().filter(|tool| !tool.gated()).map(|tool| tool.name()).collect();
        assert_eq!(ungated, Vec::<&str>::new());
    }

    #[test]
    fn only_the_reading_tools_claim_not_to_mutate() {
        let readers: Vec<&str> =
            builtin_tools().iter().filter(|tool| !tool.mutates()).map(|tool| tool.name()).collect();
        assert_eq!(
            readers,
            ["list_dir", "read_file", "glob", "grep", "read_xlsx", "read_docx", "read_pptx", "render_pages"]
        );
    }

    #[test]
    fn the_specs_fit_in_7200_bytes_of_json() {
        // Every request carries them: 2,557 bytes for the nine file tools, 4,119 for the nine office tools,
        // 460 for web_fetch.
        let specs: Vec<_> = builtin_tools().iter().map(|tool| tool.spec()).collect();
        let bytes: usize = specs.iter().map(|spec| serde_json::to_vec(spec).unwrap().len()).sum();
        assert!(bytes <= 7200, "the tool specs take {bytes} bytes; keep descriptions and schemas short");
    }

    #[test]
    fn every_schema_is_a_minimal_object_schema_whose_required_arguments_exist() {
        for tool in builtin_tools() {
            let schema = tool.input_schema();
            assert_eq!(schema["type"], "object", "{}", tool.name());
            let properties = schema["properties"].as_object().unwrap();
            for required in schema["required"].as_array().unwrap() {
                assert!(properties.contains_key(required.as_str().unwrap()), "{}: {required}", tool.name());
            }
        }
    }
}
