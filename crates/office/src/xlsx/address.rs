//! A1-style addresses: cells (`B7`), ranges (`A1:C10`), whole columns (`B`, `B:D`), whole rows (`2:50`) and
//! sheet-qualified ranges (`'My Sheet'!$A$2:$A$5`). Rows and columns are zero-based here.

/// Rows in a worksheet (Excel's limit).
pub(crate) const MAX_ROWS: u32 = 1_048_576;
/// Columns in a worksheet (Excel's limit, `XFD`).
pub(crate) const MAX_COLUMNS: u32 = 16_384;

/// A rectangle of cells, zero-based and inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Area {
    pub first_row: u32,
    pub first_column: u32,
    pub last_row: u32,
    pub last_column: u32,
}

impl Area {
    pub(crate) fn contains(&self, row: u32, column: u32) -> bool {
        (self.first_row..=self.last_row).contains(&row) && (self.first_column..=self.last_column).contains(&column)
    }

    /// Whether the area spans whole columns (`B:D`), with no row bounds given.
    pub(crate) fn is_whole_columns(&self) -> bool {
        self.first_row == 0 && self.last_row == MAX_ROWS - 1
    }

    pub(crate) fn intersection(&self, other: &Area) -> Option<Area> {
        let area = Area {
            first_row: self.first_row.max(other.first_row),
            first_column: self.first_column.max(other.first_column),
            last_row: self.last_row.min(other.last_row),
            last_column: self.last_column.min(other.last_column),
        };
        (area.first_row <= area.last_row && area.first_column <= area.last_column).then_some(area)
    }

    pub(crate) fn overlaps(&self, other: &Area) -> bool {
        self.intersection(other).is_some()
    }
}

impl std::fmt::Display for Area {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let first = cell_name(self.first_row, self.first_column);
        if self.first_row == self.last_row && self.first_column == self.last_column {
            write!(formatter, "{first}")
        } else {
            write!(formatter, "{first}:{}", cell_name(self.last_row, self.last_column))
        }
    }
}

/// The letters of a zero-based column: 0 → `A`, 27 → `AB`.
pub(crate) fn column_name(column: u32) -> String {
    let mut letters = Vec::new();
    let mut rest = column + 1;
    while rest > 0 {
        let digit = (rest - 1) % 26;
        letters.push(b'A' + digit as u8);
        rest = (rest - 1) / 26;
    }
    letters.reverse();
    String::from_utf8_lossy(&letters).into_owned()
}

/// The name of a zero-based cell: (6, 1) → `B7`.
pub(crate) fn cell_name(row: u32, column: u32) -> String {
    format!("{}{}", column_name(column), row + 1)
}

/// A column from its letters (`A`, `ab`, `$C`), zero-based; `None` past `XFD` or on anything else.
pub(crate) fn parse_column(text: &str) -> Option<u32> {
    let text = text.strip_prefix('$').unwrap_or(text);
    if text.is_empty() || text.len() > 3 || !text.bytes().all(|byte| byte.is_ascii_alphabetic()) {
        return None;
    }
    let number = text.bytes().fold(0u32, |number, byte| number * 26 + u32::from(byte.to_ascii_uppercase() - b'A') + 1);
    (number <= MAX_COLUMNS).then(|| number - 1)
}

/// A row from its number (`7`, `$7`), zero-based; `None` outside 1..=1,048,576.
fn parse_row(text: &str) -> Option<u32> {
    let text = text.strip_prefix('$').unwrap_or(text);
    if text.is_empty() || text.len() > 7 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let number: u32 = text.parse().ok()?;
    (1..=MAX_ROWS).contains(&number).then(|| number - 1)
}

/// A cell (`B7`, `$B$7`), zero-based (row, column).
pub(crate) fn parse_cell(text: &str) -> Option<(u32, u32)> {
    let text = text.trim();
    let text = text.strip_prefix('$').unwrap_or(text);
    let split = text.find(|character: char| !character.is_ascii_alphabetic())?;
    let (letters, digits) = text.split_at(split);
    Some((parse_row(digits)?, parse_column(letters)?))
}

