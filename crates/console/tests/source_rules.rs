//! Source rules of the console (issue 17, templates with automatic escaping): pages are maud
//! templates (`html!`), so no HTML is built by string formatting again — one forgotten escape
//! call away from an injection — and `PreEscaped` (markup maud does not escape) wraps only the
//! trusted constants listed here, never a value from the database, Amazon, a buyer or an operator.

use std::path::{Path, PathBuf};

/// Where `PreEscaped(…)` may appear: (file under `src/`, the constant it wraps).
const PRE_ESCAPED_ALLOWED: &[(&str, &str)] = &[
    ("html.rs", "CSS"),             // the layout's stylesheet
    ("pages/actions.rs", "SCRIPT"), // the range form's page-side check
];

/// Macros and calls that build text: none of them may hold an HTML tag in a string literal.
const STRING_BUILDERS: &[&str] = &[
    "format!(",
    "write!(",
    "writeln!(",
    "format_args!(",
    "concat!(",
    "push_str(",
];

/// `.rs` files under `dir`, recursively, with paths relative to `root`.
fn rust_files(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// The source without whole-line comments (docs may name what the rules forbid).
fn code_only(source: &str) -> String {
    source
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The text from an opening parenthesis at `start` (the byte after `(`) to its match.
fn call_args(code: &str, start: usize) -> &str {
    let mut depth = 1usize;
    for (i, c) in code[start..].char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    return &code[start..start + i];
                }
            }
            _ => {}
        }
    }
    &code[start..]
}

/// The string literals in `code` (plain with escapes, and raw `r"…"`/`r#"…"#`).
fn string_literals(code: &str) -> Vec<&str> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'r' && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) {
            let hashes = b[i + 1..].iter().take_while(|c| **c == b'#').count();
            if b.get(i + 1 + hashes) == Some(&b'"') {
                let open = i + 2 + hashes;
                let close = format!("\"{}", "#".repeat(hashes));
                if let Some(len) = code[open..].find(&close) {
                    out.push(&code[open..open + len]);
                    i = open + len + close.len();
                    continue;
                }
            }
        }
        if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            out.push(&code[i + 1..j.min(b.len())]);
            i = j + 1;
            continue;
        }
        i += 1;
    }
    out
}

/// `<td`, `</tr`, `<a `, `<!doctype`: the start of a tag.
fn has_tag(literal: &str) -> bool {
    let b = literal.as_bytes();
    b.windows(2).enumerate().any(|(i, w)| {
        w[0] == b'<'
            && (w[1].is_ascii_alphabetic()
                || ((w[1] == b'/' || w[1] == b'!')
                    && b.get(i + 2).is_some_and(|c| c.is_ascii_alphabetic())))
    })
}

/// Every breach of the rules in one file (`file` relative to `src/`).
fn violations(file: &str, source: &str) -> Vec<String> {
    let code = code_only(source);
    let mut found = Vec::new();
    for builder in STRING_BUILDERS {
        for (at, _) in code.match_indices(builder) {
            let args = call_args(&code, at + builder.len());
            if string_literals(args).iter().any(|l| has_tag(l)) {
                let line = code[..at].lines().count().max(1);
                found.push(format!(
                    "{file}:{line}: HTML built with {builder}…) — write it in maud::html! instead"
                ));
            }
        }
    }
    for (at, _) in code.match_indices("PreEscaped") {
        let line = code[..at].lines().count().max(1);
        let rest = &code[at + "PreEscaped".len()..];
        if rest.trim_start().starts_with("as ") {
            found.push(format!("{file}:{line}: PreEscaped renamed"));
            continue;
        }
        let Some(args) = rest.strip_prefix('(') else {
            continue; // an import or a type
        };
        let arg = call_args(args, 0).trim();
        if !PRE_ESCAPED_ALLOWED
            .iter()
            .any(|(f, constant)| *f == file && arg == *constant)
        {
            found.push(format!(
                "{file}:{line}: PreEscaped({arg}) — only the constants in PRE_ESCAPED_ALLOWED may skip escaping"
            ));
        }
    }
    found
}

fn console_sources() -> Vec<(String, String)> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &src, &mut files);
    files
}

#[test]
fn console_pages_are_templates_not_formatted_strings() {
    let files = console_sources();
    assert!(
        files.len() >= 15 && files.iter().any(|(f, _)| f == "pages/instructions.rs"),
        "the walk of src/ found {} files",
        files.len()
    );
    assert!(
        files.iter().filter(|(_, s)| s.contains("html! {")).count() >= 14,
        "pages and helpers are maud templates"
    );
    let offences: Vec<String> = files
        .iter()
        .flat_map(|(file, source)| violations(file, source))
        .collect();
    assert!(
        offences.is_empty(),
        "console sources build HTML outside maud::html! or skip its escaping: {offences:#?}"
    );
}

/// The rule finds what it is meant to find (and lets the templates and plain text through).
#[test]
fn the_source_rule_catches_hand_built_html() {
    let bad = [
        r##"let row = format!(r#"<tr><td>{}</td></tr>"#, e(&r.sku));"##,
        r#"let _ = write!(h, "<a href=\"/feeds/{}\">{}</a>", id, name);"#,
        r#"body.push_str("</tbody></table>");"#,
        r#"let _ = writeln!(out, "<!doctype html>");"#,
        "let m = PreEscaped(row.buyer_name.clone());",
        r#"let m = maud::PreEscaped(format!("<b>{}</b>", x));"#,
        "use maud::PreEscaped as Raw;",
    ];
    for sample in bad {
        assert!(
            !violations("pages/sample.rs", sample).is_empty(),
            "not caught: {sample}"
        );
    }
    let good = [
        r#"let s = format!("{} ({})", shop.name, shop.code);"#,
        r#"let p = format!("{x:.1},{y:.1}");"#,
        r#"let n = format!("{}", v.parse::<Vec<u8>>().is_ok());"#,
        r#"let m = format!("{a} < {b} and {c} <= 3");"#,
        r#"let h = html! { td { (r.sku) } a href={ "/feeds/" (id) } { (name) } };"#,
        "use maud::{Markup, PreEscaped, html};",
        "/// `PreEscaped(x)` in a comment",
    ];
    for sample in good {
        assert_eq!(
            violations("pages/sample.rs", sample),
            Vec::<String>::new(),
            "{sample}"
        );
    }
    assert!(violations("html.rs", "style { (PreEscaped(CSS)) }").is_empty());
    assert!(!violations("pages/feeds.rs", "style { (PreEscaped(CSS)) }").is_empty());
}
