//! A temporary set of folders for tool tests: a read-write primary grant, a read-only grant, and a folder
//! outside every grant whose bytes tests check are never touched.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use errand_model::ContentBlock;
use errand_sandbox::{GrantMode, Grants};
use serde_json::Value;
use tempfile::TempDir;

use crate::{ReadLedger, Tool, ToolContext, ToolOutput, Trash};

/// A trash that renames into a folder, numbering entries.
pub(crate) struct FolderTrash {
    pub(crate) folder: PathBuf,
}

impl Trash for FolderTrash {
    fn put(&self, path: &Path) -> Result<String, String> {
        fs::create_dir_all(&self.folder).map_err(|e| e.to_string())?;
        let id = fs::read_dir(&self.folder).map_err(|e| e.to_string())?.count().to_string();
        fs::rename(path, self.folder.join(&id)).map_err(|e| e.to_string())?;
        Ok(id)
    }
}

pub(crate) struct Fixture {
    _temp: TempDir,
    /// The primary folder, granted read-write.
    pub(crate) root: PathBuf,
    /// A folder granted read-only, holding `kept.txt`.
    pub(crate) read_only: PathBuf,
    /// A folder outside every grant, holding `secret.txt`.
    pub(crate) outside: PathBuf,
    pub(crate) ctx: ToolContext,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        let temp = TempDir::new().unwrap();
        let base = fs::canonicalize(temp.path()).unwrap();
        let root = base.join("work");
        let read_only = base.join("reference");
        let outside = base.join("private");
        for folder in [&root, &read_only, &outside] {
            fs::create_dir(folder).unwrap();
        }
        fs::write(read_only.join("kept.txt"), "kept\n").unwrap();
        fs::write(outside.join("secret.txt"), "secret\n").unwrap();
        let grants =
            Grants::new(vec![(root.clone(), GrantMode::ReadWrite), (read_only.clone(), GrantMode::ReadOnly)]).unwrap();
        let trash = Arc::new(FolderTrash { folder: base.join("trash") });
        let staging = Some(base.join("staging"));
        fs::create_dir(base.join("staging")).unwrap();
        let ctx = ToolContext {
            grants: Arc::new(grants),
            ledger: Arc::new(ReadLedger::default()),
            turn: 1,
            trash,
            commands: None,
            staging,
            progress: None,
            cancel: tokio_util::sync::CancellationToken::new(),
            host_allowed: None,
            call_id: String::new(),
        };
        Self { _temp: temp, root, read_only, outside, ctx }
    }

    /// Writes a file under the primary folder, creating its parent folders.
    pub(crate) fn write(&self, relative: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.root.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        path
    }

    pub(crate) async fn run(&self, tool: &dyn Tool, input: Value) -> ToolOutput {
        tool.run(input, &self.ctx).await
    }

    pub(crate) async fn run_at_turn(&self, tool: &dyn Tool, input: Value, turn: u32) -> ToolOutput {
        let ctx = ToolContext { turn, ..self.ctx.clone() };
        tool.run(input, &ctx).await
    }

    /// Every file under the outside and read-only folders with its bytes, to prove a refused call touched
    /// nothing.
    pub(crate) fn untouchable_snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut files = BTreeMap::new();
        for folder in [&self.outside, &self.read_only] {
            collect(folder, &mut files);
        }
        files
    }
}

fn collect(folder: &Path, files: &mut BTreeMap<PathBuf, Vec<u8>>) {
    for entry in fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.insert(path.clone(), fs::read(&path).unwrap());
        }
    }
}

/// All text blocks of an output, joined.
pub(crate) fn text(output: &ToolOutput) -> String {
    output
        .content
        .iter()
        .filter_map(|block| match block {
            ContentBlock::Text { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

/// Asserts the output is an error whose text contains `expected`.
#[track_caller]
pub(crate) fn assert_error_contains(output: &ToolOutput, expected: &str) {
    assert!(output.is_error, "expected an error, got {:?}", text(output));
    assert!(text(output).contains(expected), "error {:?} does not contain {expected:?}", text(output));
}

/// A minimal valid PDF with one line of Helvetica text per page.
pub(crate) fn pdf_with_pages(pages: &[&str]) -> Vec<u8> {
    let page_count = pages.len();
    let font_id = 3 + page_count;
    let kids: Vec<String> = (0..page_count).map(|index| format!("{} 0 R", 3 + index)).collect();
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        format!("<< /Type /Pages /Kids [{}] /Count {page_count} >>", kids.join(" ")),
    ];
    for index in 0..page_count {
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 {font_id} 0 R >> >> \
             /Contents {} 0 R >>",
            font_id + 1 + index
        ));
    }
    objects.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_string());
    for text in pages {
        let stream = format!("BT /F1 24 Tf 72 720 Td ({text}) Tj ET");
        objects.push(format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()));
    }
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (index, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", index + 1).as_bytes());
    }
    let xref_offset = pdf.len();
    let mut xref = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for offset in offsets {
        xref.push_str(&format!("{offset:010} 00000 n \n"));
    }
    pdf.extend_from_slice(xref.as_bytes());
    pdf.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref_offset}\n%%EOF\n", objects.len() + 1).as_bytes(),
    );
    pdf
}
