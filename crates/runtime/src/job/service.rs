//! A service over the runner: what a service binary hands to `runtime::run` for an action whose
//! job is built from the common dependencies and its own configuration ([`Build`]).

use std::sync::Arc;

use bus::{HandlerError, Incoming, Topology};
use chrono::Duration;
use spapi::SpApi;
use sqlx::PgPool;

use super::{Job, JobError, Runner, Settings};

/// What every job is built from.
#[derive(Clone)]
pub struct Deps {
    /// The database.
    pub pool: PgPool,
    /// The credentials' keys.
    pub keys: crypto::Keyring,
    /// The SP-API client (one per process, built by `Ctx::spapi_client`).
    pub api: SpApi,
    /// The bus topology (outbox routing).
    pub topology: Topology,
    /// The events exchange (`Topology::events_exchange`).
    pub events: String,
}

impl Deps {
    /// The SP-API handle of the run's shop. Credentials that cannot be read (decryption,
    /// endpoints) fail the run: trying again cannot help.
    pub async fn shop_api<P>(&self, run: &super::RunCtx<'_, P>) -> Result<spapi::Shop, JobError> {
        let mut conn = self.pool.acquire().await?;
        crate::shop_api(&mut conn, &self.keys, &self.api, &run.shop.shop)
            .await
            .map_err(|e| JobError::Permanent {
                code: "run_failed",
                message: e.to_string(),
            })
    }
}

/// A job that can be built from [`Deps`] and its own configuration.
pub trait Build: Job + Sized {
    /// The service's own tuning.
    type Config;

    /// The job and the runner's settings for it.
    fn build(deps: Deps, config: Self::Config) -> (Self, Settings);
}

/// The handler of an action's queue: the runner of its job. Cheap to clone.
pub struct Service<J: Job> {
    runner: Arc<Runner<J>>,
}

impl<J: Build> Service<J> {
    /// Builds the job and its runner.
    pub fn new(
        pool: PgPool,
        keys: crypto::Keyring,
        api: SpApi,
        topology: Topology,
        config: J::Config,
    ) -> Self {
        let deps = Deps {
            pool: pool.clone(),
            keys,
            api,
            events: topology.events_exchange(),
            topology: topology.clone(),
        };
        let (job, settings) = J::build(deps, config);
        Self {
            runner: Arc::new(Runner::new(job, pool, topology, settings)),
        }
    }
}

impl<J: Job> Service<J> {
    /// The runner (direct triggers, tests).
    pub fn runner(&self) -> &Runner<J> {
        &self.runner
    }
}

impl<J: Job> Clone for Service<J> {
    fn clone(&self) -> Self {
        Self {
            runner: Arc::clone(&self.runner),
        }
    }
}

impl<J: Job> std::fmt::Debug for Service<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("action", &J::ACTION)
            .finish_non_exhaustive()
    }
}

impl<J: Job> bus::Handler for Service<J> {
    async fn handle(&self, msg: Incoming) -> Result<(), HandlerError> {
        self.runner.handle(&msg).await?;
        Ok(())
    }
}

impl Settings {
    /// The settings of a job that pages through Amazon with a cursor: a continuation comes as
    /// soon as Amazon's quota allows the next call (no minimum delay).
    pub fn paging(
        lease_ttl: Duration,
        transient_retry: Duration,
        max_transient_failures: u32,
    ) -> Self {
        Self {
            lease_ttl,
            retry_delay: Duration::zero(),
            transient_retry,
            max_transient_failures,
        }
    }
}
