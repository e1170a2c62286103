//! Word documents: `write_docx` from markdown, `read_docx` back to markdown.
