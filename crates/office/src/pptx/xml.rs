//! XML both ways: escaping text for the writer (shared with docx), and a small element tree for the reader.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

pub(crate) use crate::ooxml::escape;

/// The namespaces the reader tells apart, transitional and strict OOXML alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ns {
    /// DrawingML main (`a:`).
    A,
    /// PresentationML (`p:`).
    P,
    /// Office document relationships (`r:`).
    R,
    /// DrawingML charts (`c:`).
    C,
    /// Markup compatibility (`mc:`).
    Mc,
    /// Package relationships (a `.rels` part).
    PackageRels,
    /// Anything else, or none.
    Other,
}

impl Ns {
    fn of(uri: &str) -> Ns {
        match uri {
            "http://schemas.openxmlformats.org/drawingml/2006/main" | "http://purl.oclc.org/ooxml/drawingml/main" => {
                Ns::A
            }
            "http://schemas.openxmlformats.org/presentationml/2006/main"
            | "http://purl.oclc.org/ooxml/presentationml/main" => Ns::P,
            "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
            | "http://purl.oclc.org/ooxml/officeDocument/relationships" => Ns::R,
            "http://schemas.openxmlformats.org/drawingml/2006/chart" | "http://purl.oclc.org/ooxml/drawingml/chart" => {
                Ns::C
            }
            "http://schemas.openxmlformats.org/markup-compatibility/2006" => Ns::Mc,
            "http://schemas.openxmlformats.org/package/2006/relationships" => Ns::PackageRels,
            _ => Ns::Other,
        }
    }

    fn resolve(result: ResolveResult<'_>) -> Ns {
        match result {
            ResolveResult::Bound(namespace) => Ns::of(namespace.0),
            _ => Ns::Other,
        }
    }
}

/// An element: its namespace and local name, attributes, and children in document order.
#[derive(Debug, Clone)]
pub struct Element {
    /// Namespace.
    pub ns: Ns,
    /// Local name.
    pub name: String,
    /// Attributes: namespace, local name, value.
    pub attributes: Vec<(Ns, String, String)>,
    /// Children.
    pub children: Vec<Node>,
}

/// A child of an element.
#[derive(Debug, Clone)]
pub enum Node {
    /// An element.
    Element(Element),
    /// Text (entities resolved).
    Text(String),
}

/// How deep elements may nest before the reader gives up: real documents stay far below, and the walks
/// over the tree recurse.
pub const MAX_DEPTH: usize = 256;

impl Element {
    /// Whether this is `ns:name`.
    pub fn is(&self, ns: Ns, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// An attribute without a namespace.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(ns, local, _)| *ns == Ns::Other && local == name)
            .map(|(_, _, value)| value.as_str())
    }

    /// An attribute in the relationships namespace (`r:id`, `r:embed`).
    pub fn relationship_attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(ns, local, _)| *ns == Ns::R && local == name).map(|(_, _, value)| value.as_str())
    }

    /// The child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|child| match child {
            Node::Element(element) => Some(element),
            Node::Text(_) => None,
        })
    }

    /// The first child element `ns:name`.
    pub fn child(&self, ns: Ns, name: &str) -> Option<&Element> {
        self.elements().find(|element| element.is(ns, name))
    }

    /// The first element `ns:name` at any depth below this one (depth-first, document order).
    pub fn descendant(&self, ns: Ns, name: &str) -> Option<&Element> {
        let mut stack: Vec<&Element> = self.elements().collect();
        stack.reverse();
        while let Some(element) = stack.pop() {
            if element.is(ns, name) {
                return Some(element);
            }
            let start = stack.len();
            stack.extend(element.elements());
            stack[start..].reverse();
        }
        None
    }

    /// Every element `ns:name` below this one, in document order.
    pub fn descendants<'a>(&'a self, ns: Ns, name: &'a str) -> Vec<&'a Element> {
        let mut found = Vec::new();
        let mut stack: Vec<&Element> = self.elements().collect();
        stack.reverse();
        while let Some(element) = stack.pop() {
            if element.is(ns, name) {
                found.push(element);
            }
            let start = stack.len();
            stack.extend(element.elements());
            stack[start..].reverse();
        }
        found
    }

    /// All the text below this element, concatenated.
    pub fn text(&self) -> String {
        let mut text = String::new();
        let mut stack: Vec<&Node> = self.children.iter().rev().collect();
        while let Some(node) = stack.pop() {
            match node {
                Node::Text(part) => text.push_str(part),
                Node::Element(element) => stack.extend(element.children.iter().rev()),
            }
        }
        text
    }
}

