//! The `includedData` sets of `searchOrders` and `getOrder` (items always come inline).

use spapi::orders::IncludedData;

/// What an import needs: buyer, ship-to, totals, payment method, fulfillment status and
/// service level.
pub const IMPORT: [IncludedData; 5] = [
    IncludedData::Buyer,
    IncludedData::Recipient,
    IncludedData::Proceeds,
    IncludedData::Payment,
    IncludedData::Fulfillment,
];

/// What status sync needs: everything an import reads (a "to paid" fills the same data in)
/// and the buyers' cancellation requests ([`IMPORT`] plus `Cancellation`: a test keeps the
/// two in step).
pub const SYNC: [IncludedData; 6] = [
    IncludedData::Buyer,
    IncludedData::Recipient,
    IncludedData::Proceeds,
    IncludedData::Payment,
    IncludedData::Fulfillment,
    IncludedData::Cancellation,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_reads_what_an_import_reads_and_cancellations() {
        assert_eq!(&SYNC[..IMPORT.len()], &IMPORT[..]);
        assert_eq!(SYNC[IMPORT.len()..], [IncludedData::Cancellation]);
    }
}