/// A range without a sheet: `A1:C10`, `B7`, `B`, `B:D`, `2:50`. Corners may come in any order.
pub(crate) fn parse_area(text: &str) -> Option<Area> {
    let text = text.trim();
    let (first, last) = text.split_once(':').unwrap_or((text, text));
    if let (Some(first), Some(last)) = (parse_cell(first), parse_cell(last)) {
        return Some(Area {
            first_row: first.0.min(last.0),
            first_column: first.1.min(last.1),
            last_row: first.0.max(last.0),
            last_column: first.1.max(last.1),
        });
    }
    if let (Some(first), Some(last)) = (parse_column(first.trim()), parse_column(last.trim())) {
        return Some(Area {
            first_row: 0,
            first_column: first.min(last),
            last_row: MAX_ROWS - 1,
            last_column: first.max(last),
        });
    }
    if let (Some(first), Some(last)) = (parse_row(first.trim()), parse_row(last.trim())) {
        return Some(Area {
            first_row: first.min(last),
            first_column: 0,
            last_row: first.max(last),
            last_column: MAX_COLUMNS - 1,
        });
    }
    None
}

/// Splits `Sheet1!A1:B2` or `'My Sheet'!A1` into the sheet (unquoted) and the rest; `None` for the sheet when
/// the text names none.
pub(crate) fn split_sheet(text: &str) -> (Option<String>, &str) {
    let text = text.trim();
    let text = text.strip_prefix('=').unwrap_or(text);
    if let Some(quoted) = text.strip_prefix('\'') {
        // A quoted name ends at a quote that is not doubled, followed by `!`.
        let mut name = String::new();
        let mut characters = quoted.char_indices().peekable();
        while let Some((index, character)) = characters.next() {
            if character == '\'' {
                if characters.peek().is_some_and(|&(_, next)| next == '\'') {
                    characters.next();
                    name.push('\'');
                    continue;
                }
                let rest = &quoted[index + 1..];
                return match rest.strip_prefix('!') {
                    Some(rest) => (Some(name), rest),
                    None => (None, text),
                };
            }
            name.push(character);
        }
        return (None, text);
    }
    match text.rsplit_once('!') {
        Some((sheet, rest)) => (Some(sheet.to_string()), rest),
        None => (None, text),
    }
}

/// A sheet name as a formula writes it: quoted when it holds anything but letters, digits, `_` and `.`, or
/// could read as a cell.
pub(crate) fn quote_sheet(name: &str) -> String {
    let plain = name.chars().all(|character| character.is_alphanumeric() || character == '_' || character == '.')
        && !name.starts_with(|character: char| character.is_ascii_digit())
        && parse_cell(name).is_none();
    if plain { name.to_string() } else { format!("'{}'", name.replace('\'', "''")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_round_trip() {
        for (column, name) in [(0, "A"), (25, "Z"), (26, "AA"), (27, "AB"), (701, "ZZ"), (702, "AAA"), (16_383, "XFD")]
        {
            assert_eq!(column_name(column), name);
            assert_eq!(parse_column(name), Some(column));
        }
        assert_eq!(parse_column("XFE"), None);
        assert_eq!(parse_column("A1"), None);
    }

    #[test]
    fn cells_and_ranges_parse() {
        assert_eq!(parse_cell("B7"), Some((6, 1)));
        assert_eq!(parse_cell("$B$7"), Some((6, 1)));
        assert_eq!(parse_cell("B0"), None);
        assert_eq!(parse_cell("B1048577"), None);
        assert_eq!(parse_cell("7B"), None);
        assert_eq!(parse_area("C9:A2"), Some(Area { first_row: 1, first_column: 0, last_row: 8, last_column: 2 }));
        assert_eq!(parse_area("B").map(|area| (area.first_column, area.last_row)), Some((1, MAX_ROWS - 1)));
        assert_eq!(
            parse_area("2:5").map(|area| (area.first_row, area.last_row, area.last_column)),
            Some((1, 4, 16_383))
        );
        assert_eq!(parse_area("A1:"), None);
        assert_eq!(parse_area("nonsense"), None);
        assert_eq!(parse_area("A1:B2").map(|area| area.to_string()), Some("A1:B2".to_string()));
    }

    #[test]
    fn sheets_split_and_quote() {
        assert_eq!(split_sheet("Sheet1!A2:A5"), (Some("Sheet1".to_string()), "A2:A5"));
        assert_eq!(split_sheet("='It''s here'!$B$2"), (Some("It's here".to_string()), "$B$2"));
        assert_eq!(split_sheet("A1:B2"), (None, "A1:B2"));
        assert_eq!(quote_sheet("Data"), "Data");
        assert_eq!(quote_sheet("My Sheet"), "'My Sheet'");
        assert_eq!(quote_sheet("AB12"), "'AB12'");
        assert_eq!(quote_sheet("It's"), "'It''s'");
    }
}
