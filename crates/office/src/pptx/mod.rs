//! Slide decks: [`write_pptx`] builds a PowerPoint file from a list of slides with layouts, and
//! [`read_pptx`] reads any deck back as text per slide.
//!
//! # Writing
//!
//! A deck is a list of slides; each names a layout and fills what that layout shows:
//!
//! | layout | fields | what the slide shows |
//! |---|---|---|
//! | `title` | `title` (required), `subtitle` | a title slide |
//! | `bullets` | `title`, `bullets` | a bullet list |
//! | `two-column` | `title`, `left`, `right` | two bullet lists side by side |
//! | `table` | `title`, `table: {header, rows}` | a table (header row in the accent color, banded rows) |
//! | `image` | `title`, `image` (a path), `caption` | a PNG or JPEG fitted to the slide, aspect kept |
//! | `chart` | `title`, `chart: {type, categories, series}` | a native chart (`column`, `bar`, `line`, `pie`) |
//!
//! Every slide may have `notes` (speaker notes). A bullet is a string (level 0) or `{"text": …, "level": n}`
//! with `n` from 0 (top) to 4; bullet texts and table cells take inline markdown (`**bold**`, `*italic*`,
//! `` `code` ``, `[links](https://…)`, with typographic quotes). A field the slide's layout does not show is
//! an error rather than silently dropped, as are missing content, ragged tables and charts whose series do
//! not match their categories: [`OfficeError::Invalid`] names the slide and what to change.
//!
//! The deck is 16:9 with one accent color (blue) on white, Calibri, titles 36 pt (44 pt on title slides),
//! bullets 24/20/18/16/16 pt by level. Text that would overflow its box is given a smaller font scale.
//! Charts carry their data twice, as a cache in the chart (what viewers draw) and as an embedded workbook
//! (what PowerPoint's "Edit Data" opens).
//!
//! # Reading
//!
//! [`read_pptx`] returns each slide's title, its other text in document order (bullet levels indented by
//! two spaces, table rows as cells joined by ` | `, charts as their type, categories and values, pictures
//! as `[image: description]`), and its speaker notes.
//!
//! # Example
//!
//! ```
//! use errand_office::pptx::{DeckSpec, write_pptx};
//!
//! let deck = DeckSpec::from_json(&serde_json::json!({"slides": [
//!     {"layout": "title", "title": "Quarterly review", "subtitle": "Q3"},
//!     {"layout": "bullets", "title": "Highlights",
//!      "bullets": ["Revenue **up** 12%", {"text": "driven by renewals", "level": 1}],
//!      "notes": "Start with the renewals story."},
//! ]}))
//! .unwrap();
//! let no_images = |path: &str| Err(format!("{path}: this deck has no images"));
//! let bytes = write_pptx(&deck, &no_images).unwrap();
//! assert!(bytes.starts_with(b"PK"));
//! ```

mod chart;
mod read;
mod templates;
mod write;
mod xml;

use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::{LoadImage, OfficeError};

/// The most slides a deck may have.
pub const MAX_SLIDES: usize = 300;
/// The most bullets in one list (a slide's `bullets`, or one column).
pub const MAX_BULLETS: usize = 40;
/// The deepest bullet level (levels are 0 to 4).
pub const MAX_LEVEL: u8 = 4;
/// The most columns in a table.
pub const MAX_TABLE_COLUMNS: usize = 10;
/// The most body rows in a table (the header not counted).
pub const MAX_TABLE_ROWS: usize = 20;
/// The most categories in a chart.
pub const MAX_CATEGORIES: usize = 100;
/// The most series in a chart.
pub const MAX_SERIES: usize = 12;

/// A deck to write: its slides, and optionally the document's title and author (file properties).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DeckSpec {
    /// The slides, first first.
    pub slides: Vec<SlideSpec>,
    /// The document title in the file's properties; the first slide's title when absent.
    #[serde(default)]
    pub title: Option<String>,
    /// The author in the file's properties.
    #[serde(default)]
    pub author: Option<String>,
}

