//! What a run measured: a table for people on standard output, JSON for scripts.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

/// Latency percentiles, in milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Latency {
    pub samples: u64,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    /// The percentiles of a histogram of nanoseconds; `None` when it is empty.
    pub fn of(h: &Histogram<u64>) -> Option<Latency> {
        if h.is_empty() {
            return None;
        }
        let ms = |ns: u64| ns as f64 / 1e6;
        Some(Latency {
            samples: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1e6,
        })
    }
}

/// One measured figure.
#[derive(Clone, Debug)]
pub struct Figure {
    /// A name for scripts: `deliveries_per_sec`.
    pub key: &'static str,
    /// A name for people: `deliveries/s`.
    pub label: &'static str,
    pub value: f64,
}

/// The result of one run.
#[derive(Clone, Debug)]
pub struct Report {
    pub label: String,
    pub scenario: &'static str,
    pub parameters: Vec<(&'static str, String)>,
    /// False when the run stopped at its timeout or on errors before its counts.
    pub complete: bool,
    pub elapsed_s: f64,
    pub figures: Vec<Figure>,
    /// What `latency` measured, e.g. "delivery" or "registration".
    pub latency_of: &'static str,
    pub latency: Option<Latency>,
    /// The first few distinct errors, with how often each happened.
    pub errors: Vec<(String, u64)>,
    /// The machine's 1-minute load average when the run started.
    pub load_average: Option<f64>,
}

impl Report {
    pub fn figure(&mut self, key: &'static str, label: &'static str, value: f64) {
        self.figures.push(Figure { key, label, value });
    }

    /// The table printed on standard output.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let state = if self.complete {
            "complete"
        } else {
            "INCOMPLETE"
        };
        let _ = writeln!(
            out,
            "natter bench {} against {}: {state} in {:.2} s",
            self.scenario, self.label, self.elapsed_s
        );
        let params: Vec<String> = self
            .parameters
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(out, "  {}", params.join(", "));
        let width = self
            .figures
            .iter()
            .map(|f| f.label.len())
            .max()
            .unwrap_or(0);
        for f in &self.figures {
            let _ = writeln!(
                out,
                "  {:<width$}  {:>14}",
                f.label,
                format_number(f.value),
                width = width
            );
        }
        if let Some(lat) = &self.latency {
            out.push_str(&latency_table(self.latency_of, lat));
        }
        if let Some(load) = self.load_average {
            let _ = writeln!(out, "  load average at the start: {load:.2}");
        }
        for (e, n) in &self.errors {
            let _ = writeln!(out, "  error ({n}x): {e}");
        }
        out
    }

    /// The same as JSON: `results` maps each figure's key to its value.
    pub fn to_json(&self) -> Value {
        let mut params = Map::new();
        for (k, v) in &self.parameters {
            params.insert((*k).to_owned(), Value::String(v.clone()));
        }
        let mut results = Map::new();
        for f in &self.figures {
            results.insert(f.key.to_owned(), json!(f.value));
        }
        let latency = self.latency.as_ref().map(|l| {
            json!({
                "of": self.latency_of,
                "samples": l.samples,
                "p50": l.p50,
                "p99": l.p99,
                "p999": l.p999,
                "max": l.max,
                "mean": l.mean,
            })
        });
        json!({
            "label": self.label,
            "scenario": self.scenario,
            "parameters": params,
            "complete": self.complete,
            "elapsed_s": self.elapsed_s,
            "results": results,
            "latency_ms": latency,
            "load_average_1m": self.load_average,
            "errors": self.errors.iter().map(|(e, n)| json!({"error": e, "count": n})).collect::<Vec<_>>(),
        })
    }
}

/// The percentile rows of the table, in milliseconds: names over values, each column
/// right-aligned.
pub fn latency_table(of: &str, l: &Latency) -> String {
    let cells = [
        ("p50", format_ms(l.p50)),
        ("p99", format_ms(l.p99)),
        ("p99.9", format_ms(l.p999)),
        ("max", format_ms(l.max)),
        ("mean", format_ms(l.mean)),
        ("samples", format_number(l.samples as f64)),
    ];
    let first = format!("{of} latency (ms)");
    let w0 = first.len();
    let mut head = format!("  {first:<w0$}");
    let mut row = format!("  {:<w0$}", "");
    for (name, value) in &cells {
        let w = value.len().max(name.len()).max(6);
        let _ = write!(head, "  {name:>w$}");
        let _ = write!(row, "  {value:>w$}");
    }
    format!("{head}\n{row}\n")
}

