//! System tests of the connector: the five services together on the local PostgreSQL and
//! RabbitMQ with the embedded SP-API simulator, an invariant checker run after every
//! scenario, a log capture for the PII canary and a TCP fault proxy. Tests only (`tests/`).

pub mod capture;
pub mod harness;
pub mod invariants;
pub mod notify;
pub mod processes;
pub mod proxy;
pub mod slow_import;

pub use harness::{ANNOUNCE_GRACE, Svc, System};
