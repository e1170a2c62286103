//! Slide decks: `write_pptx` from a list of slides with layouts, `read_pptx` as text per slide.