/// Milliseconds with three significant digits at least.
pub fn format_ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Whole numbers with thousands separators; others with two decimals.
pub fn format_number(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v.fract() != 0.0 && v.abs() < 1000.0 {
        return format!("{v:.2}");
    }
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        let left = digits.len() - i;
        if i > 0 && left / 3 * 3 == left {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// Counts errors by text, keeping the first `keep` distinct ones.
#[derive(Debug, Default)]
pub struct Errors {
    seen: Vec<(String, u64)>,
    pub total: u64,
}

impl Errors {
    pub fn add(&mut self, e: impl Into<String>) {
        let e = e.into();
        self.total += 1;
        if let Some(entry) = self.seen.iter_mut().find(|(s, _)| *s == e) {
            entry.1 += 1;
        } else if self.seen.len() < 5 {
            self.seen.push((e, 1));
        }
    }

    pub fn into_list(self) -> Vec<(String, u64)> {
        self.seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(format_number(1_134_567.0), "1,134,567");
        assert_eq!(format_number(999.0), "999");
        assert_eq!(format_number(1000.0), "1,000");
        assert_eq!(format_number(2.5), "2.50");
        assert_eq!(format_number(-1234.0), "-1,234");
        assert_eq!(format_number(0.0), "0");
    }

    #[test]
    fn milliseconds_keep_three_digits() {
        assert_eq!(format_ms(0.1234), "0.123");
        assert_eq!(format_ms(1.9), "1.90");
        assert_eq!(format_ms(12.34), "12.3");
        assert_eq!(format_ms(123.4), "123");
    }

    #[test]
    fn the_latency_table_puts_each_value_under_its_percentile() {
        let l = Latency {
            samples: 30950,
            p50: 1.9,
            p99: 7.3,
            p999: 9.1,
            max: 12.0,
            mean: 2.2,
        };
        let t = latency_table("delivery", &l);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2, "{t}");
        for (name, value) in [
            ("p50", "1.90"),
            ("p99", "7.30"),
            ("p99.9", "9.10"),
            ("max", "12.0"),
            ("mean", "2.20"),
            ("samples", "30,950"),
        ] {
            let name_end =
                lines[0].find(&format!(" {name}")).expect("name present") + 1 + name.len();
            let value_end = lines[1].find(value).expect("value present") + value.len();
            assert_eq!(name_end, value_end, "{name} misaligned:\n{t}");
        }
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut h = crate::traffic::new_histogram();
        for ms in 1..=100u64 {
            h.record(ms * 1_000_000).expect("in range");
        }
        let l = Latency::of(&h).expect("samples");
        assert_eq!(l.samples, 100);
        assert!((l.p50 - 50.0).abs() < 0.1, "{l:?}");
        assert!((l.p99 - 99.0).abs() < 0.1, "{l:?}");
        assert!((l.max - 100.0).abs() < 0.1, "{l:?}");
        assert!(Latency::of(&crate::traffic::new_histogram()).is_none());
    }

    #[test]
    fn the_json_has_every_figure_by_key() {
        let mut r = Report {
            label: "natter".into(),
            scenario: "fanout",
            parameters: vec![("members", "100".into())],
            complete: true,
            elapsed_s: 1.5,
            figures: Vec::new(),
            latency_of: "delivery",
            latency: None,
            errors: vec![("boom".into(), 2)],
            load_average: Some(0.5),
        };
        r.figure("deliveries_per_sec", "deliveries/s", 1000.0);
        let j = r.to_json();
        assert_eq!(j["results"]["deliveries_per_sec"], 1000.0);
        assert_eq!(j["parameters"]["members"], "100");
        assert_eq!(j["errors"][0]["count"], 2);
        assert!(r.table().contains("deliveries/s"));
        assert!(r.table().contains("1,000"));
    }

    #[test]
    fn errors_are_counted_by_kind_and_bounded() {
        let mut e = Errors::default();
        for i in 0..10 {
            e.add(format!("e{}", i % 7));
        }
        assert_eq!(e.total, 10);
        let list = e.into_list();
        assert_eq!(list.len(), 5);
        assert_eq!(list[0], ("e0".to_owned(), 2));
    }
}