/// Parses an XML part into its root element. Text outside the root is dropped; whitespace-only text is
/// kept only inside DrawingML `a:t` (where a space is content).
pub fn parse(source: &str) -> Result<Element, String> {
    let mut reader = NsReader::from_str(source);
    reader.config_mut().expand_empty_elements = true;
    reader.config_mut().check_end_names = true;
    // Open elements, innermost last; the root is the first.
    let mut open: Vec<Element> = Vec::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|error| format!("malformed XML at byte {}: {error}", reader.buffer_position()))?;
        match event {
            Event::Start(start) => {
                if open.len() >= MAX_DEPTH {
                    return Err(format!("elements nest deeper than {MAX_DEPTH} levels"));
                }
                let (namespace, local) = reader.resolver().resolve_element(start.name());
                let mut element = Element {
                    ns: Ns::resolve(namespace),
                    name: local.as_ref().to_string(),
                    attributes: Vec::new(),
                    children: Vec::new(),
                };
                for attribute in start.attributes().with_checks(false) {
                    let attribute = attribute.map_err(|error| format!("malformed attribute: {error}"))?;
                    let key = attribute.key;
                    if key.0 == "xmlns" || key.0.starts_with("xmlns:") {
                        continue;
                    }
                    let (namespace, local) = reader.resolver().resolve_attribute(key);
                    let value = attribute
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|error| format!("malformed attribute value: {error}"))?;
                    element.attributes.push((Ns::resolve(namespace), local.as_ref().to_string(), value.into_owned()));
                }
                open.push(element);
            }
            Event::End(_) => {
                let Some(element) = open.pop() else {
                    return Err("a closing tag without an opening one".to_string());
                };
                match open.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(element)),
                    None => return Ok(element),
                }
            }
            Event::Text(text) => push_text(&mut open, &text.xml10_content()),
            Event::CData(data) => push_text(&mut open, &data.into_inner()),
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(character)) => character.to_string(),
                    Ok(None) => quick_xml::escape::resolve_xml_entity(&reference).unwrap_or("").to_string(),
                    Err(error) => return Err(format!("malformed character reference: {error}")),
                };
                push_text(&mut open, &resolved);
            }
            Event::Eof => return Err("the XML ends before its root element closes".to_string()),
            Event::Empty(_) | Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
}

fn push_text(open: &mut [Element], text: &str) {
    let Some(parent) = open.last_mut() else { return };
    if text.is_empty() {
        return;
    }
    if let Some(Node::Text(previous)) = parent.children.last_mut() {
        previous.push_str(text);
    } else if !text.trim().is_empty() || parent.is(Ns::A, "t") {
        parent.children.push(Node::Text(text.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_characters_and_drops_what_xml_cannot_hold() {
        assert_eq!(escape("a < b & \"c\" > 'd'"), "a &lt; b &amp; &quot;c&quot; &gt; &apos;d&apos;");
        assert_eq!(escape("bell\u{7}tab\tnull\u{0}"), "belltab\tnull");
    }

    #[test]
    fn parse_resolves_namespaces_entities_and_keeps_spaces_in_text_runs() {
        let root = parse(
            r#"<?xml version="1.0"?><x:sld xmlns:x="http://schemas.openxmlformats.org/presentationml/2006/main" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:rel="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><a:r rel:id="rId7" id="3"><a:t>A &amp; B&#x21;</a:t><a:t> </a:t></a:r></x:sld>"#,
        )
        .unwrap();
        assert!(root.is(Ns::P, "sld"));
        let run = root.child(Ns::A, "r").unwrap();
        assert_eq!(run.relationship_attribute("id"), Some("rId7"));
        assert_eq!(run.attribute("id"), Some("3"));
        assert_eq!(run.text(), "A & B! ");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}{}", "<a>".repeat(100_000), "</a>".repeat(100_000));
        assert!(parse(&deep).unwrap_err().contains("nest deeper"));
    }

    #[test]
    fn unclosed_and_mismatched_xml_are_errors() {
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("<a>").is_err());
        assert!(parse("").is_err());
    }
}
