//! Markdown as a document: the blocks every writer of documents (docx, pdf) lays out, parsed once here so
//! the writers agree on what `write_docx {markdown}` and `write_pdf {markdown}` mean.
//!
//! Supported: headings (`#`…`######`), paragraphs, **bold**, *italic*, `code`, links, bullet and numbered
//! lists (nested), tables (GitHub style), images (`![alt](path)`), block quotes, code blocks, rules, and page
//! breaks: a line holding only `\pagebreak` or `<!-- pagebreak -->`. Raw HTML is kept as plain text. Quotes
//! and lists nested more than 32 deep are flattened into the 32nd, so no input builds a tree too deep to walk.

use pulldown_cmark::{Alignment, CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// A run of text with one set of styles.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Span {
    /// The text.
    pub text: String,
    /// Bold (`**…**`).
    pub bold: bool,
    /// Italic (`*…*`).
    pub italic: bool,
    /// Inline code (`` `…` ``), set in a monospace font.
    pub code: bool,
    /// Struck through (`~~…~~`).
    pub strike: bool,
    /// Where a link points, when the span is a link's text.
    pub link: Option<String>,
}

/// Horizontal alignment of a table column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Align {
    /// As the writer likes (left).
    #[default]
    Default,
    /// `:---`
    Left,
    /// `:---:`
    Center,
    /// `---:`
    Right,
}

/// One block of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// A heading, level 1 (largest) to 6.
    Heading {
        /// 1 to 6.
        level: u8,
        /// Its text.
        spans: Vec<Span>,
    },
    /// A paragraph of text.
    Paragraph(Vec<Span>),
    /// A bullet or numbered list; each item is a list of blocks (usually one paragraph, maybe a nested list).
    List {
        /// The first number of a numbered list; `None` for bullets.
        start: Option<u64>,
        /// The items.
        items: Vec<Vec<Block>>,
    },
    /// A table: its header row and body rows, each cell a run of spans.
    Table {
        /// Per column.
        align: Vec<Align>,
        /// The header row.
        header: Vec<Vec<Span>>,
        /// Body rows.
        rows: Vec<Vec<Vec<Span>>>,
    },
    /// An image on its own line.
    Image {
        /// The path or address as written (writers resolve it through their image loader).
        source: String,
        /// Alternative text, also used as a caption.
        alt: String,
    },
    /// A block quote.
    Quote(Vec<Block>),
    /// A code block, verbatim.
    Code {
        /// The fence's language tag, if any.
        language: Option<String>,
        /// The code.
        text: String,
    },
    /// A horizontal rule (`---`).
    Rule,
    /// Start a new page.
    PageBreak,
}

/// Parses markdown into blocks. Never fails: anything it does not understand becomes text.
pub fn parse(markdown: &str) -> Vec<Block> {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_SMART_PUNCTUATION;
    let mut builder = Builder::default();
    for event in Parser::new_ext(markdown, options) {
        builder.event(event);
    }
    builder.finish()
}

/// The plain text of spans, styles dropped.
pub fn plain(spans: &[Span]) -> String {
    spans.iter().map(|span| span.text.as_str()).collect()
}

/// Containers (quotes, lists, items) nested deeper than this are flattened into the one at the limit, so
/// that the blocks stay shallow enough to walk and drop without overflowing the stack.
const MAX_NESTING: usize = 32;

/// What is being built: the open containers, innermost last.
#[derive(Debug)]
enum Frame {
    Root(Vec<Block>),
    Quote(Vec<Block>),
    List { start: Option<u64>, items: Vec<Vec<Block>> },
    Item(Vec<Block>),
}

impl Frame {
    fn blocks(&mut self) -> Option<&mut Vec<Block>> {
        match self {
            Frame::Root(blocks) | Frame::Quote(blocks) | Frame::Item(blocks) => Some(blocks),
            Frame::List { .. } => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextTarget {
    None,
    Paragraph,
    Heading(u8),
    Cell,
    Image,
    Code,
}

/// A table being read.
#[derive(Debug, Default)]
struct TableDraft {
    align: Vec<Align>,
    header: Vec<Vec<Span>>,
    rows: Vec<Vec<Vec<Span>>>,
    /// The row being read.
    row: Vec<Vec<Span>>,
}

#[derive(Debug)]
struct Builder {
    frames: Vec<Frame>,
    /// Containers opened past [`MAX_NESTING`] and not yet closed.
    flattened: usize,
    /// Spans of the paragraph, heading or cell being read.
    spans: Vec<Span>,
    target: TextTarget,
    bold: usize,
    italic: usize,
    strike: usize,
    links: Vec<String>,
    /// The image being read: its source; its alt text collects in `spans`.
    image: Option<String>,
    code: (Option<String>, String),
    table: Option<TableDraft>,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            frames: vec![Frame::Root(Vec::new())],
            flattened: 0,
            spans: Vec::new(),
            target: TextTarget::None,
            bold: 0,
            italic: 0,
            strike: 0,
            links: Vec::new(),
            image: None,
            code: (None, String::new()),
            table: None,
        }
    }
}

impl Builder {
    fn push_block(&mut self, block: Block) {
        // Lists hold items, never blocks directly; an item always opens before its blocks.
        for frame in self.frames.iter_mut().rev() {
            if let Some(blocks) = frame.blocks() {
                blocks.push(block);
                return;
            }
        }
    }

