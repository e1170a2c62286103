//! Owns reading and writing office files: xlsx (formulas evaluated and scanned for errors), docx, pptx, pdf
//! and csv. Writers take our own specs (a workbook's sheets, a deck's slides, a document's markdown) and
//! return the file's bytes, so the caller decides where and how they land (atomically, journaled). Readers
//! are bounded and turn damaged or hostile input into errors, never panics. Heavy format dependencies stay
//! inside this crate. Does not depend on the agent or the tools, and knows nothing of grants: images are
//! loaded through a function the caller gives.
//!
//! # Example
//!
//! ```
//! // Garbage is an error, never a panic.
//! let result = errand_office::pdf_pages(b"not a pdf");
//! assert!(result.is_err());
//! ```

pub mod docx;
pub mod markdown;
mod ooxml;
pub mod pdf;
pub mod pptx;
mod sheets;
pub mod xlsx;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

pub use sheets::{Sheet, TableFormat, TableLimits, csv_sheet, decode_text, read_sheets, sniff_delimiter};

/// Loads an image a document refers to (`![alt](path)`, a slide's `image`): its bytes, or why not. The caller
/// resolves the path (inside the grants, for the tools).
pub type LoadImage<'a> = &'a dyn Fn(&str) -> Result<Vec<u8>, String>;

/// An office file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum OfficeError {
    /// The bytes are not a PDF this reader understands.
    #[error("could not read the PDF: {reason}; the file may be damaged, encrypted or scanned (no text layer)")]
    Pdf {
        /// What went wrong, from the parser.
        reason: String,
    },
    /// A spreadsheet or CSV file could not be read.
    #[error("could not read {} as a table: {reason}", path.display())]
    Table {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// What the caller asked to write is not valid (a bad sheet name, a formula that does not parse, an
    /// unknown layout); the reason says what to change.
    #[error("{reason}")]
    Invalid {
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A document could not be read: damaged, encrypted, or not the format its name says.
    #[error("could not read {} as {format}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The format expected: `xlsx`, `docx`, `pptx`.
        format: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// A document could not be produced.
    #[error("could not write the {format}: {reason}")]
    Write {
        /// The format: `xlsx`, `docx`, `pptx`, `pdf`, `csv`.
        format: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The file is larger than the reader accepts.
    #[error("{} is larger than {limit} bytes; this reader stops there to keep memory bounded", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The text of each page of a PDF, first page first.
///
/// A page without a text layer (a scan) yields an empty string. Malformed input is an
/// [`OfficeError::Pdf`], including inputs that make the parser panic.
pub fn pdf_pages(bytes: &[u8]) -> Result<Vec<String>, OfficeError> {
    // pdf-extract panics on some malformed PDFs instead of returning an error.
    guard_parser(|| pdf_extract::extract_text_from_mem_by_pages(bytes)).map_err(|reason| OfficeError::Pdf { reason })
}

/// The titles of a PDF's bookmarks (its outline), in document order; empty when it has none.
///
/// Malformed input is an [`OfficeError::Pdf`], including inputs that make the parser panic.
pub fn pdf_outline(bytes: &[u8]) -> Result<Vec<String>, OfficeError> {
    let reason = |reason: String| OfficeError::Pdf { reason };
    let document = guard_parser(|| pdf_extract::Document::load_mem(bytes)).map_err(reason)?;
    // lopdf calls a document without an outline an error; for a reader that is simply no bookmarks.
    match catch_unwind(AssertUnwindSafe(|| document.get_toc())) {
        Ok(Ok(toc)) => Ok(toc.toc.into_iter().map(|entry| entry.title).collect()),
        // A catalog without an /Outlines entry is the common way to have none.
        Ok(Err(pdf_extract::Error::NoOutline)) => Ok(Vec::new()),
        Ok(Err(pdf_extract::Error::DictKey(key))) if key == "Outlines" => Ok(Vec::new()),
        Ok(Err(error)) => Err(reason(error.to_string())),
        Err(_) => Err(reason("the parser failed reading the outline".into())),
    }
}

/// Runs a parser, turning both its error and its panic into a reason to report.
fn guard_parser<T, E: std::fmt::Display>(parse: impl FnOnce() -> Result<T, E>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(parse)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(error.to_string()),
        Err(panic) => {
            let detail = panic
                .downcast_ref::<&str>()
                .map(|message| message.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown cause".to_string());
            Err(format!("the parser failed ({detail})"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal valid PDF: one Helvetica font, one text line per page, a correct xref table.
    fn two_page_pdf(first: &str, second: &str) -> Vec<u8> {
        let stream = |text: &str| format!("BT /F1 24 Tf 72 720 Td ({text}) Tj ET");
        let first_stream = stream(first);
        let second_stream = stream(second);
        let objects = [
            "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
            "<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>".to_string(),
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> /Contents 6 0 R >>"
                .to_string(),
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> /Contents 7 0 R >>"
                .to_string(),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_string(),
            format!("<< /Length {} >>\nstream\n{first_stream}\nendstream", first_stream.len()),
            format!("<< /Length {} >>\nstream\n{second_stream}\nendstream", second_stream.len()),
        ];
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
            format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref_offset}\n%%EOF\n", objects.len() + 1)
                .as_bytes(),
        );
        pdf
    }

    #[test]
    fn two_page_pdf_yields_the_text_of_each_page_in_order() {
        let pages = pdf_pages(&two_page_pdf("Hello first page", "Second page here")).unwrap();
        assert_eq!(pages.len(), 2);
        assert!(pages[0].contains("Hello first page"), "page 1 was {:?}", pages[0]);
        assert!(pages[1].contains("Second page here"), "page 2 was {:?}", pages[1]);
        assert!(!pages[0].contains("Second"));
    }

    #[test]
    fn garbage_bytes_are_an_error_not_a_panic() {
        let error = pdf_pages(b"\x00\x01garbage that is not a pdf at all").unwrap_err();
        assert!(error.to_string().starts_with("could not read the PDF"), "{error}");
    }

    #[test]
    fn a_parser_panic_becomes_an_error() {
        let result: Result<(), String> = guard_parser(|| -> Result<(), String> { panic!("index out of bounds") });
        assert_eq!(result.unwrap_err(), "the parser failed (index out of bounds)");
    }

    #[test]
    fn truncated_pdf_is_an_error_not_a_panic() {
        let pdf = two_page_pdf("Hello", "World");
        let result = pdf_pages(&pdf[..pdf.len() / 3]);
        assert!(result.is_err(), "{result:?}");
    }

    #[test]
    fn a_pdf_outline_lists_its_bookmarks_and_none_when_it_has_none() {
        let no_images = |path: &str| Err(format!("no image {path}"));
        let pdf = pdf::write_pdf("# Quarterly report\n\nText.\n\n## Open items\n\nMore.\n", &no_images).unwrap();
        assert_eq!(pdf_outline(&pdf).unwrap(), vec!["Quarterly report".to_string(), "Open items".to_string()]);
        assert_eq!(pdf_outline(&two_page_pdf("Hello", "World")).unwrap(), Vec::<String>::new());
        assert!(pdf_outline(b"not a pdf").is_err());
    }
}
