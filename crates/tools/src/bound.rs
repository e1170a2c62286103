//! Output bounding: every tool result stays under about 100 KB (≈25k tokens) and says how to see more.

/// The most bytes of text one tool result may hold.
pub(crate) const MAX_OUTPUT_BYTES: usize = 100 * 1024;

/// Text built line by line that refuses lines once a byte budget is spent.
#[derive(Debug)]
pub(crate) struct BoundedText {
    text: String,
    max_bytes: usize,
}

impl BoundedText {
    /// Empty text that will hold at most `max_bytes`.
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self { text: String::new(), max_bytes }
    }

    /// Appends `line` (with a newline before it unless it is the first) when it fits; returns false and
    /// appends nothing when it does not.
    pub(crate) fn push_line(&mut self, line: &str) -> bool {
        let separator = usize::from(!self.text.is_empty());
        if self.text.len() + separator + line.len() > self.max_bytes {
            return false;
        }
        if separator == 1 {
            self.text.push('\n');
        }
        self.text.push_str(line);
        true
    }

    /// The text so far.
    pub(crate) fn into_string(self) -> String {
        self.text
    }
}

/// `text` cut to at most `max_chars` characters, with a marker saying how long it was when cut.
pub(crate) fn cut_chars(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_string(),
        Some((end, _)) => format!("{}… [cut: {} chars]", &text[..end], text.chars().count()),
    }
}

/// A byte count for people: `512 B`, `1.2 KB`, `3.4 MB`, `1.1 GB` (powers of 1024).
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // Precision loss is irrelevant for a one-decimal display.
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_text_refuses_the_line_that_would_overflow_and_keeps_the_rest() {
        let mut text = BoundedText::new(7);
        assert!(text.push_line("abc"));
        assert!(text.push_line("def"));
        assert!(!text.push_line("g"));
        assert_eq!(text.into_string(), "abc\ndef");
    }

    #[test]
    fn cut_chars_keeps_short_text_and_marks_long_text_on_a_char_boundary() {
        assert_eq!(cut_chars("short", 10), "short");
        assert_eq!(cut_chars("ééééé", 2), "éé… [cut: 5 chars]");
    }

    #[test]
    fn human_size_picks_the_unit() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1229), "1.2 KB");
        assert_eq!(human_size(1_258_291), "1.2 MB");
        assert_eq!(human_size(5 * 1024 * 1024 * 1024), "5.0 GB");
    }
}
