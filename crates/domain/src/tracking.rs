//! Tracking numbers as warehouses type them, made into what carriers and Amazon expect.
//!
//! The seed sends the first tracking number as it is (「先頭の1つのみを返します」) and says nothing
//! about its form, but Japanese warehouse systems often store it in full-width characters or with
//! spaces and hyphens as printed on the label (`４０００－１２３４－５６７８`). Those are the same
//! number: it is normalised before it is validated and sent.

/// The tracking number `raw` as carriers expect it: full-width digits and letters made ASCII,
/// and every space (ASCII or ideographic) and hyphen-like character (`-`, `－`, `‐`, `–`, `—`,
/// `−`, `ー`, `ｰ`) removed. Anything else is kept, so that a number still wrong is refused by the
/// validation with what it contains.
pub fn normalize(raw: &str) -> String {
    raw.chars()
        .map(|c| match c {
            // Full-width ASCII block (！..～) → ASCII.
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .filter(|c| !c.is_whitespace() && !is_hyphen_like(*c))
        .collect()
}

fn is_hyphen_like(c: char) -> bool {
    matches!(
        c,
        '-' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{30FC}' | '\u{FF70}' | '\u{FE63}'
    )
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn full_width_spaces_and_hyphens() {
        assert_eq!(normalize("４０００－１２３４－５６７８"), "400012345678");
        assert_eq!(normalize(" 4000 1234 5678 "), "400012345678");
        assert_eq!(normalize("4000-1234-5678"), "400012345678");
        assert_eq!(normalize("4000\u{3000}1234ー5678"), "400012345678");
        assert_eq!(normalize("ＥＮ１２３４５６７８９ＪＰ"), "EN123456789JP");
        assert_eq!(normalize("400012345678"), "400012345678");
        // Not a number: kept, for the validation to name.
        assert_eq!(normalize("追跡１２３"), "追跡123");
    }
}
