//! `write_docx`, `read_docx` and `write_pdf`: documents from markdown, and Word documents back to markdown.

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{deliver, image_loader, input_path, output_path, read_output, write_effects, written};
use crate::files::{parse_args, spawn_tool};
use crate::{Effects, Tool, ToolContext, ToolError, ToolOutput};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteArgs {
    path: String,
    markdown: String,
}

fn write_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"path": {"type": "string"}, "markdown": {"type": "string"}},
        "required": ["path", "markdown"]
    })
}

/// Writes a Word document from markdown.
pub(crate) struct WriteDocx;

impl Tool for WriteDocx {
    fn name(&self) -> &'static str {
        "write_docx"
    }

    fn description(&self) -> &'static str {
        "Write a .docx from markdown: headings, emphasis, lists, tables, images ![alt](path), a \\pagebreak line."
    }

    fn input_schema(&self) -> Value {
        write_schema()
    }

    fn effects(&self, input: &Value, ctx: &ToolContext) -> Result<Effects, ToolError> {
        let args: WriteArgs = parse_args(self.name(), &self.input_schema(), input)?;
        write_effects(&args.path, ctx)
    }

    fn run<'a>(&'a self, input: Value, ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        spawn_tool(self, &input, ctx, |args: &WriteArgs, ctx| {
            let path = output_path(&args.path, &["docx"], ctx)?;
            let bytes =
                errand_office::docx::write_docx(&args.markdown, &image_loader(ctx)).map_err(|e| e.to_string())?;
            let (change, line) = deliver(&path, &bytes, ctx)?;
            Ok(written(change, line, ""))
        })
    }
}

/// Writes a PDF report from markdown.
pub(crate) struct WritePdf;

impl Tool for WritePdf {
    fn name(&self) -> &'static str {
        "write_pdf"
    }

    fn description(&self) -> &'static str {
        "Write a typeset PDF report from markdown, as write_docx takes it."
    }

    fn input_schema(&self) -> Value {
        write_schema()
    }

    fn effects(&self, input: &Value, ctx: &ToolContext) -> Result<Effects, ToolError> {
        let args: WriteArgs = parse_args(self.name(), &self.input_schema(), input)?;
        write_effects(&args.path, ctx)
    }

    fn run<'a>(&'a self, input: Value, ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        spawn_tool(self, &input, ctx, |args: &WriteArgs, ctx| {
            let path = output_path(&args.path, &["pdf"], ctx)?;
            let bytes = errand_office::pdf::write_pdf(&args.markdown, &image_loader(ctx)).map_err(|e| e.to_string())?;
            let pages = errand_office::pdf_pages(&bytes).map(|pages| pages.len()).unwrap_or(0);
            let (change, line) = deliver(&path, &bytes, ctx)?;
            Ok(written(change, line, &format!("{pages} page{}", if pages == 1 { "" } else { "s" })))
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadArgs {
    path: String,
}

/// Reads a Word document as markdown.
pub(crate) struct ReadDocx;

impl Tool for ReadDocx {
    fn name(&self) -> &'static str {
        "read_docx"
    }

    fn mutates(&self) -> bool {
        false
    }

    fn description(&self) -> &'static str {
        "Read a .docx as markdown (headings, emphasis, lists, tables)."
    }

    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]})
    }

    fn effects(&self, input: &Value, ctx: &ToolContext) -> Result<Effects, ToolError> {
        let args: ReadArgs = parse_args(self.name(), &self.input_schema(), input)?;
        Ok(Effects { read: vec![ctx.grants.resolve(&args.path, errand_sandbox::Access::Read)?], ..Effects::default() })
    }

    fn run<'a>(&'a self, input: Value, ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        spawn_tool(self, &input, ctx, |args: &ReadArgs, ctx| {
            let path = input_path(&args.path, ctx)?;
            let markdown = errand_office::docx::read_docx(&path)
                .map_err(|error| error.to_string().replace(&path.display().to_string(), &ctx.grants.display(&path)))?;
            Ok(read_output(&path, markdown))
        })
    }
}
