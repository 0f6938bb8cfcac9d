//! A tiny element tree over quick-xml, enough to read feed documents.

use quick_xml::events::Event;
use quick_xml::reader::Reader;

/// An XML element: local name, concatenated text and child elements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Trimmed text of a direct child, `None` when absent or empty.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|c| c.text.trim())
            .filter(|t| !t.is_empty())
    }
}

/// Why a document could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("XML parsing error at line {line}, column {column}: {message}")]
pub(crate) struct XmlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

fn position(text: &str, offset: usize) -> (usize, usize) {
    let upto = &text.as_bytes()[..offset.min(text.len())];
    let line = upto.iter().filter(|b| **b == b'\n').count() + 1;
    let column = upto.iter().rev().take_while(|b| **b != b'\n').count() + 1;
    (line, column)
}

fn local(name: &str) -> String {
    name.rsplit(':').next().unwrap_or(name).to_string()
}

/// Decodes feed bytes by the XML declaration's encoding (UTF-8 or Shift_JIS/CP932).
pub(crate) fn decode(bytes: &[u8]) -> Result<String, XmlError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).to_ascii_lowercase();
    let sjis = [
        "shift_jis",
        "shift-jis",
        "sjis",
        "windows-31j",
        "cp932",
        "ms932",
    ]
    .iter()
    .any(|e| {
        head.contains(&format!("encoding=\"{e}\"")) || head.contains(&format!("encoding='{e}'"))
    });
    if sjis {
        let (text, _, had_errors) = encoding_rs::SHIFT_JIS.decode(bytes);
        if had_errors {
            return Err(XmlError {
                line: 1,
                column: 1,
                message: "the document is not valid Shift_JIS".into(),
            });
        }
        return Ok(text.into_owned());
    }
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        let text = String::from_utf8_lossy(bytes);
        let (line, column) = position(&text, e.utf8_error().valid_up_to());
        XmlError {
            line,
            column,
            message: "invalid UTF-8 byte sequence".into(),
        }
    })
}

/// Parses a whole document into its root element.
pub(crate) fn parse(text: &str) -> Result<Element, XmlError> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let err = |reader: &Reader<&[u8]>, message: String| {
        let (line, column) = position(text, reader.buffer_position() as usize);
        XmlError {
            line,
            column,
            message,
        }
    };
    loop {
        let event = reader.read_event();
        match event {
            Err(e) => {
                let (line, column) = position(text, reader.error_position() as usize);
                return Err(XmlError {
                    line,
                    column,
                    message: e.to_string(),
                });
            }
            Ok(Event::Eof) => break,
            Ok(Event::Start(e)) => {
                if root.is_some() {
                    return Err(err(&reader, "content after the root element".into()));
                }
                stack.push(Element {
                    name: local(e.name().as_ref()),
                    ..Element::default()
                });
            }
            Ok(Event::Empty(e)) => {
                let el = Element {
                    name: local(e.name().as_ref()),
                    ..Element::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None if root.is_none() => root = Some(el),
                    None => return Err(err(&reader, "content after the root element".into())),
                }
            }
            Ok(Event::End(_)) => {
                let Some(el) = stack.pop() else {
                    return Err(err(&reader, "unexpected end tag".into()));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Ok(Event::Text(t)) => {
                let s = t.xml10_content();
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&s),
                    None if s.trim().is_empty() => {}
                    None => return Err(err(&reader, "text outside the root element".into())),
                }
            }
            Ok(Event::CData(c)) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&c.into_inner());
                }
            }
            Ok(Event::GeneralRef(r)) => {
                let ch = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => match r.xml10_content().as_ref() {
                        "amp" => "&".into(),
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "quot" => "\"".into(),
                        "apos" => "'".into(),
                        other => {
                            return Err(err(&reader, format!("undefined entity &{other};")));
                        }
                    },
                    Err(e) => return Err(err(&reader, e.to_string())),
                };
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&ch);
                }
            }
            Ok(Event::DocType(_)) => {
                return Err(err(&reader, "DOCTYPE is not allowed".into()));
            }
            Ok(_) => {}
        }
    }
    if !stack.is_empty() {
        let (line, column) = position(text, text.len());
        return Err(XmlError {
            line,
            column,
            message: format!(
                "unclosed element <{}>",
                stack.last().map(|e| e.name.as_str()).unwrap_or("")
            ),
        });
    }
    root.ok_or(XmlError {
        line: 1,
        column: 1,
        message: "the document has no root element".into(),
    })
}

/// Escapes text for element content.
pub(crate) fn escape(s: &str) -> String {
    quick_xml::escape::partial_escape(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_text_and_entities() {
        let root = parse("<?xml version=\"1.0\"?><a><b>x &amp; y</b><c/><b>z</b></a>").unwrap();
        assert_eq!(root.name, "a");
        assert_eq!(root.text_of("b"), Some("x & y"));
        assert_eq!(root.children_named("b").count(), 2);
        assert!(root.child("c").is_some());
    }

    #[test]
    fn reports_position_of_errors() {
        let e = parse("<a>\n<b></c></a>").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(parse("<a></a><b/>").is_err());
        assert!(parse("<a>").is_err());
    }

    #[test]
    fn decodes_shift_jis() {
        let xml = "<?xml version=\"1.0\" encoding=\"Shift_JIS\"?><a>宅急便</a>";
        let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode(xml);
        let text = decode(&bytes).unwrap();
        assert_eq!(parse(&text).unwrap().text, "宅急便");
    }
}
