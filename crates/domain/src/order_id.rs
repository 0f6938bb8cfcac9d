//! Amazon order ids: one check for every crate that takes or sends one.

/// True for an Amazon order id: three groups of 3, 7 and 7 ASCII word characters (letters,
/// digits, `_`) joined by `-`, e.g. `503-1234567-1234567`. This is the pattern of Amazon's
/// order-fulfillment feed schema (`\w{3}-\w{7}-\w{7}`), the widest form Amazon accepts; the
/// ids Amazon issues are all digits and match it.
pub fn is_amazon_order_id(id: &str) -> bool {
    let mut parts = id.split('-');
    let ok = [3usize, 7, 7].iter().all(|len| {
        parts.next().is_some_and(|part| {
            part.len() == *len && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
    });
    ok && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::is_amazon_order_id;

    #[test]
    fn three_seven_seven() {
        assert!(is_amazon_order_id("503-1234567-1234567"));
        assert!(is_amazon_order_id("D01-1234567-1234567"));
        assert!(!is_amazon_order_id("503-123456-1234567"));
        assert!(!is_amazon_order_id("503-1234567-1234567-1"));
        assert!(!is_amazon_order_id("503-1234567"));
        assert!(!is_amazon_order_id("abc"));
        assert!(!is_amazon_order_id(""));
        assert!(!is_amazon_order_id("503-1234567-123456７"));
        assert!(!is_amazon_order_id("503-12345 7-1234567"));
    }
}
