//! 外部商品 > 対応表 as CSV: `sku,product_code,handling_days,share_percent,safety_stock`, in
//! UTF-8 or in Shift_JIS as Japanese spreadsheets save it. Reading checks every line and
//! reports each bad one by its number; the caller saves nothing unless every line is good. A
//! file with the first three columns only (as written before the stock share) maps SKUs and
//! leaves their share and safety stock as they are.

use domain::inventory::HandlingDays;
use domain::stock::{SafetyStock, SharePercent};

/// The header line written and expected (the Japanese header is accepted too).
pub const HEADER: [&str; 5] = [
    "sku",
    "product_code",
    "handling_days",
    "share_percent",
    "safety_stock",
];
const HEADER_JA: [&str; 5] = ["SKU", "品番", "出荷作業日数", "配分率", "安全在庫"];
/// Columns of a file without the stock share (its header is the first three of either).
const SHORT: usize = 3;

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
    /// The stock share columns; `None` when the file has none (left as they are).
    pub share: Option<Share>,
}

/// A line's share of free stock (empty cell: not shared) and safety stock (empty cell: 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    pub share: Option<SharePercent>,
    pub safety: SafetyStock,
}

/// One mapping as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub sku: String,
    pub product_code: String,
    pub handling_days: Option<i16>,
    pub share_percent: Option<i16>,
    pub safety_stock: i32,
}

/// A line that cannot be imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

/// Writes mappings as CSV in `encoding` (CRLF line ends; UTF-8 with a BOM so spreadsheets
/// read it as UTF-8).
pub fn write(rows: &[Line], encoding: Encoding) -> Vec<u8> {
    let mut text = HEADER.join(",");
    text.push_str("\r\n");
    for r in rows {
        let days = r.handling_days.map(|d| d.to_string()).unwrap_or_default();
        let share = r.share_percent.map(|d| d.to_string()).unwrap_or_default();
        let cells = [
            field(&r.sku),
            field(&r.product_code),
            days,
            share,
            r.safety_stock.to_string(),
        ];
        text.push_str(&cells.join(","));
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
    let mut columns = HEADER.len();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let cells = split(line);
        if n == 1 {
            let header: Vec<&str> = cells.iter().map(|c| c.trim()).collect();
            let known = |h: &[&str]| header == h || header == h[..SHORT];
            if known(&HEADER) || known(&HEADER_JA) {
                columns = header.len();
            } else {
                errors.push(LineError {
                    line: 1,
                    message: format!(
                        "the first line must be the header {} (or {}; without the last two \
                         columns the share and safety stock are left as they are)",
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
        match row(n, &cells, columns) {
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

fn row(line: usize, cells: &[String], columns: usize) -> Result<Row, String> {
    if cells.len() != columns {
        return Err(format!(
            "{} columns; expected {columns}: {}",
            cells.len(),
            HEADER[..columns].join(",")
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
    let share = if columns > SHORT {
        Some(share(sku, &cells[3], &cells[4])?)
    } else {
        None
    };
    Ok(Row {
        line,
        sku: sku.to_owned(),
        product_code: code.to_owned(),
        handling_days,
        share,
    })
}

fn share(sku: &str, share: &str, safety: &str) -> Result<Share, String> {
    let number = |cell: &str, what: &str, valid: &str| {
        cell.parse::<i64>()
            .map_err(|_| format!("SKU {sku}: {what} {cell:?} is not a number ({valid})"))
    };
    let (share, safety) = (share.trim(), safety.trim());
    let share = if share.is_empty() {
        None
    } else {
        let n = number(share, "share", "1 to 100, or empty for not shared")?;
        Some(SharePercent::new(n).map_err(|e| format!("SKU {sku}: {e}"))?)
    };
    let safety = if safety.is_empty() {
        SafetyStock::default()
    } else {
        let n = number(safety, "safety stock", "0 or more units, or empty for 0")?;
        SafetyStock::new(n).map_err(|e| format!("SKU {sku}: {e}"))?
    };
    Ok(Share { share, safety })
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

    fn line(sku: &str, code: &str, days: Option<i16>, share: Option<i16>, safety: i32) -> Line {
        Line {
            sku: sku.into(),
            product_code: code.into(),
            handling_days: days,
            share_percent: share,
            safety_stock: safety,
        }
    }

    #[test]
    fn round_trip_in_both_encodings() {
        let rows = vec![
            line("SKU-1", "P001", Some(3), Some(70), 2),
            line("SKU,2", "品番\"2", None, None, 0),
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
            let shared = Share {
                share: Some(SharePercent::new(70).unwrap()),
                safety: SafetyStock::new(2).unwrap(),
            };
            assert_eq!(back[0].share, Some(shared));
            assert_eq!(back[1].share.map(|s| s.share), Some(None));
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
            &write(&[line("S", "品番", None, None, 0)], Encoding::ShiftJis),
            Encoding::Utf8,
        );
        assert!(sjis_as_utf8.1[0].message.contains("Shift_JIS"));
    }

    #[test]
    fn share_columns_are_checked_and_optional() {
        let csv = "sku,product_code,handling_days,share_percent,safety_stock\n\
                   A,P1,,70,2\nB,P1,,,\nC,P1,,0,\nD,P1,,50,-1\nE,P1,,x,\nF,P1,\n";
        let (good, errors) = read(csv.as_bytes(), Encoding::Utf8);
        assert_eq!(good.len(), 2, "{errors:?}");
        assert_eq!(
            good[1].share,
            Some(Share {
                share: None,
                safety: SafetyStock::default()
            })
        );
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![4, 5, 6, 7], "{errors:?}");
        assert!(errors[0].message.contains("1 to 100"), "{errors:?}");
        assert!(errors[1].message.contains("0 to 1000000"), "{errors:?}");
        assert!(errors[3].message.contains("expected 5"), "{errors:?}");
        // The three-column file of before: shares left alone.
        let (old, errors) = read("SKU,品番,出荷作業日数\nA,P1,3\n".as_bytes(), Encoding::Utf8);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(old[0].share, None);
    }
}
