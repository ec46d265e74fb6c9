//! Usage as an inline SVG, drawn on the server: stacked bars per time bucket (allowed, refused,
//! limited, failed), a title and a description for screen readers, and the numbers in a table
//! beside it. No script.

use crate::oauth::page::escape;
use mcpgate_core::audit::{Bucket, Counts};
use mcpgate_core::time::format_rfc3339;

const W: f64 = 720.0;
const H: f64 = 180.0;
const PAD_LEFT: f64 = 44.0;
const PAD_BOTTOM: f64 = 22.0;

/// Each decision's series: its name, colour class and count.
const SERIES: [(&str, &str); 4] = [("allowed", "a"), ("refused", "d"), ("limited", "l"), ("failed", "e")];

fn values(c: &Counts) -> [u64; 4] {
    [c.allow, c.deny, c.limited, c.error]
}

/// The chart of `buckets`, titled `title`.
pub fn bars(title: &str, buckets: &[Bucket]) -> String {
    let max = buckets.iter().map(|b| b.counts.total()).max().unwrap_or(0).max(1);
    let n = buckets.len().max(1) as f64;
    let slot = (W - PAD_LEFT) / n;
    let bar = (slot * 0.8).max(1.0);
    let plot = H - PAD_BOTTOM;
    let total: u64 = buckets.iter().map(|b| b.counts.total()).sum();
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"ct-{id} cd-{id}\" \
         xmlns=\"http://www.w3.org/2000/svg\"><title id=\"ct-{id}\">{t}</title>\
         <desc id=\"cd-{id}\">{total} requests in {n} buckets; the tallest bucket holds {max}.</desc>",
        id = escape(&title.replace(' ', "-")),
        t = escape(title),
        n = buckets.len(),
    );
    // Axis and the top value.
    svg.push_str(&format!(
        "<line class=\"axis\" x1=\"{PAD_LEFT}\" y1=\"{plot}\" x2=\"{W}\" y2=\"{plot}\"/>\
         <text class=\"tick\" x=\"{x}\" y=\"12\" text-anchor=\"end\">{max}</text>\
         <text class=\"tick\" x=\"{x}\" y=\"{plot}\" text-anchor=\"end\">0</text>",
        x = PAD_LEFT - 6.0
    ));
    for (i, b) in buckets.iter().enumerate() {
        let x = PAD_LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let mut y = plot;
        for ((name, class), v) in SERIES.iter().zip(values(&b.counts)) {
            if v == 0 {
                continue;
            }
            let h = (v as f64 / max as f64) * (plot - 16.0);
            y -= h;
            svg.push_str(&format!(
                "<rect class=\"{class}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\">\
                 <title>{}: {v} {name}</title></rect>",
                escape(&format_rfc3339(b.start_ms / 1000))
            ));
        }
    }
    // First and last bucket times under the axis.
    if let (Some(first), Some(last)) = (buckets.first(), buckets.last()) {
        svg.push_str(&format!(
            "<text class=\"tick\" x=\"{PAD_LEFT}\" y=\"{H}\">{}</text>\
             <text class=\"tick\" x=\"{W}\" y=\"{H}\" text-anchor=\"end\">{}</text>",
            escape(&short_time(first.start_ms)),
            escape(&short_time(last.start_ms))
        ));
    }
    svg.push_str("</svg>");
    svg
}

fn short_time(ms: i64) -> String {
    let t = format_rfc3339(ms / 1000);
    // `2026-12-04T10:30:00Z` → `12-04 10:30`
    match (t.get(5..10), t.get(11..16)) {
        (Some(d), Some(h)) => format!("{d} {h} UTC"),
        _ => t,
    }
}

/// The legend, as text.
pub fn legend() -> String {
    let mut s = String::from("<p class=\"legend\">");
    for (name, class) in SERIES {
        s.push_str(&format!("<span class=\"sw {class}\"></span>{name} "));
    }
    s.push_str("</p>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_tallest_bucket_and_escape_titles() {
        let b = |start_ms, allow, deny| Bucket {
            start_ms,
            counts: Counts {
                allow,
                deny,
                limited: 0,
                error: 0,
            },
        };
        let svg = bars("Traffic <24h>", &[b(0, 4, 0), b(60_000, 2, 2), b(120_000, 0, 0)]);
        assert!(svg.contains("<title id=\"ct-Traffic-&lt;24h&gt;\">Traffic &lt;24h&gt;</title>"));
        assert!(svg.contains("8 requests in 3 buckets; the tallest bucket holds 4."));
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(!svg.contains("<script"));
        assert!(bars("empty", &[]).contains("0 requests in 0 buckets"));
    }
}
