//! Server-side SVG charts: grouped bars and lines over days, with axes, grid, legend and a
//! tooltip (`<title>`) per point. No JavaScript.

use maud::{Markup, html};

/// One data series.
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub values: Vec<f64>,
}

impl Series {
    /// A series named `name`, drawn in `color`.
    pub fn new(name: impl Into<String>, color: &'static str, values: Vec<f64>) -> Self {
        Series {
            name: name.into(),
            color,
            values,
        }
    }

    /// Series coloured from [`PALETTE`] in order (wrapping after the last colour).
    pub fn in_palette(named: impl IntoIterator<Item = (String, Vec<f64>)>) -> Vec<Series> {
        named
            .into_iter()
            .enumerate()
            .map(|(k, (name, values))| Series::new(name, PALETTE[k % PALETTE.len()], values))
            .collect()
    }
}

/// Colours that stay apart for the usual colour-vision deficiencies.
pub const PALETTE: [&str; 8] = [
    "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
];

const W: f64 = 640.0;
const H: f64 = 280.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 14.0;
const LEGEND_TOP: f64 = 26.0;
const LEGEND_ROW: f64 = 15.0;
const BOTTOM: f64 = 34.0;

/// A round upper bound for the y axis whose four grid steps are whole numbers for counts
/// (4, 8, 12, 16, 20, 40, 80, 120, 160, ...).
pub fn nice_max(max: f64) -> f64 {
    if max <= 4.0 || !max.is_finite() {
        return 4.0;
    }
    let mag = 10f64.powf(max.log10().floor());
    for m in [1.2, 1.6, 2.0, 4.0, 8.0, 12.0] {
        if m * mag >= max {
            return m * mag;
        }
    }
    12.0 * mag
}

fn fmt_num(v: f64, percent: bool) -> String {
    if percent {
        format!("{v:.0}%")
    } else if v.fract() == 0.0 || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// One decimal, as the coordinates are written.
fn f1(v: f64) -> String {
    format!("{v:.1}")
}

/// The chart's frame: title, legend, grid, axis labels. Returns the top of the plot and the
/// markup; the caller adds the plot inside the same `<svg>`.
fn frame(
    title: &str,
    labels: &[String],
    series: &[Series],
    ymax: f64,
    percent: bool,
) -> (f64, Markup) {
    // legend, wrapped onto more rows when it does not fit
    let (mut x, mut y) = (LEFT, LEGEND_TOP);
    let mut legend = Vec::with_capacity(series.len());
    for s in series {
        let w = 24.0
            + s.name
                .chars()
                .map(|c| if c.is_ascii() { 6.3 } else { 11.0 })
                .sum::<f64>();
        if x > LEFT && x + w > W - RIGHT {
            x = LEFT;
            y += LEGEND_ROW;
        }
        legend.push((x, y, s));
        x += w;
    }
    let top = y + 22.0;
    let plot_h = H - top - BOTTOM;
    let n = labels.len().max(1);
    let slot = (W - LEFT - RIGHT) / n as f64;
    let every = n.div_ceil(10);
    let markup = html! {
        text x=(LEFT) y="16" font-size="14" font-weight="600" fill="#1d2733" { (title) }
        @for (x, y, s) in &legend {
            rect x=(f1(*x)) y=(y) width="10" height="10" fill=(s.color) {}
            text x=(f1(x + 14.0)) y=(y + 9.0) fill="#33404d" { (s.name) }
        }
        @for i in 0..=4 {
            @let v = ymax * f64::from(i) / 4.0;
            @let y = top + plot_h - plot_h * f64::from(i) / 4.0;
            line x1=(LEFT) x2=(W - RIGHT) y1=(y) y2=(y) stroke="#e1e6eb" {}
            text x=(LEFT - 6.0) y=(y + 4.0) text-anchor="end" fill="#55616d" { (fmt_num(v, percent)) }
        }
        @for (i, l) in labels.iter().enumerate() {
            @if i % every == 0 || i == n - 1 {
                text x=(LEFT + slot * (i as f64 + 0.5)) y=(H - BOTTOM + 16.0) text-anchor="middle" fill="#55616d" { (l) }
            }
        }
        line x1=(LEFT) x2=(W - RIGHT) y1=(top + plot_h) y2=(top + plot_h) stroke="#8a96a3" {}
    };
    (top, markup)
}

/// "No data" across the plot when every value is zero (`None`: there is something to draw).
fn empty(top: f64, series: &[Series], no_data: &str) -> Option<Markup> {
    let none = series.iter().all(|s| s.values.iter().all(|v| *v == 0.0));
    none.then(|| {
        html! {
            text x=(LEFT + (W - LEFT - RIGHT) / 2.0) y=(top + (H - top - BOTTOM) / 2.0) text-anchor="middle" fill="#8a96a3" font-size="13" { (no_data) }
        }
    })
}

/// The `<svg>` around a chart.
fn svg(id: &str, title: &str, inner: Markup) -> Markup {
    html! {
        svg id=(id) viewBox={ "0 0 " (W) " " (H) } role="img" aria-label=(title) xmlns="http://www.w3.org/2000/svg" font-family="system-ui,sans-serif" font-size="11" {
            (inner)
        }
    }
}

/// Grouped bars, one group per label. `percent` fixes the axis at 0-100 %.
pub fn bars(
    id: &str,
    title: &str,
    labels: &[String],
    series: &[Series],
    percent: bool,
    no_data: &str,
) -> Markup {
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0, f64::max);
    let ymax = if percent { 100.0 } else { nice_max(max) };
    let (top, frame) = frame(title, labels, series, ymax, percent);
    let plot_h = H - top - BOTTOM;
    let slot = (W - LEFT - RIGHT) / labels.len().max(1) as f64;
    let bw = (slot * 0.8 / series.len().max(1) as f64).max(1.0);
    let plot = match empty(top, series, no_data) {
        Some(m) => m,
        None => html! {
            @for (i, label) in labels.iter().enumerate() {
                @for (k, s) in series.iter().enumerate() {
                    @let v = s.values.get(i).copied().unwrap_or(0.0);
                    @let h = plot_h * (v / ymax).clamp(0.0, 1.0);
                    @let x = LEFT + slot * i as f64 + slot * 0.1 + bw * k as f64;
                    rect x=(f1(x)) y=(f1(top + plot_h - h)) width=(f1((bw - 1.0).max(1.0))) height=(f1(h)) fill=(s.color) {
                        title { (label) " " (s.name) ": " (fmt_num(v, percent)) }
                    }
                }
            }
        },
    };
    svg(id, title, html! { (frame) (plot) })
}

