//! The import graph between the source files of one crate, to keep it free of circles.
//!
//! [`ModuleGraph::read`] starts at `src/lib.rs`, follows the `mod name;` declarations to every
//! file of the crate, and records an edge from a file to each file it names through a
//! `crate::`, `super::` or `self::` path (in `use` items, `use` groups and inline paths alike;
//! comments and string literals are ignored). A path resolves to the file of the longest module
//! prefix it names: `crate::feeds::listings::codes::X` is an edge to `feeds/listings.rs`,
//! `crate::feeds::Document` one to `feeds/mod.rs`. A file also depends on each child module it
//! declares, so a child that reaches back into its parent's file (or any module into the crate
//! root's own items) closes a circle: shared helpers belong in a module of their own.
//!
//! Two checks: between files ([`ModuleGraph::file_cycles`]) and between the top-level modules
//! of the crate ([`ModuleGraph::top_level_cycles`], the crate root left out since it declares
//! them all). [`assert_acyclic`] runs both from a test.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// One source file of the crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Path relative to `src/`, e.g. `api/mod.rs`.
    pub path: String,
    /// Module path of the file, e.g. `["api"]`; empty for the crate root.
    pub module: Vec<String>,
}

/// The files of a crate and which file imports which.
#[derive(Debug, Clone, Default)]
pub struct ModuleGraph {
    files: Vec<SourceFile>,
    /// `from → to`, indexes into `files`, no self edges.
    edges: BTreeSet<(usize, usize)>,
}

/// The module a reference is written in, and the path as written (from `crate`, `super` or `self`).
type Reference = (Vec<String>, Vec<String>);

/// An inline or file module: its path and the file that holds it.
struct ModuleEntry {
    path: Vec<String>,
    file: usize,
}

