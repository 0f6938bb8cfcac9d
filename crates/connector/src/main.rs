//! `connector`: every program of the connector in one binary, for the container image.
//!
//! The programs share almost all of their code (tokio, sqlx, lapin, axum, reqwest, rustls, the
//! domain and store crates), so eight separate binaries of ~17 MB each (stripped) are mostly
//! eight copies of the same libraries; one binary holding all of them is the size of about two.
//! The image installs it once and links each program's name to it
//! (`/usr/local/bin/order-ingest -> connector`, see the Dockerfile and `deploy/docker/binaries`);
//! the name it is called by picks the program, exactly as if that program's own binary ran.
//! `connector PROGRAM ARGS...` runs the same program (it re-executes itself under that name).
//!
//! Each program's own binary (`cargo run -p order-ingest`, ...) still exists and runs the same
//! function: the libraries export it (`order_ingest::main_from_env`, `ctl::main`, ...).

use std::process::ExitCode;

/// The programs, in the order `connector --help` lists them.
const PROGRAMS: [&str; 10] = [
    "order-ingest",
    "status-sync",
    "shipment-feedback",
    "inventory-sync",
    "feed-poller",
    "notification-listener",
    "console",
    "ctl",
    "spapi-sim",
    "demo",
];

/// The program a call means: the file name it was called by, or — called as `connector` — its
/// first argument (then `true`: the rest of the arguments belong to that program).
fn program_of(argv0: &str, first: Option<&str>) -> Option<(&'static str, bool)> {
    let name = std::path::Path::new(argv0)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if let Some(p) = PROGRAMS.iter().find(|p| **p == name) {
        return Some((p, false));
    }
    let first = first?;
    PROGRAMS.iter().find(|p| **p == first).map(|p| (*p, true))
}

fn usage() -> String {
    format!(
        "usage: connector PROGRAM [ARGS...], or call it by a program's name (a link to it)\nprograms: {}",
        PROGRAMS.join(", ")
    )
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let argv0 = args.first().map(String::as_str).unwrap_or("connector");
    let Some((program, by_argument)) = program_of(argv0, args.get(1).map(String::as_str)) else {
        return match args.get(1).map(String::as_str) {
            None | Some("--help" | "-h") => {
                println!("{}", usage());
                if args.len() > 1 {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(64)
                }
            }
            Some(other) => {
                eprintln!("connector: unknown program {other:?}\n{}", usage());
                ExitCode::from(64)
            }
        };
    };
    if by_argument {
        // Each program reads its own command line (clap, `--help`) from the process arguments:
        // run it under its own name.
        use std::os::unix::process::CommandExt as _;
        let err = std::process::Command::new("/proc/self/exe")
            .arg0(program)
            .args(&args[2..])
            .exec();
        eprintln!("connector: cannot run {program}: {err}");
        return ExitCode::from(126);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{program}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(program))
}

/// Runs `program` as its own binary's `main` would.
async fn run(program: &str) -> ExitCode {
    let result = match program {
        "order-ingest" => order_ingest::main_from_env().await,
        "status-sync" => status_sync::main_from_env().await,
        "shipment-feedback" => shipment_feedback::main_from_env().await,
        "inventory-sync" => inventory_sync::main_from_env().await,
        "feed-poller" => feed_poller::main_from_env().await,
        "notification-listener" => notification_listener::main_from_env().await,
        "console" => console::cli::main().await,
        "spapi-sim" => spapi_sim::cli::main().await,
        "ctl" => return ctl::main().await,
        "demo" => return demo::main().await,
        other => unreachable!("{other} is not in PROGRAMS"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // As a `main` returning `anyhow::Result` reports it.
        Err(e) => {
            eprintln!("Error: {e:?}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_called_by_picks_the_program() {
        assert_eq!(
            program_of("/usr/local/bin/order-ingest", Some("--help")),
            Some(("order-ingest", false))
        );
        assert_eq!(program_of("ctl", Some("shop")), Some(("ctl", false)));
        assert_eq!(
            program_of("/usr/local/bin/connector", Some("spapi-sim")),
            Some(("spapi-sim", true))
        );
        assert_eq!(program_of("connector", Some("rm")), None);
        assert_eq!(program_of("connector", None), None);
    }

    /// Every program the image links (deploy/docker/binaries) is one this binary runs.
    #[test]
    fn every_listed_program_is_known() {
        let listed = include_str!("../../../deploy/docker/binaries");
        let names: Vec<&str> = listed
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert_eq!(names.len(), PROGRAMS.len(), "{names:?}");
        for n in names {
            assert!(PROGRAMS.contains(&n), "{n} is listed but not in PROGRAMS");
        }
    }
}