/// Which arrangement a slide uses; each shows some of [`SlideSpec`]'s fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// A title slide: `title` and an optional `subtitle`.
    Title,
    /// A title and a bullet list (`bullets`).
    Bullets,
    /// A title and two bullet lists side by side (`left`, `right`).
    #[serde(alias = "two_column", alias = "two-columns", alias = "twocolumn")]
    TwoColumn,
    /// A title and a table (`table`).
    Table,
    /// A title and a picture (`image`, optional `caption`).
    Image,
    /// A title and a native chart (`chart`).
    Chart,
}

impl Layout {
    /// The layout's name as written in a spec.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Title => "title",
            Layout::Bullets => "bullets",
            Layout::TwoColumn => "two-column",
            Layout::Table => "table",
            Layout::Image => "image",
            Layout::Chart => "chart",
        }
    }
}

/// One slide: its layout and what fills it. Fields the layout does not show must be absent.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlideSpec {
    /// The arrangement.
    pub layout: Layout,
    /// The slide's title (required for `title`, optional elsewhere).
    #[serde(default)]
    pub title: Option<String>,
    /// `title` only: the line under the title.
    #[serde(default)]
    pub subtitle: Option<String>,
    /// `bullets` only: the bullet list.
    #[serde(default)]
    pub bullets: Vec<Bullet>,
    /// `two-column` only: the left list.
    #[serde(default)]
    pub left: Vec<Bullet>,
    /// `two-column` only: the right list.
    #[serde(default)]
    pub right: Vec<Bullet>,
    /// `table` only: the table.
    #[serde(default)]
    pub table: Option<TableSpec>,
    /// `image` only: the picture's path, loaded through the caller's [`LoadImage`]; PNG or JPEG.
    #[serde(default)]
    pub image: Option<String>,
    /// `image` only: a caption under the picture (also its alternative text).
    #[serde(default)]
    pub caption: Option<String>,
    /// `chart` only: the chart.
    #[serde(default)]
    pub chart: Option<ChartSpec>,
    /// Speaker notes; lines become paragraphs.
    #[serde(default)]
    pub notes: Option<String>,
}

/// One bullet: its text (inline markdown) and its level, 0 (top) to [`MAX_LEVEL`].
///
/// In JSON a bullet is either a string (level 0) or `{"text": "…", "level": 1}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Value")]
pub struct Bullet {
    /// The text; inline markdown (`**bold**`, `*italic*`, `` `code` ``, links).
    pub text: String,
    /// 0 for a top-level bullet, up to 4.
    pub level: u8,
}

impl Bullet {
    /// A top-level bullet.
    pub fn new(text: impl Into<String>) -> Self {
        Bullet { text: text.into(), level: 0 }
    }

    /// A bullet at a level.
    pub fn at_level(text: impl Into<String>, level: u8) -> Self {
        Bullet { text: text.into(), level }
    }
}

impl TryFrom<Value> for Bullet {
    type Error = String;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        const SHAPE: &str = r#"a bullet is a string or {"text": "...", "level": 0-4}"#;
        match value {
            Value::String(text) => Ok(Bullet::new(text)),
            Value::Object(mut fields) => {
                let text = match fields.remove("text") {
                    Some(Value::String(text)) => text,
                    Some(other) => return Err(format!("a bullet's text must be a string, not {other}; {SHAPE}")),
                    None => return Err(format!("a bullet object needs \"text\"; {SHAPE}")),
                };
                let level = match fields.remove("level") {
                    None | Some(Value::Null) => 0,
                    Some(Value::Number(number)) => match number.as_u64() {
                        Some(level) if level <= u64::from(MAX_LEVEL) => level as u8,
                        _ => return Err(format!("bullet level {number} is out of range; use 0 (top) to {MAX_LEVEL}")),
                    },
                    Some(other) => return Err(format!("a bullet's level must be a number 0-{MAX_LEVEL}, not {other}")),
                };
                if let Some(key) = fields.keys().next() {
                    return Err(format!("unknown bullet field `{key}`; {SHAPE}"));
                }
                Ok(Bullet { text, level })
            }
            other => Err(format!("{other} is not a bullet; {SHAPE}")),
        }
    }
}