impl ModuleGraph {
    /// Reads the crate whose sources are under `src` (starting at `src/lib.rs`).
    pub fn read(src: &Path) -> io::Result<Self> {
        let mut graph = ModuleGraph::default();
        let mut modules: Vec<ModuleEntry> = Vec::new();
        // (file index, references found in it).
        let mut references: Vec<(usize, Vec<Reference>)> = Vec::new();
        let mut declared: Vec<(usize, usize)> = Vec::new();
        let mut queue: Vec<(PathBuf, Vec<String>, Option<usize>)> =
            vec![(src.join("lib.rs"), Vec::new(), None)];
        while let Some((file_path, module, parent)) = queue.pop() {
            let text = fs::read_to_string(&file_path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", file_path.display())))?;
            let index = graph.files.len();
            let rel = file_path
                .strip_prefix(src)
                .unwrap_or(&file_path)
                .to_string_lossy()
                .replace('\\', "/");
            graph.files.push(SourceFile {
                path: rel,
                module: module.clone(),
            });
            if let Some(parent) = parent {
                declared.push((parent, index));
            }
            let scan = scan(&strip_comments_and_strings(&text), &module);
            for inline in scan.inline_modules {
                modules.push(ModuleEntry {
                    path: inline,
                    file: index,
                });
            }
            modules.push(ModuleEntry {
                path: module.clone(),
                file: index,
            });
            let dir = child_dir(&file_path);
            for child in scan.file_modules {
                let flat = dir.join(format!("{child}.rs"));
                let nested = dir.join(&child).join("mod.rs");
                let child_path = if flat.exists() { flat } else { nested };
                let mut child_module = module.clone();
                child_module.push(child);
                queue.push((child_path, child_module, Some(index)));
            }
            references.push((index, scan.references));
        }
        let by_path: BTreeMap<&[String], usize> = modules
            .iter()
            .map(|m| (m.path.as_slice(), m.file))
            .collect();
        for (from, to) in declared {
            graph.edges.insert((from, to));
        }
        for (from, refs) in &references {
            for (at, path) in refs {
                let Some(absolute) = absolute_path(at, path) else {
                    continue;
                };
                let target = (0..=absolute.len())
                    .rev()
                    .find_map(|n| by_path.get(&absolute[..n]).copied());
                if let Some(to) = target
                    && to != *from
                {
                    graph.edges.insert((*from, to));
                }
            }
        }
        Ok(graph)
    }

    /// The files of the crate, in the order they were read (crate root first).
    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// The files `file` (a path relative to `src/`) imports, sorted.
    pub fn imports_of(&self, file: &str) -> Vec<&str> {
        let Some(from) = self.files.iter().position(|f| f.path == file) else {
            return Vec::new();
        };
        let mut out: Vec<&str> = self
            .edges
            .iter()
            .filter(|(f, _)| *f == from)
            .map(|(_, t)| self.files[*t].path.as_str())
            .collect();
        out.sort_unstable();
        out
    }

    /// Groups of files that import each other (directly or through others), each sorted.
    pub fn file_cycles(&self) -> Vec<Vec<String>> {
        let nodes: Vec<String> = self.files.iter().map(|f| f.path.clone()).collect();
        cycles(&nodes, &self.edges)
    }

    /// Groups of top-level modules that import each other, the crate root left out.
    pub fn top_level_cycles(&self) -> Vec<Vec<String>> {
        let top = |i: usize| self.files[i].module.first().cloned();
        let nodes: Vec<String> = self
            .files
            .iter()
            .filter_map(|f| f.module.first().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let edges: BTreeSet<(usize, usize)> = self
            .edges
            .iter()
            .filter_map(|(f, t)| {
                let (f, t) = (top(*f)?, top(*t)?);
                let fi = nodes.iter().position(|n| *n == f)?;
                let ti = nodes.iter().position(|n| *n == t)?;
                (fi != ti).then_some((fi, ti))
            })
            .collect();
        cycles(&nodes, &edges)
    }
}

impl fmt::Display for ModuleGraph {
    /// One line per file: `path -> imported files`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut files: Vec<&str> = self.files.iter().map(|f| f.path.as_str()).collect();
        files.sort_unstable();
        for file in files {
            writeln!(f, "{file} -> {}", self.imports_of(file).join(", "))?;
        }
        Ok(())
    }
}

/// Panics with the circles found if the crate at `manifest_dir` (its `src/`) has any, between
/// files or between top-level modules. For tests: `assert_acyclic(env!("CARGO_MANIFEST_DIR"))`.
pub fn assert_acyclic(manifest_dir: &str) {
    let src = Path::new(manifest_dir).join("src");
    let graph = ModuleGraph::read(&src).unwrap_or_else(|e| panic!("reading {src:?}: {e}"));
    let files = graph.file_cycles();
    let top = graph.top_level_cycles();
    assert!(
        files.is_empty() && top.is_empty(),
        "import circles in {manifest_dir}: between files {files:?}, between top-level modules \
         {top:?}\n{graph}"
    );
}

/// The directory holding the children of the module in `file`.
fn child_dir(file: &Path) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new("")).to_path_buf();
    match file.file_name().and_then(|n| n.to_str()) {
        Some("lib.rs" | "main.rs" | "mod.rs") => dir,
        _ => dir.join(file.file_stem().unwrap_or_default()),
    }
}

/// `path` (starting with `crate`, `super` or `self`) as seen from module `at`, made absolute.
fn absolute_path(at: &[String], path: &[String]) -> Option<Vec<String>> {
    let mut base: Vec<String> = at.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    base.extend(rest.iter().filter(|s| *s != "self").cloned());
    Some(base)
}

