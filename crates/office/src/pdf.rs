//! PDF reports: `write_pdf` from markdown, with headings, lists, tables and images.
