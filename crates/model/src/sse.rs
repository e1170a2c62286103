//! A small server-sent events parser (the WHATWG event-stream format) fed with body chunks as they arrive.
//!
//! Chunks may split lines, CRLF pairs and UTF-8 sequences anywhere, so bytes are buffered until a line is
//! complete and only whole lines are decoded.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field; `message` when absent.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The last `id:` seen, if any.
    pub id: Option<String>,
}

/// Incremental parser: [`SseParser::push`] each chunk, then [`SseParser::finish`] at the end of the body.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    buffer: Vec<u8>,
    started: bool,
    event: String,
    data: String,
    has_data: bool,
    id: Option<String>,
}

impl SseParser {
    /// Feeds one chunk; returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        let mut start = 0;
        while let Some(offset) = self.buffer[start..].iter().position(|&byte| byte == b'\n' || byte == b'\r') {
            let end = start + offset;
            let next = match self.buffer[end] {
                b'\r' => match self.buffer.get(end + 1) {
                    Some(b'\n') => end + 2,
                    Some(_) => end + 1,
                    // A CR at the end of the buffer may be the first half of a CRLF: wait for more.
                    None => break,
                },
                _ => end + 1,
            };
            let line = String::from_utf8_lossy(&self.buffer[start..end]).into_owned();
            start = next;
            if let Some(event) = self.line(&line) {
                events.push(event);
            }
        }
        self.buffer.drain(..start);
        events
    }

    /// Ends the stream: a last line without its newline still counts, and a pending event is dispatched
    /// even without the closing blank line (some servers end the body right after `data: [DONE]`).
    pub fn finish(&mut self) -> Option<SseEvent> {
        let rest = std::mem::take(&mut self.buffer);
        let line = String::from_utf8_lossy(&rest);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if !line.is_empty()
            && let Some(event) = self.line(line)
        {
            return Some(event);
        }
        self.dispatch()
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        let line = if self.started {
            line
        } else {
            self.started = true;
            line.strip_prefix('\u{feff}').unwrap_or(line)
        };
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            // A comment: servers send these as keep-alives.
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.id = Some(value.to_string()),
            // `retry` only matters to a reconnecting browser; unknown fields are ignored by the spec.
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = std::mem::take(&mut self.event);
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        Some(SseEvent {
            event: if event.is_empty() { "message".to_string() } else { event },
            data: std::mem::take(&mut self.data),
            id: self.id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn event(event: &str, data: &str) -> SseEvent {
        SseEvent { event: event.into(), data: data.into(), id: None }
    }

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::default();
        let mut events = Vec::new();
        for chunk in chunks {
            events.extend(parser.push(chunk));
        }
        events.extend(parser.finish());
        events
    }

    #[test]
    fn named_events_and_default_type() {
        let events = parse_all(&[b"event: ping\ndata: {}\n\ndata: hello\n\n"]);
        assert_eq!(events, vec![event("ping", "{}"), event("message", "hello")]);
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines() {
        let events = parse_all(&[b"data: one\ndata: two\ndata:three\ndata\n\n"]);
        assert_eq!(events, vec![event("message", "one\ntwo\nthree\n")]);
    }

    #[test]
    fn crlf_and_lone_cr_line_endings() {
        let events = parse_all(&[b"event: a\r\ndata: 1\r\n\r\nevent: b\rdata: 2\r\r"]);
        assert_eq!(events, vec![event("a", "1"), event("b", "2")]);
    }

    #[test]
    fn crlf_split_across_chunks_is_one_line_ending() {
        let events = parse_all(&[b"data: 1\r", b"\n\r", b"\ndata: 2\r\n\r\n"]);
        assert_eq!(events, vec![event("message", "1"), event("message", "2")]);
    }

    #[test]
    fn comments_are_ignored() {
        let events = parse_all(&[b": keep-alive\n\n:another\ndata: x\n\n"]);
        assert_eq!(events, vec![event("message", "x")]);
    }

    #[test]
    fn ids_are_remembered_across_events() {
        let events = parse_all(&[b"id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\n"]);
        let ids: Vec<Option<String>> = events.into_iter().map(|event| event.id).collect();
        assert_eq!(ids, vec![Some("7".into()), Some("7".into()), Some(String::new())]);
    }

    #[test]
    fn an_event_split_at_every_byte_comes_out_whole() {
        let text = "event: content_block_delta\ndata: {\"text\":\"héllo ✓\"}\n\nevent: ping\ndata: {}\n\n";
        let chunks: Vec<&[u8]> = text.as_bytes().chunks(1).collect();
        assert_eq!(
            parse_all(&chunks),
            vec![event("content_block_delta", "{\"text\":\"héllo ✓\"}"), event("ping", "{}")]
        );
    }

    #[test]
    fn utf8_split_inside_a_character() {
        let bytes = "data: ✓\n\n".as_bytes();
        // '✓' is three bytes starting at offset 6.
        let events = parse_all(&[&bytes[..7], &bytes[7..8], &bytes[8..]]);
        assert_eq!(events, vec![event("message", "✓")]);
    }

    #[test]
    fn blank_lines_without_data_dispatch_nothing() {
        let events = parse_all(&[b"\n\nevent: lonely\n\ndata: x\n\n"]);
        // The event name does not leak into the next event.
        assert_eq!(events, vec![event("message", "x")]);
    }

    #[test]
    fn a_last_event_without_its_blank_line_is_dispatched_at_the_end() {
        assert_eq!(parse_all(&[b"data: [DONE]"]), vec![event("message", "[DONE]")]);
        assert_eq!(parse_all(&[b"data: [DONE]\n"]), vec![event("message", "[DONE]")]);
        assert_eq!(parse_all(&[b"data: [DONE]\r"]), vec![event("message", "[DONE]")]);
    }

    #[test]
    fn a_leading_byte_order_mark_is_skipped() {
        assert_eq!(parse_all(&["\u{feff}data: x\n\n".as_bytes()]), vec![event("message", "x")]);
    }

    #[test]
    fn only_one_space_after_the_colon_is_stripped() {
        assert_eq!(parse_all(&[b"data:  two spaces\n\n"]), vec![event("message", " two spaces")]);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        assert_eq!(parse_all(&[b"data: \xff\n\n"]), vec![event("message", "\u{fffd}")]);
    }
}