/// The text with comments removed and string and character literals emptied (newlines kept).
fn strip_comments_and_strings(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
        } else if c == 'r'
            && matches!(next, Some('"' | '#'))
            && !chars[..i].last().is_some_and(|p| is_ident(*p))
        {
            // Raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            while j < chars.len() {
                if chars[j] == '"' && (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                if chars[j] == '\n' {
                    out.push('\n');
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if chars.get(i) == Some(&'\n') {
                    out.push('\n');
                }
                i += 1;
            }
            out.push_str("\"\"");
            i += 1;
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // Character literal ('x' or an escape); a lifetime has no closing quote.
            i += if next == Some('\\') { 2 } else { 1 };
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            out.push_str("' '");
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// What one file declares and references.
#[derive(Default)]
struct Scan {
    /// `mod name;` declarations (children in their own files).
    file_modules: Vec<String>,
    /// Module paths of `mod name { ... }` blocks.
    inline_modules: Vec<Vec<String>>,
    /// (module the reference is in, path as written starting with crate/super/self).
    references: Vec<Reference>,
}

/// Scans code (comments and strings already removed) of the file of module `module`.
fn scan(code: &str, module: &[String]) -> Scan {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Scan::default();
    let mut current: Vec<String> = module.to_vec();
    // Brace depth at which each open inline module's block started.
    let mut open_inline: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            depth += 1;
            i += 1;
        } else if c == '}' {
            depth = depth.saturating_sub(1);
            if open_inline.last() == Some(&depth) {
                open_inline.pop();
                current.pop();
            }
            i += 1;
        } else if is_ident(c) && (i == 0 || !is_ident(chars[i - 1])) {
            let word = read_ident(&chars, i);
            let after = i + word.chars().count();
            if word == "mod" {
                let j = skip_ws(&chars, after);
                let name = read_ident(&chars, j);
                let k = skip_ws(&chars, j + name.chars().count());
                match chars.get(k) {
                    Some(';') if !name.is_empty() => out.file_modules.push(name),
                    Some('{') if !name.is_empty() => {
                        current.push(name);
                        out.inline_modules.push(current.clone());
                        open_inline.push(depth);
                        depth += 1;
                        i = k + 1;
                        continue;
                    }
                    _ => {}
                }
                i = after;
            } else if matches!(word.as_str(), "crate" | "super" | "self")
                && chars.get(after) == Some(&':')
                && chars.get(after + 1) == Some(&':')
            {
                let (paths, end) = read_path(&chars, i);
                out.references
                    .extend(paths.into_iter().map(|p| (current.clone(), p)));
                i = end;
            } else {
                i = after;
            }
        } else {
            i += 1;
        }
    }
    out
}

fn read_ident(chars: &[char], start: usize) -> String {
    chars[start.min(chars.len())..]
        .iter()
        .take_while(|c| is_ident(**c))
        .collect()
}

fn skip_ws(chars: &[char], mut i: usize) -> usize {
    while chars.get(i).is_some_and(|c| c.is_whitespace()) {
        i += 1;
    }
    i
}

/// Reads `a::b::{c, d::e}` from `start`: every full path it names, and the index after it.
fn read_path(chars: &[char], start: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix: Vec<String> = Vec::new();
    let mut i = start;
    loop {
        i = skip_ws(chars, i);
        if chars.get(i) == Some(&'{') {
            let mut paths = Vec::new();
            i += 1;
            loop {
                i = skip_ws(chars, i);
                match chars.get(i) {
                    None => return (paths, i),
                    Some('}') => return (paths, i + 1),
                    Some(',') => i += 1,
                    Some(c) if is_ident(*c) => {
                        let (inner, end) = read_path(chars, i);
                        for p in inner {
                            let mut full = prefix.clone();
                            full.extend(p);
                            paths.push(full);
                        }
                        // Skip an `as name` rename or anything else up to the next item.
                        i = end;
                        while let Some(c) = chars.get(i) {
                            if matches!(c, ',' | '}') {
                                break;
                            }
                            i += 1;
                        }
                    }
                    Some(_) => i += 1,
                }
            }
        }
        let word = read_ident(chars, i);
        if word.is_empty() {
            return (vec![prefix], i);
        }
        i += word.chars().count();
        prefix.push(word);
        let j = skip_ws(chars, i);
        if chars.get(j) == Some(&':') && chars.get(j + 1) == Some(&':') {
            i = j + 2;
        } else {
            return (vec![prefix], i);
        }
    }
}

