//! Small SVG charts for the campaign report: bars over time, a funnel, sparklines. Each plotted
//! mark is an element with a `<title>` child holding its value (`2026-11-25: 812 sent`), which
//! a browser shows on hover, a screen reader reads, and a test compares with the ledger.
//!
//! Why a typed builder and not `plotters`: plotters' `SVGBackend` (0.3, svg backend only, no
//! `ttf`) draws its text as `<text>` without needing fonts, but it writes each shape as one
//! self-closed element and has no way to give a shape a child: no `<title>`, so no value a
//! reader can hover or a test can read back, and a post-pass matching shapes to values would be
//! the fragile part. The charts here are a few rectangles and lines; this module is that and
//! only that, escaping every text it writes. It imports nothing of the crate.

use std::fmt::{self, Write};

/// An SVG element the builder writes.
#[derive(Debug, Clone, PartialEq)]
enum Mark {
    /// A bar; `title` is its value, as a reader sees it.
    Rect {
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        class: &'static str,
        title: Option<String>,
    },
    Line {
        x1: f64,
        y1: f64,
        x2: f64,
        y2: f64,
        class: &'static str,
    },
    Text {
        x: f64,
        y: f64,
        anchor: &'static str,
        class: &'static str,
        text: String,
    },
}

/// An SVG picture, written with [`fmt::Display`]; classes are styled by the page's CSS.
#[derive(Debug, Clone, PartialEq)]
pub struct Svg {
    width: f64,
    height: f64,
    /// What the whole chart shows, for screen readers (`aria-label`).
    label: String,
    marks: Vec<Mark>,
}

impl Svg {
    fn new(width: f64, height: f64, label: impl Into<String>) -> Self {
        Svg {
            width,
            height,
            label: label.into(),
            marks: Vec::new(),
        }
    }

    fn rect(&mut self, (x, y, w, h): (f64, f64, f64, f64), class: &'static str, title: String) {
        self.marks.push(Mark::Rect {
            x,
            y,
            w,
            h,
            class,
            title: Some(title),
        });
    }

    fn line(&mut self, (x1, y1): (f64, f64), (x2, y2): (f64, f64), class: &'static str) {
        self.marks.push(Mark::Line {
            x1,
            y1,
            x2,
            y2,
            class,
        });
    }

    fn text(&mut self, (x, y): (f64, f64), anchor: &'static str, class: &'static str, text: &str) {
        self.marks.push(Mark::Text {
            x,
            y,
            anchor,
            class,
            text: text.to_string(),
        });
    }
}

/// Writes `text` for an SVG or HTML text node or attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl fmt::Display for Svg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{label}">"#,
            w = self.width,
            h = self.height,
            label = escape(&self.label)
        )?;
        for m in &self.marks {
            match m {
                Mark::Rect {
                    x,
                    y,
                    w,
                    h,
                    class,
                    title,
                } => {
                    write!(
                        f,
                        r#"<rect class="{class}" x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}">"#
                    )?;
                    if let Some(t) = title {
                        write!(f, "<title>{}</title>", escape(t))?;
                    }
                    f.write_str("</rect>")?;
                }
                Mark::Line {
                    x1,
                    y1,
                    x2,
                    y2,
                    class,
                } => write!(
                    f,
                    r#"<line class="{class}" x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}"/>"#
                )?,
                Mark::Text {
                    x,
                    y,
                    anchor,
                    class,
                    text,
                } => write!(
                    f,
                    r#"<text class="{class}" x="{x:.1}" y="{y:.1}" text-anchor="{anchor}">{}</text>"#,
                    escape(text)
                )?,
            }
        }
        f.write_str("</svg>")
    }
}

/// One series of a bar chart: its name as the titles say it (`sent`), its CSS class, and a
/// value per category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    pub name: String,
    pub class: &'static str,
    pub values: Vec<u64>,
}

/// A round top for an axis at or above `max`: 1, 2 or 5 times a power of ten.
fn nice_top(max: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            if step.saturating_mul(m) >= max {
                return step.saturating_mul(m).max(1);
            }
        }
        step = step.saturating_mul(10);
    }
}

