//! A drift report as one self-contained HTML file: a summary, a table of
//! every column's test, score, threshold and verdict, and per column a bar
//! chart of the reference and current distributions drawn as inline SVG
//! from the report's histograms (so a report over millions of rows stays a
//! few hundred kilobytes; no scripts, no fonts or styles fetched).

use std::fmt::Write as _;

use crate::report::{ColumnDrift, DriftReport, Histogram};

/// What the report's header says about the two datasets.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportContext {
    pub title: String,
    pub reference_name: String,
    pub reference_rows: u64,
    pub current_name: String,
    pub current_rows: u64,
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value != 0.0 && (value.abs() < 1e-3 || value.abs() >= 1e6) {
        format!("{value:.3e}")
    } else {
        format!("{value:.4}")
    }
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}.sub{color:#666;margin-top:0}
.verdict{font-size:1.15rem;padding:.6rem 1rem;border-radius:6px;margin:1rem 0}
.verdict.drift{background:#fde8e8;color:#9b1c1c}.verdict.ok{background:#e6f4ea;color:#1e6b34}
table{border-collapse:collapse;width:100%;margin:1rem 0}th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #e5e5e5}
th{background:#f6f6f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{padding:.1rem .5rem;border-radius:10px;font-size:.85rem}.badge.yes{background:#f8d0d0;color:#9b1c1c}.badge.no{background:#d8efdf;color:#1e6b34}
section{margin:1.5rem 0;padding-top:.5rem;border-top:1px solid #eee}h2{font-size:1.1rem}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
svg text{font-size:11px;fill:#444}";

const REFERENCE_COLOR: &str = "#8c9aa8";
const CURRENT_COLOR: &str = "#d9534f";

/// The report as an HTML document.
pub fn render(report: &DriftReport, context: &ReportContext) -> String {
    let mut html = String::new();
    let _ = writeln!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body>",
        escape(&context.title)
    );
    let _ = writeln!(
        html,
        "<h1>{}</h1><p class=\"sub\">reference <b>{}</b> ({} rows) &middot; current <b>{}</b> ({} rows)</p>",
        escape(&context.title),
        escape(&context.reference_name),
        context.reference_rows,
        escape(&context.current_name),
        context.current_rows
    );
    let _ = writeln!(
        html,
        "<div class=\"verdict {}\" id=\"verdict\">Dataset drift {}: {} of {} columns drifted ({:.1}%)</div>",
        if report.dataset_drifted { "drift" } else { "ok" },
        if report.dataset_drifted { "DETECTED" } else { "not detected" },
        report.n_drifted,
        report.columns.len(),
        report.drifted_share * 100.0
    );
    html.push_str("<table id=\"summary\"><thead><tr><th>column</th><th>type</th><th>test</th><th>score</th><th>threshold</th><th>drift</th></tr></thead><tbody>\n");
    for (index, column) in report.columns.iter().enumerate() {
        let _ = writeln!(
            html,
            "<tr><td><a href=\"#col-{index}\">{}</a></td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td><span class=\"badge {}\">{}</span></td></tr>",
            escape(&column.column),
            format!("{:?}", column.kind).to_lowercase(),
            column.test.name(),
            number(column.score),
            number(column.threshold),
            if column.drifted { "yes" } else { "no" },
            if column.drifted { "drifted" } else { "stable" },
        );
    }
    html.push_str("</tbody></table>\n");
    let _ = writeln!(
        html,
        "<p class=\"legend\">Distributions as shares of each dataset:<span style=\"background:{REFERENCE_COLOR}\"></span>reference<span style=\"background:{CURRENT_COLOR}\"></span>current</p>"
    );
    for (index, column) in report.columns.iter().enumerate() {
        let _ = writeln!(
            html,
            "<section id=\"col-{index}\"><h2>{} <span class=\"badge {}\">{}</span></h2>{}</section>",
            escape(&column.column),
            if column.drifted { "yes" } else { "no" },
            if column.drifted { "drifted" } else { "stable" },
            chart(column)
        );
    }
    html.push_str("</body></html>\n");
    html
}

/// Grouped bars (reference, current) per bin, heights as shares.
fn chart(column: &ColumnDrift) -> String {
    let histogram: &Histogram = &column.histogram;
    let bins = histogram.reference.len().min(histogram.current.len());
    if bins == 0 {
        return "<p>No values to plot.</p>".to_owned();
    }
    let share = |counts: &[u64]| -> Vec<f64> {
        let total: u64 = counts.iter().sum();
        counts
            .iter()
            .map(|c| {
                if total == 0 {
                    0.0
                } else {
                    *c as f64 / total as f64
                }
            })
            .collect()
    };
    let (reference, current) = (share(&histogram.reference), share(&histogram.current));
    let top = reference
        .iter()
        .chain(&current)
        .fold(0.0f64, |a, b| a.max(*b))
        .max(1e-9);
    let categorical = !histogram.categories.is_empty();
    let (width, plot_height, left, bottom) =
        (1000.0, 180.0, 40.0, if categorical { 70.0 } else { 24.0 });
    let slot = (width - left) / bins as f64;
    let bar = (slot * 0.4).max(0.5);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"dist\" role=\"img\" width=\"100%\" viewBox=\"0 0 {width} {}\" aria-label=\"distribution of {}\">",
        plot_height + bottom + 10.0,
        escape(&column.column)
    );
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{0}\" x2=\"{width}\" y2=\"{0}\" stroke=\"#999\"/><text x=\"0\" y=\"14\">{1:.0}%</text><text x=\"0\" y=\"{0}\">0%</text>",
        plot_height + 5.0,
        top * 100.0
    );
    for bin in 0..bins {
        let x = left + slot * bin as f64 + slot * 0.1;
        for (offset, (values, color)) in [(&reference, REFERENCE_COLOR), (&current, CURRENT_COLOR)]
            .iter()
            .enumerate()
        {
            let height = values[bin] / top * plot_height;
            let _ = write!(
                svg,
                "<rect x=\"{:.2}\" y=\"{:.2}\" width=\"{bar:.2}\" height=\"{height:.2}\" fill=\"{color}\"><title>{}: {:.2}%</title></rect>",
                x + bar * offset as f64,
                plot_height + 5.0 - height,
                if offset == 0 { "reference" } else { "current" },
                values[bin] * 100.0
            );
        }
        if categorical {
            let label = histogram
                .categories
                .get(bin)
                .map(String::as_str)
                .unwrap_or("");
            let short: String = label.chars().take(14).collect();
            let _ = write!(
                svg,
                "<text transform=\"translate({:.2},{:.2}) rotate(40)\">{}</text>",
                x,
                plot_height + 18.0,
                escape(&short)
            );
        }
    }
    if !categorical && histogram.edges.len() >= 2 {
        let first = histogram.edges[0];
        let last = histogram.edges[histogram.edges.len() - 1];
        let middle = (first + last) / 2.0;
        let _ = write!(
            svg,
            "<text x=\"{left}\" y=\"{0}\">{1}</text><text x=\"{2:.2}\" y=\"{0}\" text-anchor=\"middle\">{3}</text><text x=\"{width}\" y=\"{0}\" text-anchor=\"end\">{4}</text>",
            plot_height + 20.0,
            if histogram.clipped { format!("\u{2264} {}", number(first)) } else { number(first) },
            left + (width - left) / 2.0,
            number(middle),
            if histogram.clipped { format!("\u{2265} {}", number(last)) } else { number(last) }
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::{ColumnKind, StatTest};

    fn column(name: &str, drifted: bool, histogram: Histogram) -> ColumnDrift {
        ColumnDrift {
            column: name.to_owned(),
            kind: ColumnKind::Numerical,
            test: StatTest::Ks,
            score: if drifted { 0.001 } else { 0.4 },
            threshold: 0.05,
            drifted,
            approximate: false,
            histogram,
        }
    }

    #[test]
    fn names_are_escaped_and_every_column_gets_a_chart() {
        let histogram = Histogram {
            edges: vec![0.0, 1.0, 2.0],
            categories: Vec::new(),
            reference: vec![5, 5],
            current: vec![1, 9],
            clipped: false,
        };
        let report = DriftReport {
            columns: vec![
                column("<b>x</b>", true, histogram.clone()),
                column("y", false, histogram),
            ],
            n_drifted: 1,
            drifted_share: 0.5,
            dataset_drifted: true,
        };
        let html = render(
            &report,
            &ReportContext {
                title: "t".into(),
                reference_name: "ref".into(),
                reference_rows: 10,
                current_name: "cur".into(),
                current_rows: 10,
            },
        );
        assert!(html.contains("&lt;b&gt;x&lt;/b&gt;") && !html.contains("<b>x</b>"));
        assert_eq!(html.matches("<svg").count(), 2);
        assert!(html.contains("Dataset drift DETECTED: 1 of 2 columns drifted (50.0%)"));
        // current's second bin is 90% of its rows, the tallest bar
        assert!(html.contains("current: 90.00%"));
    }
}
