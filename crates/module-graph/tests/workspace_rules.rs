//! The workspace's shape (issue 16, docs/architecture.md): services depend only on libraries,
//! and the services, ctl and the console hold no SQL of their own (it lives in `store`).

use std::path::{Path, PathBuf};

/// The five action services.
const SERVICES: [&str; 5] = [
    "order-ingest",
    "status-sync",
    "shipment-feedback",
    "inventory-sync",
    "feed-poller",
];

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crates/")
        .to_path_buf()
}

/// Our crates that `crate_name`'s Cargo.toml names in any dependency section (normal, dev or
/// build), read from the manifest's text: `name = …`, `name.workspace = true`, `[dependencies.name]`.
fn our_dependencies(crate_name: &str) -> Vec<(String, String)> {
    let manifest = std::fs::read_to_string(crates_dir().join(crate_name).join("Cargo.toml"))
        .unwrap_or_else(|e| panic!("{crate_name}/Cargo.toml: {e}"));
    let ours: Vec<String> = std::fs::read_dir(crates_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut section = String::new();
    let mut found = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = header.to_owned();
            if let Some((table, name)) = header.rsplit_once('.')
                && table.ends_with("dependencies")
                && ours.iter().any(|o| o == name)
            {
                found.push((table.to_owned(), name.to_owned()));
            }
            continue;
        }
        if !section.ends_with("dependencies") {
            continue;
        }
        let key = line
            .split(['=', '.'])
            .next()
            .unwrap_or_default()
            .trim()
            .trim_matches('"');
        if ours.iter().any(|o| o == key) {
            found.push((section.clone(), key.to_owned()));
        }
    }
    found
}

#[test]
fn services_ctl_and_console_depend_on_no_service() {
    let mut offences = Vec::new();
    for user in SERVICES.iter().chain(&["ctl", "console"]) {
        for (section, dep) in our_dependencies(user) {
            if SERVICES.contains(&dep.as_str()) {
                offences.push(format!("{user} [{section}] -> {dep}"));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "services, ctl and console must depend only on libraries (end-to-end tests of two \
         services belong in system-tests): {offences:#?}"
    );
}

#[test]
fn the_manifest_reader_sees_dependencies() {
    // The positive control: the reader finds what is known to be there.
    let deps = our_dependencies("ctl");
    assert!(
        deps.iter()
            .any(|(s, d)| s == "dependencies" && d == "store"),
        "{deps:?}"
    );
    let deps = our_dependencies("system-tests");
    assert!(deps.iter().any(|(_, d)| d == "order-ingest"), "{deps:?}");
}

/// Source files of `crate_name` (src/ only) whose text contains any of `needles`.
fn files_containing(crate_name: &str, needles: &[&str]) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&crates_dir().join(crate_name).join("src"), &mut files);
    files
        .into_iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            needles.iter().any(|q| text.contains(q))
        })
        .map(|f| f.display().to_string())
        .collect()
}

/// Source files of `crate_name` (src/ only) that run SQL themselves.
fn files_with_sql(crate_name: &str) -> Vec<String> {
    let sql = ["sqlx::query", "query!(", "query_as!(", "query_scalar!("];
    files_containing(crate_name, &sql)
}

/// A service's steps call forward only (docs/architecture.md, the path of one trigger): the job
/// contract (`job-api`), the libraries and `store`, never back into the runner (`runtime`), which
/// only `main.rs` and `lib.rs` name, to wire the job to its queue.
#[test]
fn service_steps_never_call_back_into_the_runner() {
    let offences: Vec<String> = SERVICES
        .iter()
        .flat_map(|c| files_containing(c, &["runtime::"]))
        .filter(|f| !f.ends_with("/main.rs") && !f.ends_with("/lib.rs"))
        .collect();
    assert!(
        offences.is_empty(),
        "use job_api (the job contract) in a service's modules, not runtime: {offences:#?}"
    );
    // The positive control: the wiring does name the runner.
    assert!(!files_containing("order-ingest", &["runtime::"]).is_empty());
}

#[test]
fn services_ctl_and_console_hold_no_sql() {
    let offences: Vec<String> = SERVICES
        .iter()
        .chain(&["ctl", "console"])
        .flat_map(|c| files_with_sql(c))
        .collect();
    assert!(
        offences.is_empty(),
        "SQL lives in `store`; move these queries there: {offences:#?}"
    );
    // The positive control: store does hold SQL.
    assert!(!files_with_sql("store").is_empty());
}