/// A table: a header row and body rows with as many cells each.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// The column headings. Cells may be written as strings, numbers, booleans or null (empty).
    #[serde(deserialize_with = "cell_texts")]
    pub header: Vec<String>,
    /// The body rows, each as long as the header. Cells take inline markdown.
    #[serde(default, deserialize_with = "cell_rows")]
    pub rows: Vec<Vec<String>>,
}

/// The kind of chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChartKind {
    /// Vertical bars, clustered by category.
    Column,
    /// Horizontal bars, clustered by category; the first category on top.
    Bar,
    /// Lines with markers.
    Line,
    /// A pie of one series, with percentages.
    Pie,
}

impl ChartKind {
    /// The kind's name as written in a spec.
    pub fn name(self) -> &'static str {
        match self {
            ChartKind::Column => "column",
            ChartKind::Bar => "bar",
            ChartKind::Line => "line",
            ChartKind::Pie => "pie",
        }
    }
}

/// A chart: categories along one axis, one value per category in each series.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartSpec {
    /// Column, bar, line or pie.
    #[serde(rename = "type")]
    pub kind: ChartKind,
    /// The category labels (numbers are taken as labels too).
    #[serde(deserialize_with = "cell_texts")]
    pub categories: Vec<String>,
    /// The series; a pie has exactly one.
    pub series: Vec<SeriesSpec>,
}

/// One series of a chart.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesSpec {
    /// The series' name, shown in the legend; `Series N` when empty.
    #[serde(default)]
    pub name: String,
    /// One value per category; `null` leaves a gap. Numeric strings ("12.5") are accepted.
    #[serde(deserialize_with = "chart_values")]
    pub values: Vec<Option<f64>>,
}

/// A cell or label as text: strings as they are, numbers and booleans as written, null as empty.
fn value_text(value: Value) -> Result<String, String> {
    match value {
        Value::String(text) => Ok(text),
        Value::Number(number) => Ok(number.to_string()),
        Value::Bool(flag) => Ok(flag.to_string()),
        Value::Null => Ok(String::new()),
        other => Err(format!("a cell or label must be a string or a number, not {other}")),
    }
}

fn cell_texts<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let values = Vec::<Value>::deserialize(deserializer)?;
    values.into_iter().map(value_text).collect::<Result<_, _>>().map_err(serde::de::Error::custom)
}

