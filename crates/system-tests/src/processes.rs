//! The services as real processes (their release-less debug binaries under the target
//! directory), started and SIGKILLed by process id.

use std::path::PathBuf;
use std::process::Stdio;

use crate::harness::{RATE_SCALE, Svc, System, TEST_KEYS, database_url};

/// `target/debug` (or `$CARGO_TARGET_DIR/debug`) of this build: two levels above the test
/// executable (`…/debug/deps/<test>-<hash>`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(|d| d.parent())
        .map(PathBuf::from)
        .expect("target dir")
}

/// Path of a workspace program by its binary name; builds it (`cargo build -p <name>`) when it
/// is missing, e.g. when only this crate's tests were built. `scripts/test` (`--workspace`)
/// builds every binary.
pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "-q", "-p", name])
            .status()
            .expect("cargo build");
        assert!(status.success(), "cannot build {name}");
    }
    assert!(path.exists(), "{} not found", path.display());
    path
}

/// Path of a service binary ([`binary`]).
pub fn service_binary(svc: Svc) -> PathBuf {
    binary(svc.name())
}

/// A service process.
pub struct Proc {
    pub svc: Svc,
    pub child: tokio::process::Child,
}

impl Proc {
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGKILL (by process id) and reap.
    pub async fn kill(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Whether it already exited (crash, fail point).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

/// Where service processes connect (owned, so a killer task can restart them).
#[derive(Debug, Clone)]
pub struct ProcEnv {
    pub database_url: String,
    pub amqp_url: String,
    pub prefix: String,
    /// `SPAPI_RATE_SCALE` of the processes.
    pub rate_scale: f64,
}

impl ProcEnv {
    pub fn of(sys: &System) -> ProcEnv {
        ProcEnv {
            database_url: database_url(&sys.pool),
            amqp_url: sys.service_amqp_url.clone(),
            prefix: sys.prefix.clone(),
            rate_scale: RATE_SCALE,
        }
    }
}

/// Starts `svc` as a process against the system's database and bus prefix. `env` adds
/// variables (e.g. a fail point).
pub fn spawn(sys: &System, svc: Svc, env: &[(&str, &str)]) -> Proc {
    spawn_with(&ProcEnv::of(sys), svc, env)
}

/// [`spawn`] from a [`ProcEnv`].
pub fn spawn_with(pe: &ProcEnv, svc: Svc, env: &[(&str, &str)]) -> Proc {
    let mut cmd = tokio::process::Command::new(service_binary(svc));
    cmd.env("DATABASE_URL", &pe.database_url)
        .env("AMQP_URL", &pe.amqp_url)
        .env("BUS_PREFIX", &pe.prefix)
        .env("CONNECTOR_ENCRYPTION_KEYS", TEST_KEYS)
        .env("SPAPI_RATE_SCALE", pe.rate_scale.to_string())
        .env("DB_POOL_SIZE", "4")
        .env("RUST_LOG", "warn")
        .env_remove(shipment_feedback::FAIL_POINT_ENV)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Proc {
        svc,
        child: cmd.spawn().expect("start service process"),
    }
}
