//! A service over the runner: what a service binary hands to `runtime::run` for an action whose
//! job is built from the common dependencies and its own configuration ([`Build`]).

use std::sync::Arc;

use bus::{HandlerError, Incoming, Topology};
use spapi::SpApi;
use sqlx::PgPool;

use super::{Build, Deps, Job, Runner};

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
