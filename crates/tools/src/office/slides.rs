//! `write_pptx` and `read_pptx`.

use errand_office::pptx::DeckSpec;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{deliver, image_loader, output_path, write_effects, written};
use crate::files::{parse_args, spawn_tool};
use crate::{Effects, Tool, ToolContext, ToolError, ToolOutput};

/// Writes a slide deck.
pub(crate) struct WritePptx;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteArgs {
    path: String,
    slides: Value,
}

impl Tool for WritePptx {
    fn deferred(&self) -> bool {
        true
    }

    fn summary(&self) -> String {
        "write a PowerPoint deck".into()
    }

    fn name(&self) -> &'static str {
        "write_pptx"
    }

    fn description(&self) -> &'static str {
        "Write a 16:9 .pptx; each slide has a layout, a title, its content and optional notes."
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"path": {"type": "string"}, "slides": errand_office::pptx::slides_schema()},
            "required": ["path", "slides"]
        })
    }

    fn effects(&self, input: &Value, ctx: &ToolContext) -> Result<Effects, ToolError> {
        let args: WriteArgs = parse_args(self.name(), &self.input_schema(), input)?;
        write_effects(&args.path, ctx)
    }

    fn run<'a>(&'a self, input: Value, ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        spawn_tool(self, &input, ctx, |args: &WriteArgs, ctx| {
            let path = output_path(&args.path, &["pptx"], ctx)?;
            let deck = DeckSpec::from_json(&args.slides).map_err(|error| error.to_string())?;
            let bytes = errand_office::pptx::write_pptx(&deck, &image_loader(ctx)).map_err(|e| e.to_string())?;
            let (change, line) = deliver(&path, &bytes, ctx)?;
            let count = deck.slides.len();
            Ok(written(change, line, &format!("{count} slide{}", if count == 1 { "" } else { "s" })))
        })
    }
}

/// A deck as text per slide, as `read_pptx` answers.
pub(crate) fn deck_text(path: &std::path::Path) -> Result<String, errand_office::OfficeError> {
    let slides = errand_office::pptx::read_pptx(path)?;
    let mut text = format!("{} slides", slides.len());
    for slide in slides {
        text.push_str(&format!("\n\n## Slide {}: {}\n", slide.number, slide.title));
        if !slide.text.trim().is_empty() {
            text.push_str(slide.text.trim_end());
            text.push('\n');
        }
        if !slide.notes.trim().is_empty() {
            text.push_str(&format!("Notes: {}\n", slide.notes.trim_end()));
        }
    }
    Ok(text)
}