fn cell_rows<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Vec<String>>, D::Error> {
    let rows = Vec::<Vec<Value>>::deserialize(deserializer)?;
    rows.into_iter()
        .map(|row| row.into_iter().map(value_text).collect::<Result<Vec<_>, _>>())
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

fn chart_values<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Option<f64>>, D::Error> {
    let values = Vec::<Value>::deserialize(deserializer)?;
    values
        .into_iter()
        .map(|value| match value {
            Value::Number(number) => {
                number.as_f64().map(Some).ok_or_else(|| format!("{number} is not a usable number"))
            }
            Value::Null => Ok(None),
            Value::String(text) => match text.trim().parse::<f64>() {
                Ok(number) if number.is_finite() => Ok(Some(number)),
                _ => Err(format!("chart value {text:?} is not a number; write numbers, or null for a gap")),
            },
            other => Err(format!("chart value {other} is not a number; write numbers, or null for a gap")),
        })
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

impl DeckSpec {
    /// Reads a deck from a tool's JSON input: an object with `slides` (other keys such as `path` are
    /// ignored; `title` and `author` are used when strings), or a bare array of slides. Each slide is read on
    /// its own, so an error names the slide: `slide 3: unknown variant "graph", expected one of …`.
    pub fn from_json(input: &Value) -> Result<DeckSpec, OfficeError> {
        let invalid = |reason: String| OfficeError::Invalid { reason };
        let (slides, title, author) = match input {
            Value::Array(slides) => (slides, None, None),
            Value::Object(fields) => {
                let Some(Value::Array(slides)) = fields.get("slides") else {
                    return Err(invalid(
                        "the deck needs `slides`: a list of slides such as {\"layout\": \"bullets\", \"title\": \"…\", \
                         \"bullets\": [\"…\"]}"
                            .to_string(),
                    ));
                };
                let text = |key: &str| fields.get(key).and_then(Value::as_str).map(str::to_string);
                (slides, text("title"), text("author"))
            }
            _ => return Err(invalid("a deck is an object with `slides` (a list of slides)".to_string())),
        };
        let slides = slides
            .iter()
            .enumerate()
            .map(|(index, slide)| {
                SlideSpec::deserialize(slide).map_err(|error| {
                    invalid(format!("slide {}: {error}; see the slides schema for each layout's fields", index + 1))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DeckSpec { slides, title, author })
    }
}

/// Writes a deck as the bytes of a `.pptx` file.
///
/// Pictures are loaded through `load_image` (a slide's `image` path, as given). A spec that does not fit its
/// layout, a picture that cannot be loaded or is neither PNG nor JPEG, are [`OfficeError::Invalid`] naming the
/// slide; the output is the same for the same input (no timestamps).
pub fn write_pptx(deck: &DeckSpec, load_image: LoadImage<'_>) -> Result<Vec<u8>, OfficeError> {
    validate(deck)?;
    write::deck(deck, load_image)
}

/// Text of one slide, as [`read_pptx`] finds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlideText {
    /// The slide's position in the deck, from 1.
    pub number: usize,
    /// The title placeholder's text; empty when the slide has none.
    pub title: String,
    /// The rest of the slide's text in document order, one paragraph a line: nested bullets indented by
    /// two spaces a level, table rows as ` | `-joined cells, charts and pictures as bracketed lines.
    pub text: String,
    /// The speaker notes; empty when none.
    pub notes: String,
}

/// The largest file [`read_pptx`] opens: 100 MB.
pub const MAX_FILE_BYTES: u64 = 100 * 1000 * 1000;
/// The most XML [`read_pptx`] decompresses, all parts together: 100 MB.
pub const MAX_XML_BYTES: u64 = 100 * 1000 * 1000;
/// The most text [`read_pptx`] returns for one slide (text and notes each); the rest is cut with a marker.
pub const MAX_SLIDE_TEXT: usize = 1_000_000;

/// Reads a deck's text, slide by slide in presentation order: from any pptx (PowerPoint, LibreOffice,
/// python-pptx, ours).
///
/// Files over [`MAX_FILE_BYTES`] are [`OfficeError::TooLarge`]; damaged, encrypted (password-protected
/// files are OLE containers, not zips) and non-pptx files are [`OfficeError::Read`], as is a deck whose XML
/// would decompress past [`MAX_XML_BYTES`].
pub fn read_pptx(path: &Path) -> Result<Vec<SlideText>, OfficeError> {
    read::read(path)
}

/// The JSON Schema of `slides` (an array of slides), for a tool's input schema. It is sent with every
/// request, so it is terse; a slide that does not fit its layout comes back as an error naming the slide and
/// the field.
pub fn slides_schema() -> Value {
    let bullets = serde_json::json!({"type": "array", "description": "strings, or {text, level: 0-4}"});
    serde_json::json!({
        "type": "array",
        "description": "layout title: subtitle; bullets: bullets; two-column: left, right; table: table; image: \
            image, caption; chart: chart",
        "items": {
            "type": "object",
            "properties": {
                "layout": {"type": "string", "enum": ["title", "bullets", "two-column", "table", "image", "chart"]},
                "title": {"type": "string"},
                "subtitle": {"type": "string"},
                "bullets": bullets,
                "left": bullets,
                "right": bullets,
                "table": {"type": "object", "description": "{header: [..], rows: [[..]]}"},
                "image": {"type": "string", "description": "PNG or JPEG path"},
                "caption": {"type": "string"},
                "chart": {"type": "object", "description": "{type: column|bar|line|pie, categories: [..], series: [{name, values: [..]}]}"},
                "notes": {"type": "string"}
            },
            "required": ["layout"]
        }
    })
}

/// Checks a deck against its layouts before anything is built.
fn validate(deck: &DeckSpec) -> Result<(), OfficeError> {
    if deck.slides.is_empty() {
        return Err(OfficeError::Invalid {
            reason: "the deck has no slides; give at least one, such as {\"layout\": \"title\", \"title\": \"…\"}"
                .to_string(),
        });
    }
    if deck.slides.len() > MAX_SLIDES {
        return Err(OfficeError::Invalid {
            reason: format!(
                "the deck has {} slides; at most {MAX_SLIDES} fit in one file, so split it into several decks",
                deck.slides.len()
            ),
        });
    }
    for (index, slide) in deck.slides.iter().enumerate() {
        validate_slide(slide)
            .map_err(|reason| OfficeError::Invalid { reason: format!("slide {}: {reason}", index + 1) })?;
    }
    Ok(())
}

fn validate_slide(slide: &SlideSpec) -> Result<(), String> {
    let layout = slide.layout;
    // Which fields are set, and which layout shows each.
    let fields: [(&str, bool, Layout); 7] = [
        ("subtitle", slide.subtitle.is_some(), Layout::Title),
        ("bullets", !slide.bullets.is_empty(), Layout::Bullets),
        ("left", !slide.left.is_empty(), Layout::TwoColumn),
        ("right", !slide.right.is_empty(), Layout::TwoColumn),
        ("table", slide.table.is_some(), Layout::Table),
        ("image", slide.image.is_some(), Layout::Image),
        ("chart", slide.chart.is_some(), Layout::Chart),
    ];
    for (field, set, shown_by) in fields {
        if set && shown_by != layout {
            return Err(format!(
                "layout `{}` does not show `{field}`; remove it or use layout `{}`",
                layout.name(),
                shown_by.name()
            ));
        }
    }
    if slide.caption.is_some() && layout != Layout::Image {
        return Err(format!("layout `{}` does not show `caption`; remove it or use layout `image`", layout.name()));
    }
    match layout {
        Layout::Title => {
            if slide.title.as_deref().is_none_or(|title| title.trim().is_empty()) {
                return Err("layout `title` needs a `title`".to_string());
            }
        }
        Layout::Bullets => {
            if slide.bullets.is_empty() {
                return Err(
                    "layout `bullets` needs `bullets`: a list of strings or {\"text\", \"level\"}; for a slide with \
                     only a title use layout `title`"
                        .to_string(),
                );
            }
            validate_bullets("bullets", &slide.bullets)?;
        }
        Layout::TwoColumn => {
            if slide.left.is_empty() && slide.right.is_empty() {
                return Err("layout `two-column` needs `left` and `right`: two lists of bullets".to_string());
            }
            validate_bullets("left", &slide.left)?;
            validate_bullets("right", &slide.right)?;
        }
        Layout::Table => {
            let Some(table) = &slide.table else {
                return Err("layout `table` needs `table`: {\"header\": [...], \"rows\": [[...], ...]}".to_string());
            };
            validate_table(table)?;
        }
        Layout::Image => {
            if slide.image.as_deref().is_none_or(|path| path.trim().is_empty()) {
                return Err("layout `image` needs `image`: the path of a PNG or JPEG picture".to_string());
            }
        }
        Layout::Chart => {
            let Some(chart) = &slide.chart else {
                return Err(
                    "layout `chart` needs `chart`: {\"type\": \"column\", \"categories\": [...], \"series\": [{\"name\", \
                     \"values\"}]}"
                        .to_string(),
                );
            };
            validate_chart(chart)?;
        }
    }
    Ok(())
}

fn validate_bullets(field: &str, bullets: &[Bullet]) -> Result<(), String> {
    if bullets.len() > MAX_BULLETS {
        return Err(format!(
            "`{field}` has {} bullets; at most {MAX_BULLETS} fit on a slide, so split them over several slides",
            bullets.len()
        ));
    }
    if let Some((index, bullet)) = bullets.iter().enumerate().find(|(_, bullet)| bullet.level > MAX_LEVEL) {
        return Err(format!(
            "bullet {} of `{field}` has level {}; levels go from 0 (top) to {MAX_LEVEL}",
            index + 1,
            bullet.level
        ));
    }
    Ok(())
}

fn validate_table(table: &TableSpec) -> Result<(), String> {
    let columns = table.header.len();
    if columns == 0 {
        return Err("the table's `header` is empty; give one heading per column".to_string());
    }
    if columns > MAX_TABLE_COLUMNS {
        return Err(format!(
            "the table has {columns} columns; at most {MAX_TABLE_COLUMNS} stay readable on a slide, so split it or \
             drop columns"
        ));
    }
    if table.rows.len() > MAX_TABLE_ROWS {
        return Err(format!(
            "the table has {} rows; at most {MAX_TABLE_ROWS} stay readable on a slide, so split it over several slides",
            table.rows.len()
        ));
    }
    for (index, row) in table.rows.iter().enumerate() {
        if row.len() != columns {
            return Err(format!(
                "table row {} has {} cells but the header has {columns}; give every row one cell per column (\"\" \
                 for an empty cell)",
                index + 1,
                row.len()
            ));
        }
    }
    Ok(())
}

fn validate_chart(chart: &ChartSpec) -> Result<(), String> {
    let kind = chart.kind.name();
    let categories = chart.categories.len();
    if categories == 0 {
        return Err(format!("the {kind} chart has no `categories`; give one label per value"));
    }
    if categories > MAX_CATEGORIES {
        return Err(format!("the chart has {categories} categories; at most {MAX_CATEGORIES} are drawn readably"));
    }
    if chart.series.is_empty() {
        return Err(format!("the {kind} chart has no `series`; give at least one {{\"name\", \"values\"}}"));
    }
    if chart.series.len() > MAX_SERIES {
        return Err(format!("the chart has {} series; at most {MAX_SERIES} stay readable", chart.series.len()));
    }
    if chart.kind == ChartKind::Pie && chart.series.len() != 1 {
        return Err(format!(
            "a pie chart shows one series, this one has {}; keep one series or use a column chart",
            chart.series.len()
        ));
    }
    for (index, series) in chart.series.iter().enumerate() {
        if series.values.len() != categories {
            let name = if series.name.is_empty() {
                format!("series {}", index + 1)
            } else {
                format!("series {:?}", series.name)
            };
            return Err(format!(
                "{name} has {} values but there are {categories} categories; give one value per category (null for a gap)",
                series.values.len()
            ));
        }
        if series.values.iter().flatten().any(|value| !value.is_finite()) {
            return Err(format!("series {} has a value that is not a finite number", index + 1));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn invalid(input: Value) -> String {
        let deck = match DeckSpec::from_json(&input) {
            Ok(deck) => deck,
            Err(error) => return error.to_string(),
        };
        let no_images = |path: &str| Err(format!("no image {path}"));
        write_pptx(&deck, &no_images).unwrap_err().to_string()
    }

    #[test]
    fn bullets_are_strings_or_text_with_level() {
        let deck = DeckSpec::from_json(
            &json!({"slides": [{"layout": "bullets", "bullets": ["a", {"text": "b", "level": 2}]}]}),
        )
        .unwrap();
        assert_eq!(deck.slides[0].bullets, vec![Bullet::new("a"), Bullet::at_level("b", 2)]);
    }

    #[test]
    fn errors_name_the_slide_and_what_to_change() {
        let error = invalid(json!({"slides": [{"layout": "title", "title": "x"}, {"layout": "graph"}]}));
        assert!(error.starts_with("slide 2: unknown variant `graph`"), "{error}");
        let error = invalid(json!([{"layout": "title", "title": "x"}, {"layout": "table", "title": "t"}]));
        assert!(error.starts_with("slide 2: layout `table` needs `table`"), "{error}");
        let error = invalid(json!([{"layout": "bullets", "bullets": ["a"], "table": {"header": ["a"], "rows": []}}]));
        assert!(error.contains("slide 1: layout `bullets` does not show `table`"), "{error}");
        let error = invalid(json!([{"layout": "bullets", "bullets": [{"text": "a", "level": 5}]}]));
        assert!(error.contains("slide 1:") && error.contains("level 5 is out of range"), "{error}");
        let error = invalid(json!([{"layout": "bullets", "bulets": ["a"]}]));
        assert!(error.contains("slide 1: unknown field `bulets`"), "{error}");
        let error = invalid(json!([{"layout": "table", "table": {"header": ["a", "b"], "rows": [["1", "2"], ["3"]]}}]));
        assert!(error.contains("table row 2 has 1 cells but the header has 2"), "{error}");
        let error = invalid(json!([{"layout": "chart", "chart": {"type": "line", "categories": ["a", "b"],
            "series": [{"name": "s", "values": [1, 2, 3]}]}}]));
        assert!(error.contains("series \"s\" has 3 values but there are 2 categories"), "{error}");
        let error = invalid(json!([{"layout": "chart", "chart": {"type": "pie", "categories": ["a"],
            "series": [{"name": "s", "values": [1]}, {"name": "t", "values": [2]}]}}]));
        assert!(error.contains("a pie chart shows one series"), "{error}");
        let error = invalid(json!({"slides": []}));
        assert!(error.contains("the deck has no slides"), "{error}");
        let error = invalid(json!({"path": "x.pptx"}));
        assert!(error.contains("the deck needs `slides`"), "{error}");
    }

    #[test]
    fn cells_and_chart_values_accept_numbers_and_gaps() {
        let deck = DeckSpec::from_json(&json!([
            {"layout": "table", "table": {"header": ["year", 2024], "rows": [[1.5, null], [true, "x"]]}},
            {"layout": "chart", "chart": {"type": "column", "categories": [2023, 2024], "series": [{"name": "n", "values": [1, null]}, {"values": ["2.5", 3]}]}}
        ]))
        .unwrap();
        let table = deck.slides[0].table.as_ref().unwrap();
        assert_eq!(table.header, ["year", "2024"]);
        assert_eq!(table.rows, [["1.5", ""], ["true", "x"]]);
        let chart = deck.slides[1].chart.as_ref().unwrap();
        assert_eq!(chart.categories, ["2023", "2024"]);
        assert_eq!(chart.series[0].values, [Some(1.0), None]);
        assert_eq!(chart.series[1].values, [Some(2.5), Some(3.0)]);
    }

    #[test]
    fn the_schema_names_every_layout_and_field() {
        let schema = slides_schema();
        let layouts = &schema["items"]["properties"]["layout"]["enum"];
        assert_eq!(layouts, &json!(["title", "bullets", "two-column", "table", "image", "chart"]));
        let properties = schema["items"]["properties"].as_object().unwrap();
        for field in ["title", "subtitle", "bullets", "left", "right", "table", "image", "caption", "chart", "notes"] {
            assert!(properties.contains_key(field), "{field} missing from the schema");
        }
    }
}
