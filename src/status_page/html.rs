//! HTML building blocks: escaping and usage bars.

use std::fmt::Write as _;

/// `text` escaped for HTML element content and quoted attribute values.
pub fn esc(text: &str) -> String {
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

/// `used / total` as a CSS width percentage, clamped to 0..=100, one decimal (0 when the
/// total is 0 or negative).
pub fn percent(used: i64, total: i64) -> String {
    if total <= 0 || used <= 0 {
        return "0".into();
    }
    let p = (used as f64 / total as f64 * 100.0).min(100.0);
    let text = format!("{p:.1}");
    text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
}

/// A labelled bar: `used` of `total`, with the numbers in `data-used`/`data-total` for tests
/// and scripts, and `class` (`full` at 100%).
pub fn bar(out: &mut String, label: &str, used: i64, total: i64) {
    let width = percent(used, total);
    // A value in use stays visible on a huge range (4 of 1,048,318 rounds to 0%).
    let min_width = if used > 0 { ";min-width:2px" } else { "" };
    let full = if total > 0 && used >= total {
        " full"
    } else {
        ""
    };
    let _ = write!(
        out,
        "<div class=\"bar-row\" data-label=\"{label}\" data-used=\"{used}\" data-total=\"{total}\">\
         <span class=\"bar-label\">{label}</span>\
         <span class=\"bar{full}\"><span class=\"fill\" style=\"width:{width}%{min_width}\"></span></span>\
         <span class=\"bar-count\">{used} / {total} ({width}%)</span></div>",
        label = esc(label),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_markup_character() {
        assert_eq!(
            esc(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(esc("plain-name.1"), "plain-name.1");
    }

    #[test]
    fn percentages_are_clamped_and_safe_for_empty_ranges() {
        assert_eq!(percent(0, 10), "0");
        assert_eq!(percent(1, 4), "25");
        assert_eq!(percent(1, 3), "33.3");
        assert_eq!(percent(5, 4), "100");
        assert_eq!(percent(3, 0), "0");
        assert_eq!(percent(-1, 4), "0");
    }

    #[test]
    fn a_bar_carries_its_numbers_and_width() {
        let mut out = String::new();
        bar(&mut out, "static <band>", 2, 8);
        assert!(out.contains("data-used=\"2\" data-total=\"8\""), "{out}");
        assert!(out.contains("style=\"width:25%;min-width:2px\""), "{out}");
        assert!(out.contains("static &lt;band&gt;"), "{out}");
        assert!(!out.contains(" full"), "{out}");
        let mut out = String::new();
        bar(&mut out, "x", 8, 8);
        assert!(out.contains("class=\"bar full\""), "{out}");
    }
}