/// Lines with a dot per point.
pub fn lines(id: &str, title: &str, labels: &[String], series: &[Series], no_data: &str) -> Markup {
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0, f64::max);
    let ymax = nice_max(max);
    let (top, frame) = frame(title, labels, series, ymax, false);
    let plot_h = H - top - BOTTOM;
    let slot = (W - LEFT - RIGHT) / labels.len().max(1) as f64;
    let points = |s: &Series| -> Vec<(f64, f64, f64)> {
        s.values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                (
                    LEFT + slot * (i as f64 + 0.5),
                    top + plot_h - plot_h * (v / ymax).clamp(0.0, 1.0),
                    *v,
                )
            })
            .collect()
    };
    let plot = match empty(top, series, no_data) {
        Some(m) => m,
        None => html! {
            @for s in series {
                @let pts = points(s);
                @let path = pts.iter().map(|(x, y, _)| format!("{x:.1},{y:.1}")).collect::<Vec<_>>().join(" ");
                polyline points=(path) fill="none" stroke=(s.color) stroke-width="2" {}
                @for ((x, y, v), l) in pts.iter().zip(labels) {
                    circle cx=(f1(*x)) cy=(f1(*y)) r="3" fill=(s.color) {
                        title { (l) " " (s.name) ": " (fmt_num(*v, false)) }
                    }
                }
            }
        },
    };
    svg(id, title, html! { (frame) (plot) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_bounds() {
        assert_eq!(nice_max(0.0), 4.0);
        assert_eq!(nice_max(1.0), 4.0);
        assert_eq!(nice_max(7.0), 8.0);
        assert_eq!(nice_max(9.0), 12.0);
        assert_eq!(nice_max(13.0), 16.0);
        assert_eq!(nice_max(230.0), 400.0);
        assert_eq!(nice_max(1000.0), 1200.0);
    }

    #[test]
    fn charts_escape_names() {
        let s = [Series {
            name: "<x>".into(),
            color: PALETTE[0],
            values: vec![1.0, 2.0],
        }];
        let labels = ["a".to_owned(), "b".to_owned()];
        let svg = bars("c", "T&T", &labels, &s, false, "none").into_string();
        assert!(svg.contains("&lt;x&gt;") && svg.contains("T&amp;T"));
        assert!(!svg.contains("<x>"));
        assert_eq!(svg.matches("<rect").count(), 3); // legend + two bars
        let svg = lines("l", "T", &labels, &s, "none").into_string();
        assert!(svg.contains("<polyline"));
    }
}
