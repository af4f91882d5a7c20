//! A command's result in both shapes: JSON for scripts, aligned text for people.

use crate::Output;
use serde_json::Value;

/// What a command produced.
pub struct View {
    pub json: Value,
    pub text: String,
}

/// Prints the result in the requested shape.
pub fn print(out: Output, v: &View) {
    match out {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&v.json).unwrap_or_default()
        ),
        Output::Text => print!("{}", v.text),
    }
}

/// Renders rows as a left-aligned table with a header.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let s: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = w[i]))
            .collect();
        format!("{}\n", s.join("  ").trim_end())
    };
    let mut t = line(header.to_vec());
    for r in rows {
        t.push_str(&line(r.iter().map(|s| s.as_str()).collect()));
    }
    t
}

/// Bytes in binary units with one decimal.
pub fn bytes(n: u64) -> String {
    const U: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

/// Time left, as progress lines show it: `45s`, `12m05s`, `3h20m`; "unknown" for a
/// negative value (no rate yet) and "-" for 0 (nothing left).
pub fn eta(sec: i64) -> String {
    match sec {
        s if s < 0 => "unknown".into(),
        0 => "-".into(),
        s if s < 120 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// A measured rate: `12.5 MiB/s`.
pub fn rate(bytes_per_sec: f64) -> String {
    format!("{}/s", bytes(bytes_per_sec as u64))
}
