//! `module-graph <crate>/src`: prints each file of the crate with the files it imports, then
//! the import circles between files and between top-level modules (exit status 1 if any).

use std::path::PathBuf;
use std::process::ExitCode;

use module_graph::ModuleGraph;

fn main() -> ExitCode {
    let Some(src) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: module-graph <crate>/src");
        return ExitCode::from(2);
    };
    let graph = match ModuleGraph::read(&src) {
        Ok(graph) => graph,
        Err(e) => {
            eprintln!("module-graph: {e}");
            return ExitCode::from(2);
        }
    };
    print!("{graph}");
    let files = graph.file_cycles();
    let top = graph.top_level_cycles();
    println!("circles between files: {files:?}");
    println!("circles between top-level modules: {top:?}");
    if files.is_empty() && top.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