    fn text(&mut self, text: &str, code: bool) {
        if self.target == TextTarget::Code {
            self.code.1.push_str(text);
            return;
        }
        if self.target == TextTarget::None {
            // Loose text in a tight list item: it forms a paragraph of its own.
            self.target = TextTarget::Paragraph;
        }
        let span = Span {
            text: text.to_string(),
            bold: self.bold > 0,
            italic: self.italic > 0,
            code,
            strike: self.strike > 0,
            link: self.links.last().cloned(),
        };
        match self.spans.last_mut() {
            Some(last)
                if Span { text: String::new(), ..last.clone() } == Span { text: String::new(), ..span.clone() } =>
            {
                last.text.push_str(text);
            }
            _ => self.spans.push(span),
        }
    }

    /// Ends the paragraph that loose text opened, if any.
    fn flush_paragraph(&mut self) {
        if self.target == TextTarget::Paragraph {
            self.target = TextTarget::None;
            let spans = std::mem::take(&mut self.spans);
            if let Some(block) = paragraph_or_break(spans) {
                self.push_block(block);
            }
        }
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text) => self.text(&text, false),
            Event::Code(text) => self.text(&text, true),
            Event::Html(html) | Event::InlineHtml(html) => {
                if html.trim() == "<!-- pagebreak -->" {
                    self.flush_paragraph();
                    self.push_block(Block::PageBreak);
                } else if !html.trim_start().starts_with("<!--") {
                    self.text(&html, false);
                }
            }
            Event::SoftBreak => self.text(" ", false),
            Event::HardBreak => self.text("\n", false),
            Event::Rule => {
                self.flush_paragraph();
                self.push_block(Block::Rule);
            }
            Event::TaskListMarker(done) => self.text(if done { "☑ " } else { "☐ " }, false),
            Event::FootnoteReference(name) => self.text(&format!("[{name}]"), false),
            Event::InlineMath(text) | Event::DisplayMath(text) => self.text(&text, true),
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        if matches!(tag, Tag::BlockQuote(_) | Tag::List(_) | Tag::Item) && self.frames.len() > MAX_NESTING {
            self.flush_paragraph();
            self.flattened += 1;
            return;
        }
        match tag {
            Tag::Paragraph => {
                self.flush_paragraph();
                self.target = TextTarget::Paragraph;
            }
            Tag::Heading { level, .. } => {
                self.flush_paragraph();
                self.target = TextTarget::Heading(heading_level(level));
            }
            Tag::BlockQuote(_) => {
                self.flush_paragraph();
                self.frames.push(Frame::Quote(Vec::new()));
            }
            Tag::CodeBlock(kind) => {
                self.flush_paragraph();
                let language = match kind {
                    CodeBlockKind::Fenced(info) => {
                        Some(info.split_whitespace().next().unwrap_or_default().to_string()).filter(|l| !l.is_empty())
                    }
                    CodeBlockKind::Indented => None,
                };
                self.code = (language, String::new());
                self.target = TextTarget::Code;
            }
            Tag::List(start) => {
                self.flush_paragraph();
                self.frames.push(Frame::List { start, items: Vec::new() });
            }
            Tag::Item => {
                self.flush_paragraph();
                self.frames.push(Frame::Item(Vec::new()));
            }
            Tag::Table(align) => {
                self.flush_paragraph();
                let align = align
                    .into_iter()
                    .map(|a| match a {
                        Alignment::None => Align::Default,
                        Alignment::Left => Align::Left,
                        Alignment::Center => Align::Center,
                        Alignment::Right => Align::Right,
                    })
                    .collect();
                self.table = Some(TableDraft { align, ..TableDraft::default() });
            }
            Tag::TableRow => {
                if let Some(table) = &mut self.table {
                    table.row.clear();
                }
            }
            Tag::TableCell => {
                self.spans.clear();
                self.target = TextTarget::Cell;
            }
            Tag::Emphasis => self.italic += 1,
            Tag::Strong => self.bold += 1,
            Tag::Strikethrough => self.strike += 1,
            Tag::Link { dest_url, .. } => self.links.push(dest_url.into_string()),
            Tag::Image { dest_url, .. } => {
                // An image inside a paragraph ends the text before it; its alt text is read next.
                let before = std::mem::take(&mut self.spans);
                let previous = self.target;
                if let Some(block) = paragraph_or_break(before) {
                    if matches!(previous, TextTarget::Paragraph | TextTarget::None) {
                        self.push_block(block);
                    } else if let Block::Paragraph(spans) = block {
                        self.spans = spans;
                    }
                }
                self.image = Some(dest_url.into_string());
                self.target = TextTarget::Image;
            }
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        if matches!(tag, TagEnd::BlockQuote(_) | TagEnd::List(_) | TagEnd::Item) && self.flattened > 0 {
            self.flush_paragraph();
            self.flattened -= 1;
            return;
        }
        match tag {
            TagEnd::Paragraph => {
                if self.target == TextTarget::Paragraph {
                    self.flush_paragraph();
                }
                self.target = TextTarget::None;
            }
            TagEnd::Heading(_) => {
                if let TextTarget::Heading(level) = self.target {
                    let spans = std::mem::take(&mut self.spans);
                    self.push_block(Block::Heading { level, spans });
                }
                self.target = TextTarget::None;
            }
            TagEnd::BlockQuote(_) => {
                self.flush_paragraph();
                if let Some(Frame::Quote(blocks)) = self.frames.pop() {
                    self.push_block(Block::Quote(blocks));
                }
            }
            TagEnd::CodeBlock => {
                let (language, mut text) = std::mem::take(&mut self.code);
                if text.ends_with('\n') {
                    text.pop();
                }
                self.target = TextTarget::None;
                self.push_block(Block::Code { language, text });
            }
            TagEnd::List(_) => {
                self.flush_paragraph();
                if let Some(Frame::List { start, items }) = self.frames.pop() {
                    self.push_block(Block::List { start, items });
                }
            }
            TagEnd::Item => {
                self.flush_paragraph();
                if let Some(Frame::Item(blocks)) = self.frames.pop()
                    && let Some(Frame::List { items, .. }) = self.frames.last_mut()
                {
                    items.push(blocks);
                }
            }
            TagEnd::TableCell => {
                let spans = std::mem::take(&mut self.spans);
                if let Some(table) = &mut self.table {
                    table.row.push(spans);
                }
                self.target = TextTarget::None;
            }
            TagEnd::TableHead => {
                if let Some(table) = &mut self.table {
                    // The header's cells come without a row of their own.
                    table.header = std::mem::take(&mut table.row);
                }
            }
            TagEnd::TableRow => {
                if let Some(table) = &mut self.table {
                    let row = std::mem::take(&mut table.row);
                    table.rows.push(row);
                }
            }
            TagEnd::Table => {
                if let Some(TableDraft { align, header, rows, .. }) = self.table.take() {
                    self.push_block(Block::Table { align, header, rows });
                }
            }
            TagEnd::Emphasis => self.italic = self.italic.saturating_sub(1),
            TagEnd::Strong => self.bold = self.bold.saturating_sub(1),
            TagEnd::Strikethrough => self.strike = self.strike.saturating_sub(1),
            TagEnd::Link => {
                self.links.pop();
            }
            TagEnd::Image => {
                let alt = plain(&std::mem::take(&mut self.spans));
                if let Some(source) = self.image.take() {
                    self.push_block(Block::Image { source, alt });
                }
                self.target = TextTarget::Paragraph;
            }
            _ => {}
        }
    }

