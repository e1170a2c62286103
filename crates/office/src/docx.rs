//! Word documents: [`write_docx`] lays out markdown as a .docx, [`read_docx`] reads a .docx back as markdown.
//!
//! The writer builds the OOXML parts itself (no template, no Word needed): Calibri 11 pt text on A4 with
//! one-inch margins, headings 1 to 6 as Word's own "Heading N" styles, bold, italic, struck and code runs,
//! hyperlinks, bullet and numbered lists (nested, each list counting from its own start), tables with a bold,
//! shaded header row and thin borders, images at their pixel size (96 dpi) shrunk to the text width with
//! their aspect kept and their alternative text as a caption, block quotes, code blocks, rules and page breaks.
//!
//! The reader is bounded: files over [`MAX_FILE_BYTES`] and packages whose parts unpack to more than
//! [`MAX_UNPACKED_BYTES`] are refused, and the markdown stops at [`MAX_OUTPUT_CHARS`] with a note that it was
//! cut. It reads headings (Heading N and Title styles, outline levels), paragraphs with emphasis, links,
//! lists (bullets or numbers, from the numbering definitions), tables, images as `![alt](name)`, code and
//! quote styles, rules, and page breaks as `\pagebreak`. Headers, footers, footnotes and comments are not
//! read. Encrypted files and old binary .doc files are recognized and refused with what to do.
//!
//! # Example
//!
//! ```
//! use errand_office::docx::{read_docx, write_docx};
//!
//! let no_images = |path: &str| Err(format!("no image {path}"));
//! let bytes = write_docx("# Report\n\nSome **bold** text.\n\n- one\n- two\n", &no_images).unwrap();
//! let folder = tempfile::tempdir().unwrap();
//! let path = folder.path().join("report.docx");
//! std::fs::write(&path, bytes).unwrap();
//! assert_eq!(read_docx(&path).unwrap(), "# Report\n\nSome **bold** text.\n\n- one\n- two");
//! ```

mod read;
mod write;

use std::path::Path;

use crate::{LoadImage, OfficeError};

/// The largest .docx file [`read_docx`] opens, in bytes.
pub const MAX_FILE_BYTES: u64 = read::MAX_FILE_BYTES;
/// The most the parts [`read_docx`] reads may unpack to, together, in bytes.
pub const MAX_UNPACKED_BYTES: u64 = read::MAX_UNPACKED_BYTES;
/// The longest markdown [`read_docx`] returns, in characters (a note saying it was cut follows).
pub const MAX_OUTPUT_CHARS: usize = read::MAX_OUTPUT_CHARS;
/// The largest image [`write_docx`] embeds, in bytes.
pub const MAX_IMAGE_BYTES: usize = write::MAX_IMAGE_BYTES;

/// Lays out markdown (see [`crate::markdown`]) as a Word document and returns the .docx file's bytes.
///
/// Images (`![alt](path)`) are loaded through `load_image`; PNG, JPEG and GIF are embedded as they are.
///
/// # Errors
///
/// [`OfficeError::Invalid`] naming the image when an image cannot be loaded, is not PNG, JPEG or GIF, or is
/// larger than [`MAX_IMAGE_BYTES`]; [`OfficeError::Write`] if the zip container cannot be built.
pub fn write_docx(markdown: &str, load_image: LoadImage<'_>) -> Result<Vec<u8>, OfficeError> {
    write::write(markdown, load_image)
}

/// Reads a Word document (.docx) as markdown.
///
/// # Errors
///
/// [`OfficeError::Io`] if the file cannot be read, [`OfficeError::TooLarge`] over [`MAX_FILE_BYTES`], and
/// [`OfficeError::Read`] saying why for anything else: not a zip package, damaged, encrypted, an old .doc, an
/// OpenDocument or another Office format, parts unpacking past [`MAX_UNPACKED_BYTES`], malformed XML.
pub fn read_docx(path: &Path) -> Result<String, OfficeError> {
    read::read(path)
}