/// Bars over time: for each category (a day, an hour) one bar per series side by side, each
/// with the title `CATEGORY: N NAME`. The y axis starts at zero and is labelled at its top.
pub fn bars(label: &str, categories: &[String], series: &[Series]) -> Svg {
    let (left, right, top, bottom) = (44.0, 8.0, 12.0, 34.0);
    let slot_min = 8.0 * series.len().max(1) as f64 + 6.0;
    let width = (left + right + slot_min * categories.len() as f64).max(360.0);
    let height = 190.0;
    let mut svg = Svg::new(width, height, label);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .max()
        .unwrap_or(0);
    let axis_top = nice_top(max);
    let y_of = |v: u64| top + plot_h - plot_h * v as f64 / axis_top as f64;
    svg.line((left, top), (left, top + plot_h), "axis");
    svg.line((left, top + plot_h), (width - right, top + plot_h), "axis");
    for v in [axis_top / 2, axis_top] {
        svg.line((left, y_of(v)), (width - right, y_of(v)), "grid");
        svg.text((left - 4.0, y_of(v) + 4.0), "end", "tick", &v.to_string());
    }
    svg.text((left - 4.0, top + plot_h + 4.0), "end", "tick", "0");
    let slot = plot_w / categories.len().max(1) as f64;
    let bar_w = ((slot - 4.0) / series.len().max(1) as f64).max(1.0);
    // Label at most ~12 categories, evenly, so that they never overlap.
    let every = categories.len().div_ceil(12).max(1);
    for (i, category) in categories.iter().enumerate() {
        let x0 = left + slot * i as f64 + 2.0;
        for (k, s) in series.iter().enumerate() {
            let v = s.values.get(i).copied().unwrap_or(0);
            let y = y_of(v);
            svg.rect(
                (x0 + bar_w * k as f64, y, bar_w, top + plot_h - y),
                s.class,
                format!("{category}: {v} {}", s.name),
            );
        }
        if i % every == 0 {
            svg.text(
                (x0 + (slot - 4.0) / 2.0, height - bottom + 16.0),
                "middle",
                "tick",
                category,
            );
        }
    }
    svg
}

/// One stage of a funnel: its name, count, and the share the title shows (of the first stage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub name: String,
    pub count: u64,
}

/// A share as the report writes it: `80.0%`, or `–` of nothing.
pub fn share(n: u64, of: u64) -> String {
    if of == 0 {
        "–".to_string()
    } else {
        format!("{:.1}%", n as f64 * 100.0 / of as f64)
    }
}

/// A horizontal funnel: a bar per stage, its length its count against the first stage's, with
/// the title `CHANNEL NAME: N (SHARE of the first)`.
pub fn funnel(label: &str, channel: &str, stages: &[Stage]) -> Svg {
    let (left, right, row) = (110.0, 120.0, 24.0);
    let width = 560.0;
    let height = row * stages.len() as f64 + 8.0;
    let mut svg = Svg::new(width, height, label);
    let first = stages.first().map_or(0, |s| s.count);
    let scale = stages.iter().map(|s| s.count).max().unwrap_or(0).max(1) as f64;
    let plot_w = width - left - right;
    for (i, s) in stages.iter().enumerate() {
        let y = 4.0 + row * i as f64;
        let w = plot_w * s.count as f64 / scale;
        let share = share(s.count, first);
        svg.text((left - 6.0, y + 15.0), "end", "label", &s.name);
        svg.rect(
            (left, y + 2.0, w, row - 6.0),
            "stage",
            format!("{channel} {}: {} ({share})", s.name, s.count),
        );
        svg.text(
            (left + w + 6.0, y + 15.0),
            "start",
            "value",
            &format!("{} · {share}", s.count),
        );
    }
    svg
}

/// A sparkline: one thin bar per value, no axes, titles `CATEGORY: N NAME`.
pub fn sparkline(label: &str, categories: &[String], name: &str, values: &[u64]) -> Svg {
    let (width, height) = (120.0, 24.0);
    let mut svg = Svg::new(width, height, label);
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let slot = width / values.len().max(1) as f64;
    for (i, v) in values.iter().enumerate() {
        let h = (height - 2.0) * *v as f64 / max;
        let category = categories.get(i).map_or("", String::as_str);
        svg.rect(
            (slot * i as f64, height - h, (slot - 1.0).max(0.5), h),
            "spark",
            format!("{category}: {v} {name}"),
        );
    }
    svg
}

/// Writes `svg` into `out` (for pages built with `write!`).
pub fn write_into(out: &mut String, svg: &Svg) {
    let _ = write!(out, "{svg}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bar_has_its_value_as_title_and_its_height_in_proportion() {
        let days = vec!["2026-11-25".to_string(), "2026-11-26".to_string()];
        let svg = bars(
            "Sent per day",
            &days,
            &[Series {
                name: "sent".into(),
                class: "sent",
                values: vec![812, 406],
            }],
        )
        .to_string();
        assert!(svg.contains("<title>2026-11-25: 812 sent</title>"), "{svg}");
        assert!(svg.contains("<title>2026-11-26: 406 sent</title>"), "{svg}");
        // Axis top 1000 over 144 px: 812 is 116.9 px tall, 406 is 58.5.
        assert!(svg.contains(r#"height="116.9"><title>2026-11-25"#), "{svg}");
        assert!(svg.contains(r#"height="58.5"><title>2026-11-26"#), "{svg}");
    }

    #[test]
    fn text_is_escaped_and_axes_are_round() {
        let svg = funnel(
            "<x>",
            "email",
            &[
                Stage {
                    name: "contacts & co".into(),
                    count: 4,
                },
                Stage {
                    name: "sent".into(),
                    count: 3,
                },
            ],
        )
        .to_string();
        assert!(svg.contains("aria-label=\"&lt;x&gt;\""));
        assert!(svg.contains("<title>email contacts &amp; co: 4 (100.0%)</title>"));
        assert!(svg.contains("<title>email sent: 3 (75.0%)</title>"));
        assert_eq!(
            [0, 1, 7, 10, 11, 812, 5000].map(nice_top),
            [1, 1, 10, 10, 20, 1000, 5000]
        );
    }
}