/// Strongly connected groups of more than one node (Tarjan), as sorted names.
fn cycles(nodes: &[String], edges: &BTreeSet<(usize, usize)>) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        edges: &'a BTreeSet<(usize, usize)>,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        groups: Vec<Vec<usize>>,
    }
    impl Tarjan<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.next);
            self.low[v] = self.next;
            self.next += 1;
            self.stack.push(v);
            self.on_stack[v] = true;
            let targets: Vec<usize> = self.edges.range((v, 0)..(v + 1, 0)).map(|e| e.1).collect();
            for w in targets {
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                    Some(_) => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                let mut group = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack[w] = false;
                    group.push(w);
                    if w == v {
                        break;
                    }
                }
                if group.len() > 1 {
                    self.groups.push(group);
                }
            }
        }
    }
    let n = nodes.len();
    let mut t = Tarjan {
        edges,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        groups: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            t.visit(v);
        }
    }
    let mut out: Vec<Vec<String>> = t
        .groups
        .into_iter()
        .map(|g| {
            let mut names: Vec<String> = g.into_iter().map(|i| nodes[i].clone()).collect();
            names.sort();
            names
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let root = std::env::temp_dir().join(format!("module-graph-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for (path, text) in files {
            let p = root.join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        root
    }

    #[test]
    fn finds_a_circle_through_a_use_group_and_an_inline_path() {
        let src = fixture(
            "circle",
            &[
                ("lib.rs", "mod a;\nmod b;\nmod c;\n"),
                ("a.rs", "use crate::{b::{self, X}, c};\n"),
                ("b.rs", "fn f() { crate::c::g(); }\n"),
                (
                    "c.rs",
                    "// crate::b is only a comment\nfn g() { let _ = crate::a::Y; }\n",
                ),
            ],
        );
        let graph = ModuleGraph::read(&src).unwrap();
        assert_eq!(graph.imports_of("a.rs"), vec!["b.rs", "c.rs"]);
        assert_eq!(graph.file_cycles(), vec![vec!["a.rs", "b.rs", "c.rs"]]);
        assert_eq!(graph.top_level_cycles(), vec![vec!["a", "b", "c"]]);
    }

    #[test]
    fn a_child_reaching_into_its_parent_is_a_circle_but_tests_using_super_are_not() {
        let src = fixture(
            "parent",
            &[
                ("lib.rs", "pub mod api;\nconst S: &str = \"crate::x\";\n"),
                ("api/mod.rs", "mod h;\nmod x;\npub(crate) fn helper() {}\n"),
                (
                    "api/h.rs",
                    "fn f() {}\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
                ),
                ("api/x.rs", "use super::helper;\n"),
            ],
        );
        let graph = ModuleGraph::read(&src).unwrap();
        assert_eq!(graph.imports_of("api/h.rs"), Vec::<&str>::new());
        assert_eq!(
            graph.file_cycles(),
            vec![vec!["api/mod.rs".to_string(), "api/x.rs".to_string()]]
        );
        assert!(graph.top_level_cycles().is_empty());
    }

    #[test]
    fn layered_modules_pass() {
        let src = fixture(
            "layers",
            &[
                (
                    "lib.rs",
                    "mod model;\nmod state;\nmod api;\npub use api::run;\n",
                ),
                (
                    "model.rs",
                    "pub struct M { c: char }\nconst B: char = '{';\n",
                ),
                ("state.rs", "use crate::model::M;\nfn f<'a>(m: &'a M) {}\n"),
                ("api.rs", "use crate::{model, state::*};\npub fn run() {}\n"),
            ],
        );
        let graph = ModuleGraph::read(&src).unwrap();
        assert_eq!(graph.imports_of("api.rs"), vec!["model.rs", "state.rs"]);
        assert!(graph.file_cycles().is_empty(), "{graph}");
        assert!(graph.top_level_cycles().is_empty());
    }
}
