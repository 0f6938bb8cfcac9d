//! Step, part 1: one `searchOrders` page of the run's window from the cursor.

use job_api::JobError;
use orders::Counts;
use spapi::ErrorClass;
use spapi::orders::{SearchOrdersParams, SearchOrdersResponse};

use crate::window::Plan;

/// The Amazon operation a step calls.
pub(crate) const OPERATION: &str = "searchOrders";

/// Fetches the page after `next_token` (the first page when `None`). Every call Amazon
/// answered counts, refused or not; a call the shared limiter held back (throttled) does not.
pub(crate) async fn page(
    api: &spapi::Shop,
    shop: &domain::shop::Shop,
    plan: &Plan,
    page_size: u32,
    next_token: Option<String>,
    counts: &mut Counts,
) -> Result<SearchOrdersResponse, JobError> {
    let params = SearchOrdersParams {
        pagination_token: next_token,
        ..orders::import_search(shop, plan.from, plan.to, page_size)
    };
    match api.search_orders(&params).await {
        Ok(resp) => {
            counts.tally.call(OPERATION);
            Ok(resp)
        }
        Err(e) => {
            if !matches!(e.class(), ErrorClass::Throttled) {
                counts.tally.call(OPERATION);
            }
            Err(JobError::api(OPERATION, e))
        }
    }
}
