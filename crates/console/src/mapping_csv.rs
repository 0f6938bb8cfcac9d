//! 外部商品 > 対応表 as CSV: `sku,product_code,handling_days`, in UTF-8 or in Shift_JIS as
//! Japanese spreadsheets save it. Reading checks every line and reports each bad one by its
//! number; the caller saves nothing unless every line is good.

use domain::inventory::HandlingDays;

/// The header line written and expected (the Japanese header is accepted too).
pub const HEADER: [&str; 3] = ["sku", "product_code", "handling_days"];
const HEADER_JA: [&str; 3] = ["SKU", "品番", "出荷作業日数"];

/// Character encoding of a CSV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    ShiftJis,
}

impl Encoding {
    /// `utf-8` or `shift_jis` (a form's value); anything else is UTF-8.
    pub fn from_form(v: Option<&str>) -> Self {
        match v.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            Some("shift_jis" | "sjis" | "cp932" | "windows-31j") => Self::ShiftJis,
            _ => Self::Utf8,
        }
    }

    /// The `charset` of a download.
    pub fn charset(self) -> &'static str {
        match self {
            Self::Utf8 => "utf-8",
            Self::ShiftJis => "Shift_JIS",
        }
    }
}

/// One line of a mapping CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: usize,
    pub sku: String,
    pub product_code: String,
    /// Empty cell: no handling days.
    pub handling_days: Option<HandlingDays>,
}

/// A line that cannot be imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

/// Writes rows (sku, product code, handling days) as CSV in `encoding` (CRLF line ends; UTF-8
/// with a BOM so spreadsheets read it as UTF-8).
pub fn write(rows: &[(String, String, Option<i16>)], encoding: Encoding) -> Vec<u8> {
    let mut text = HEADER.join(",");
    text.push_str("\r\n");
    for (sku, code, days) in rows {
        let days = days.map(|d| d.to_string()).unwrap_or_default();
        text.push_str(&[field(sku), field(code), days].join(","));
        text.push_str("\r\n");
    }
    match encoding {
        Encoding::Utf8 => [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat(),
        Encoding::ShiftJis => encoding_rs::SHIFT_JIS.encode(&text).0.into_owned(),
    }
}

fn field(v: &str) -> String {
    if v.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_owned()
    }
}

/// Reads a mapping CSV: the good rows and every bad line with why (when there is any, nothing
/// is to be saved). Product codes are checked by the caller, who knows the products.
pub fn read(bytes: &[u8], encoding: Encoding) -> (Vec<Row>, Vec<LineError>) {
    let text = match encoding {
        Encoding::Utf8 => {
            let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            match std::str::from_utf8(bytes) {
                Ok(t) => t.to_owned(),
                Err(e) => {
                    return (
                        vec![],
                        vec![LineError {
                            line: 1 + bytes[..e.valid_up_to()]
                                .iter()
                                .filter(|&&b| b == b'\n')
                                .count(),
                            message:
                                "the file is not UTF-8: choose Shift_JIS if a spreadsheet saved it"
                                    .into(),
                        }],
                    );
                }
            }
        }
        Encoding::ShiftJis => {
            let (text, _, bad) = encoding_rs::SHIFT_JIS.decode(bytes);
            if bad {
                let e = LineError {
                    line: 1,
                    message: "the file is not Shift_JIS: choose UTF-8".into(),
                };
                return (vec![], vec![e]);
            }
            text.into_owned()
        }
    };
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let cells = split(line);
        if n == 1 {
            let header: Vec<&str> = cells.iter().map(|c| c.trim()).collect();
            if header != HEADER && header != HEADER_JA {
                errors.push(LineError {
                    line: 1,
                    message: format!(
                        "the first line must be the header {} (or {})",
                        HEADER.join(","),
                        HEADER_JA.join(",")
                    ),
                });
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        match row(n, &cells) {
            Ok(r) => {
                if let Some(first) = seen.insert(r.sku.clone(), n) {
                    errors.push(LineError {
                        line: n,
                        message: format!("SKU {} is already on line {first}", r.sku),
                    });
                } else {
                    rows.push(r);
                }
            }
            Err(message) => errors.push(LineError { line: n, message }),
        }
    }
    (rows, errors)
}

fn row(line: usize, cells: &[String]) -> Result<Row, String> {
    if cells.len() != 3 {
        return Err(format!(
            "{} columns; expected 3: {}",
            cells.len(),
            HEADER.join(",")
        ));
    }
    let sku = cells[0].trim();
    let code = cells[1].trim();
    if sku.is_empty() {
        return Err("the SKU is empty".into());
    }
    if code.is_empty() {
        return Err(format!("SKU {sku}: the product code is empty"));
    }
    let days = cells[2].trim();
    let handling_days = if days.is_empty() {
        None
    } else {
        let n: i64 = days.parse().map_err(|_| {
            format!("SKU {sku}: handling days {days:?} is not a number (0 to 30, or empty)")
        })?;
        Some(HandlingDays::new(n).map_err(|e| format!("SKU {sku}: {e}"))?)
    };
    Ok(Row {
        line,
        sku: sku.to_owned(),
        product_code: code.to_owned(),
        handling_days,
    })
}

/// The cells of one CSV line (quoted cells may hold commas and doubled quotes).
fn split(line: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => cells.push(std::mem::take(&mut cell)),
            _ => cell.push(c),
        }
    }
    cells.push(cell);
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_both_encodings() {
        let rows = vec![
            ("SKU-1".to_owned(), "P001".to_owned(), Some(3)),
            ("SKU,2".to_owned(), "品番\"2".to_owned(), None),
        ];
        for enc in [Encoding::Utf8, Encoding::ShiftJis] {
            let bytes = write(&rows, enc);
            let (back, errors) = read(&bytes, enc);
            assert!(errors.is_empty(), "{errors:?}");
            assert_eq!(back.len(), 2);
            assert_eq!(back[1].sku, "SKU,2");
            assert_eq!(back[1].product_code, "品番\"2");
            assert_eq!(back[0].handling_days, Some(HandlingDays::new(3).unwrap()));
            assert_eq!(back[1].handling_days, None);
        }
        // Shift_JIS bytes are not UTF-8.
        assert!(std::str::from_utf8(&write(&rows, Encoding::ShiftJis)).is_err());
    }

    #[test]
    fn every_bad_line_is_named() {
        let csv = "SKU,品番,出荷作業日数\nA,P1,3\n,P2,\nB,,1\nC,P3,31\nD,P4,x\nA,P5,\nE,P6\n";
        let (good, errors) = read(csv.as_bytes(), Encoding::Utf8);
        assert_eq!(good.len(), 1);
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6, 7, 8], "{errors:?}");
        assert!(errors[2].message.contains("0 to 30"), "{errors:?}");
        assert!(
            errors[4].message.contains("already on line 2"),
            "{errors:?}"
        );
        let header = read(b"a,b,c\n", Encoding::Utf8).1;
        assert_eq!(header[0].line, 1);
        let sjis_as_utf8 = read(
            &write(&[("S".into(), "品番".into(), None)], Encoding::ShiftJis),
            Encoding::Utf8,
        );
        assert!(sjis_as_utf8.1[0].message.contains("Shift_JIS"));
    }
}
