//! The document tools, two shapes each serving two formats: `write_docx` and `write_pdf` write markdown
//! out; `read_docx` and `read_pptx` read a document back as text.

use errand_office::{LoadImage, OfficeError};
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    deliver, image_loader, input_path, output_path, path_only_schema, read_effects, read_error, read_output,
    write_effects, written,
};
use crate::files::{parse_args, run_blocking};
use crate::{Effects, Tool, ToolContext, ToolError, ToolOutput};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteArgs {
    path: String,
    markdown: String,
}

/// A document written from markdown, in one format.
pub(crate) struct WriteFromMarkdown {
    name: &'static str,
    description: &'static str,
    /// Its line in `find_tools`' description.
    summary: &'static str,
    extension: &'static str,
    write: fn(&str, LoadImage<'_>) -> Result<Vec<u8>, OfficeError>,
    /// What to say of the written bytes after the "created …" line.
    details: fn(&[u8]) -> String,
}

/// `write_docx`: a Word document from markdown.
pub(crate) const WRITE_DOCX: WriteFromMarkdown = WriteFromMarkdown {
    name: "write_docx",
    summary: "write a Word document from markdown",
    description: "Write a .docx from markdown: headings, emphasis, lists, tables, images ![alt](path), a \\pagebreak line.",
    extension: "docx",
    write: errand_office::docx::write_docx,
    details: |_| String::new(),
};

/// `write_pdf`: a typeset PDF report from markdown.
pub(crate) const WRITE_PDF: WriteFromMarkdown = WriteFromMarkdown {
    name: "write_pdf",
    summary: "write a PDF report from markdown",
    description: "Write a typeset PDF report from markdown, as write_docx takes it.",
    extension: "pdf",
    write: errand_office::pdf::write_pdf,
    details: |bytes| {
        let pages = errand_office::pdf_pages(bytes).map(|pages| pages.len()).unwrap_or(0);
        format!("{pages} page{}", if pages == 1 { "" } else { "s" })
    },
};

impl Tool for WriteFromMarkdown {
    fn deferred(&self) -> bool {
        true
    }

    fn summary(&self) -> String {
        self.summary.into()
    }

    fn name(&self) -> &'static str {
        self.name
    }

    fn description(&self) -> &'static str {
        self.description
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"path": {"type": "string"}, "markdown": {"type": "string"}},
            "required": ["path", "markdown"]
        })
    }

    fn effects(&self, input: &Value, ctx: &ToolContext) -> Result<Effects, ToolError> {
        let args: WriteArgs = parse_args(self.name, &self.input_schema(), input)?;
        write_effects(&args.path, ctx)
    }

    fn run<'a>(&'a self, input: Value, ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        let args = parse_args::<WriteArgs>(self.name, &self.input_schema(), &input);
        let (ctx, extension, write, details) = (ctx.clone(), self.extension, self.write, self.details);
        Box::pin(run_blocking(self.name, move || {
            let work = || -> Result<ToolOutput, String> {
                let args = args.map_err(|error| error.to_string())?;
                let path = output_path(&args.path, &[extension], &ctx)?;
                let bytes = write(&args.markdown, &image_loader(&ctx)).map_err(|error| error.to_string())?;
                let (change, line) = deliver(&path, &bytes, &ctx)?;
                Ok(written(change, line, &details(&bytes)))
            };
            work().unwrap_or_else(ToolOutput::error)
        }))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadArgs {
    path: String,
}

/// A document read as text, in one format.
pub(crate) struct ReadDocument {
    name: &'static str,
    description: &'static str,
    /// Its line in `find_tools`' description.
    summary: &'static str,
    read: fn(&std::path::Path) -> Result<String, OfficeError>,
}

/// `read_docx`: a Word document as markdown.
pub(crate) const READ_DOCX: ReadDocument = ReadDocument {
    name: "read_docx",
    summary: "read a Word document",
    description: "Read a .docx as markdown (headings, emphasis, lists, tables).",
    read: errand_office::docx::read_docx,
};

/// `read_pptx`: a deck as text per slide.
pub(crate) const READ_PPTX: ReadDocument = ReadDocument {
    name: "read_pptx",
    summary: "read a PowerPoint deck",
    description: "Read a .pptx as text per slide, with notes.",
    read: super::slides::deck_text,
};

impl Tool for ReadDocument {
    fn deferred(&self) -> bool {
        true
    }

    fn summary(&self) -> String {
        self.summary.into()
    }

    fn name(&self) -> &'static str {
        self.name
    }

    fn mutates(&self) -> bool {
        false
    }

    fn description(&self) -> &'static str {
        self.description
    }

    fn input_schema(&self) -> Value {
        path_only_schema()
    }

    fn effects(&self, input: &Value, ctx: &ToolContext) -> Result<Effects, ToolError> {
        read_effects(self, input, ctx)
    }

    fn run<'a>(&'a self, input: Value, ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        let args = parse_args::<ReadArgs>(self.name, &self.input_schema(), &input);
        let (ctx, read) = (ctx.clone(), self.read);
        Box::pin(run_blocking(self.name, move || {
            let work = || -> Result<ToolOutput, String> {
                let args = args.map_err(|error| error.to_string())?;
                let path = input_path(&args.path, &ctx)?;
                let text = read(&path).map_err(|error| read_error(error, &path, &ctx))?;
                Ok(read_output(&path, text))
            };
            work().unwrap_or_else(ToolOutput::error)
        }))
    }
}
