//! What the Office Open XML formats (docx, pptx) share: escaping text into their XML, the compound-file
//! signature that marks password-protected and legacy Office files, resolving a relationship's target to a
//! part name, and reading an image's pixel size from its header.

/// The first bytes of an OLE compound file: what Office writes for password-protected files and for the
/// legacy .doc, .xls and .ppt formats.
pub(crate) const COMPOUND_FILE: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// Escapes text for an XML element or attribute value, dropping the characters XML 1.0 cannot hold
/// (control characters other than tab, newline and carriage return; U+FFFE, U+FFFF), which would make
/// Word or PowerPoint refuse the whole file.
pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\t' | '\n' | '\r' => escaped.push(character),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => {}
            _ => escaped.push(character),
        }
    }
    escaped
}

/// A relationship target as a part name: relative to the source part's folder, `..` resolved, a leading
/// `/` meaning the package root, `%XX` escapes decoded.
pub(crate) fn resolve_target(folder: &str, target: &str) -> String {
    let target = percent_decode(target);
    let mut parts: Vec<&str> =
        if target.starts_with('/') { Vec::new() } else { folder.split('/').filter(|part| !part.is_empty()).collect() };
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

fn percent_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && let Some(hex) = text.get(index + 1..index + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            decoded.push(byte);
            index += 3;
            continue;
        }
        decoded.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// An image format the writers embed as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImageFormat {
    Png,
    Jpeg,
    Gif,
}

impl ImageFormat {
    /// The extension the image is stored under in the package.
    pub(crate) fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Gif => "gif",
        }
    }
}

/// The format and pixel size of a PNG, JPEG or GIF image, read from its header.
pub(crate) fn image_size(bytes: &[u8]) -> Option<(ImageFormat, u32, u32)> {
    let be16 = |at: usize| Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]));
    let be32 = |at: usize| Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    let (format, width, height) = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        if bytes.get(12..16)? != b"IHDR" {
            return None;
        }
        (ImageFormat::Png, be32(16)?, be32(20)?)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        let le16 = |at: usize| Some(u16::from_le_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]));
        (ImageFormat::Gif, u32::from(le16(6)?), u32::from(le16(8)?))
    } else if bytes.starts_with(&[0xFF, 0xD8]) {
        // Walk the segments up to the first start-of-frame marker.
        let mut at = 2;
        loop {
            while *bytes.get(at)? != 0xFF {
                at += 1;
            }
            while *bytes.get(at)? == 0xFF {
                at += 1;
            }
            let marker = *bytes.get(at)?;
            at += 1;
            if matches!(marker, 0xD0..=0xD9 | 0x01) {
                continue;
            }
            let length = usize::from(be16(at)?);
            if matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF) {
                break (ImageFormat::Jpeg, u32::from(be16(at + 5)?), u32::from(be16(at + 3)?));
            }
            if length < 2 {
                return None;
            }
            at += length;
        }
    } else {
        return None;
    };
    (width > 0 && height > 0).then_some((format, width, height))
}