    fn finish(mut self) -> Vec<Block> {
        self.flush_paragraph();
        // Unclosed containers cannot happen with pulldown-cmark's balanced events; fold them in regardless.
        while self.frames.len() > 1 {
            match self.frames.pop() {
                Some(Frame::Quote(blocks) | Frame::Item(blocks)) => self.push_block(Block::Quote(blocks)),
                Some(Frame::List { start, items }) => self.push_block(Block::List { start, items }),
                _ => {}
            }
        }
        match self.frames.pop() {
            Some(Frame::Root(blocks)) => blocks,
            _ => Vec::new(),
        }
    }
}

/// A paragraph, or a page break when it holds only `\pagebreak`; nothing when it is empty.
fn paragraph_or_break(spans: Vec<Span>) -> Option<Block> {
    let text = plain(&spans);
    if text.trim().is_empty() {
        return None;
    }
    if text.trim() == "\\pagebreak" {
        return Some(Block::PageBreak);
    }
    Some(Block::Paragraph(spans))
}

fn heading_level(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(text: &str) -> Span {
        Span { text: text.into(), ..Span::default() }
    }

    #[test]
    fn headings_paragraphs_and_styles() {
        let blocks = parse("# Report\n\nSome **bold** and *italic* and `code`, a [link](https://x.test).\n");
        assert_eq!(blocks[0], Block::Heading { level: 1, spans: vec![text("Report")] });
        let Block::Paragraph(spans) = &blocks[1] else { panic!("{blocks:?}") };
        assert_eq!(plain(spans), "Some bold and italic and code, a link.");
        assert!(spans.iter().any(|s| s.bold && s.text == "bold"));
        assert!(spans.iter().any(|s| s.italic && s.text == "italic"));
        assert!(spans.iter().any(|s| s.code && s.text == "code"));
        assert!(spans.iter().any(|s| s.link.as_deref() == Some("https://x.test") && s.text == "link"));
    }

    #[test]
    fn nested_lists_tables_images_and_page_breaks() {
        let blocks = parse(
            "- one\n- two\n  1. inner\n\n\\pagebreak\n\n| Item | Amount |\n|:--|--:|\n| Taxi | 12.50 |\n\n![Chart](chart.png)\n\n<!-- pagebreak -->\n\nEnd\n",
        );
        let Block::List { start: None, items } = &blocks[0] else { panic!("{blocks:?}") };
        assert_eq!(items.len(), 2);
        assert_eq!(items[0], vec![Block::Paragraph(vec![text("one")])]);
        assert!(matches!(&items[1][1], Block::List { start: Some(1), items } if items.len() == 1), "{items:?}");
        assert_eq!(blocks[1], Block::PageBreak);
        let Block::Table { align, header, rows } = &blocks[2] else { panic!("{blocks:?}") };
        assert_eq!(align, &vec![Align::Left, Align::Right]);
        assert_eq!(plain(&header[1]), "Amount");
        assert_eq!(plain(&rows[0][1]), "12.50");
        assert_eq!(blocks[3], Block::Image { source: "chart.png".into(), alt: "Chart".into() });
        assert_eq!(blocks[4], Block::PageBreak);
        assert_eq!(blocks[5], Block::Paragraph(vec![text("End")]));
    }

    #[test]
    fn quotes_code_rules_and_raw_html() {
        let blocks = parse("> quoted\n\n```rust\nfn main() {}\n```\n\n---\n\n<b>raw</b>\n");
        assert_eq!(blocks[0], Block::Quote(vec![Block::Paragraph(vec![text("quoted")])]));
        assert_eq!(blocks[1], Block::Code { language: Some("rust".into()), text: "fn main() {}".into() });
        assert_eq!(blocks[2], Block::Rule);
        assert_eq!(blocks[3], Block::Paragraph(vec![text("<b>raw</b>")]));
    }

    #[test]
    fn deep_nesting_is_flattened_not_a_stack_overflow() {
        fn depth(blocks: &[Block]) -> usize {
            blocks
                .iter()
                .map(|block| match block {
                    Block::Quote(inner) => 1 + depth(inner),
                    Block::List { items, .. } => 1 + items.iter().map(|item| depth(item)).max().unwrap_or(0),
                    _ => 0,
                })
                .max()
                .unwrap_or(0)
        }
        let blocks = parse(&format!("{}deep text\n", "> - ".repeat(50_000)));
        assert!(depth(&blocks) <= MAX_NESTING, "{}", depth(&blocks));
        let shallow = parse("> - a\n>   - b\n");
        assert_eq!(depth(&shallow), 3);
        let mut texts = Vec::new();
        let mut stack: Vec<&Block> = blocks.iter().collect();
        while let Some(block) = stack.pop() {
            match block {
                Block::Paragraph(spans) => texts.push(plain(spans)),
                Block::Quote(inner) => stack.extend(inner),
                Block::List { items, .. } => stack.extend(items.iter().flatten()),
                _ => {}
            }
        }
        assert_eq!(texts, ["deep text"]);
    }

    #[test]
    fn garbage_never_panics() {
        for input in
            ["", "|", "![", "- \n  - \n    - ", "# \n\n> > > x", "| a |\n|---|\n| b | c | d |", "\u{0}\u{ffff}"]
        {
            let _ = parse(input);
        }
    }
}
