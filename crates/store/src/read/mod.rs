//! Read models: what the operator pages (the console, `ctl`) show, one module per page. Each
//! function answers one question of one page with typed rows; none of them writes.
//!
//! The services' own reads stay in the repositories beside their writes (`crate::runs`,
//! `crate::feeds`, ...); a read model reuses those where a page needs exactly the same rows.

pub mod actions;
pub mod attention;
pub mod dashboard;
pub mod external_products;
pub mod feeds;
pub mod instructions;
pub mod runs;
pub mod shops;

/// Most rows a list on an operator page shows.
pub const LIST_LIMIT: i64 = 500;
