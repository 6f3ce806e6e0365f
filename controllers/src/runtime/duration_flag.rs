//! Duration flags written the way kube-controller-manager takes them (Go's
//! `time.ParseDuration`: `500ms`, `1s`, `1m30s`, `1.5h`), plus a bare number of seconds.
//!
//! Hand-written on purpose: the maintained Rust duration crates (`humantime`, ...) accept a
//! different syntax (no fractions such as `1.5s`, extra units such as `days`), and an operator
//! copying flags from a kube-controller-manager manifest must get the same meaning.

use std::time::Duration;

/// Go's units and their length in nanoseconds, longest spelling first where one is a prefix
/// of another (`ms` before `m`).
const UNITS: &[(&str, f64)] = &[
    ("ns", 1.0),
    ("us", 1e3),
    ("µs", 1e3),
    ("μs", 1e3),
    ("ms", 1e6),
    ("s", 1e9),
    ("m", 60e9),
    ("h", 3600e9),
];

/// Parses a non-negative duration: Go syntax (`250ms`, `1m30s`, `1.5h`, `0`) or a plain number
/// of seconds (`0.25`). The error says what is wrong, for clap to print next to the flag.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = s.parse::<f64>() {
        return seconds(secs, text);
    }
    if s.starts_with('-') {
        return Err(format!("{text:?} is negative"));
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    let mut nanos = 0.0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len]
            .parse()
            .map_err(|_| format!("invalid duration {text:?}: expected a number"))?;
        rest = &rest[number_len..];
        let (unit, scale) = UNITS
            .iter()
            .filter(|(u, _)| rest.starts_with(u))
            .max_by_key(|(u, _)| u.len())
            .ok_or_else(|| {
                format!(
                    "invalid duration {text:?}: missing or unknown unit (use ns, us, ms, s, m, h)"
                )
            })?;
        rest = &rest[unit.len()..];
        nanos += number * scale;
    }
    seconds(nanos / 1e9, text)
}

fn seconds(secs: f64, text: &str) -> Result<Duration, String> {
    if secs.is_finite() && secs >= 0.0 {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(format!("{text:?} is not a duration >= 0"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_and_plain_seconds_parse() {
        for (text, want) in [
            ("0", Duration::ZERO),
            ("0.25", Duration::from_millis(250)),
            ("15", Duration::from_secs(15)),
            ("500ms", Duration::from_millis(500)),
            ("1s", Duration::from_secs(1)),
            ("1m30s", Duration::from_secs(90)),
            ("1.5h", Duration::from_secs(5400)),
            ("2h45m", Duration::from_secs(9900)),
            ("10us", Duration::from_micros(10)),
            ("10µs", Duration::from_micros(10)),
            ("7ns", Duration::from_nanos(7)),
            ("+2s", Duration::from_secs(2)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn malformed_or_negative_durations_are_errors_naming_the_input() {
        for text in ["", "s", "1x", "1.2.3s", "-1s", "-5", "1s5", "NaN", "inf"] {
            let err = parse_duration(text).expect_err(text);
            assert!(err.contains(text) || text.is_empty(), "{text}: {err}");
        }
    }
}
