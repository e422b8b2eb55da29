//! How the cost of a peer grows with the number of peers, from `callprobe
//! run` JSON reports: a Markdown table on stdout and an SVG plot.
//!
//!     cargo run --release --example scale_plot -- OUT.svg [LABEL=]report.json...
//!
//! Each report's scenarios are points: peers, steady CPU (cores and % of a
//! core per peer), peak RSS per peer, video fps p50, frames late, event-loop
//! lag p99, time until every call connected, and the run's status. Reports
//! with the same label (`before=a.json after=b.json`) are one series, so two
//! builds can be drawn side by side.
#![allow(clippy::print_stdout)] // the table on stdout is what this tool is for

use std::path::Path;

use plotters::prelude::*;
use serde_json::Value;

/// One scenario of one report.
struct Point {
    series: String,
    name: String,
    peers: f64,
    status: String,
    cpu_cores: Option<f64>,
    cpu_per_peer_pct: Option<f64>,
    rss_per_peer_mb: Option<f64>,
    fps_p50: Option<f64>,
    late_pct: Option<f64>,
    lag_p99_ms: Option<f64>,
    all_connected_ms: Option<f64>,
    frames_lost_pct: Option<f64>,
}

fn metric(scenario: &Value, name: &str, stat: &str) -> Option<f64> {
    scenario["metrics"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)?[stat]
        .as_f64()
}

fn sum_samples(scenario: &Value, name: &str) -> f64 {
    scenario["metrics"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["name"] == name))
        .and_then(|m| m["samples"].as_array())
        .map_or(0.0, |s| s.iter().filter_map(Value::as_f64).sum())
}

fn points(series: &str, path: &Path) -> anyhow::Result<Vec<Point>> {
    let report: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let scenarios = report["scenarios"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("{}: no scenarios", path.display()))?;
    Ok(scenarios
        .iter()
        .map(|s| {
            let harness = &s["harness"];
            let verified = sum_samples(s, "video.frames_verified");
            let lost = sum_samples(s, "video.frames_lost");
            Point {
                series: series.to_owned(),
                name: s["name"].as_str().unwrap_or("?").to_owned(),
                peers: s["peers"].as_array().map_or(0, Vec::len) as f64,
                status: s["status"].as_str().unwrap_or("?").to_owned(),
                cpu_cores: harness["cpu"]["steady_cores"].as_f64(),
                cpu_per_peer_pct: harness["cpu"]["per_peer_pct"].as_f64(),
                rss_per_peer_mb: harness["memory"]["per_peer_mb"].as_f64(),
                fps_p50: metric(s, "video.fps", "p50"),
                late_pct: harness["pacing"]["late_ratio"].as_f64().map(|r| r * 100.0),
                lag_p99_ms: harness["lag_p99_ms"].as_f64(),
                all_connected_ms: harness["ramp"]["all_connected_ms"].as_f64(),
                frames_lost_pct: (verified + lost > 0.0).then(|| lost * 100.0 / (verified + lost)),
            }
        })
        .collect())
}

fn cell(value: Option<f64>, decimals: usize) -> String {
    value.map_or("–".to_owned(), |v| format!("{v:.decimals$}"))
}

/// A panel: its title, its unit, and what it draws of a point.
type Panel = (&'static str, &'static str, fn(&Point) -> Option<f64>);

/// Per series, its colour; at most a handful are ever drawn.
const COLOURS: [RGBColor; 4] = [BLUE, RED, GREEN, MAGENTA];

fn plot(out: &Path, points: &[Point]) -> anyhow::Result<()> {
    let root = SVGBackend::new(out, (1260, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, 3));
    let max_peers = points.iter().map(|p| p.peers).fold(1.0, f64::max) * 1.05;
    let mut labels: Vec<&str> = points.iter().map(|p| p.series.as_str()).collect();
    labels.dedup();
    let panel_specs: [Panel; 3] = [
        ("CPU per peer", "% of one core", |p| p.cpu_per_peer_pct),
        ("Memory per peer", "MB (peak RSS over baseline)", |p| {
            p.rss_per_peer_mb
        }),
        ("Setup: every call connected", "ms from the start", |p| {
            p.all_connected_ms
        }),
    ];
    for (area, (title, unit, get)) in panels.iter().zip(panel_specs) {
        let top = points.iter().filter_map(get).fold(0.0, f64::max) * 1.2 + 1e-3;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..max_peers, 0.0..top)?;
        chart.configure_mesh().x_desc("peers").y_desc(unit).draw()?;
        for (label, colour) in labels.iter().zip(COLOURS.iter().cycle()) {
            let data: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.series == *label)
                .filter_map(|p| get(p).map(|v| (p.peers, v)))
                .collect();
            let line = chart.draw_series(LineSeries::new(data.clone(), colour.stroke_width(2)))?;
            if !label.is_empty() {
                line.label(*label).legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(2))
                });
            }
            chart.draw_series(data.iter().map(|&xy| Circle::new(xy, 4, colour.filled())))?;
        }
        if labels.iter().any(|l| !l.is_empty()) {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperLeft)
                .draw()?;
        }
    }
    root.present()?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: scale_plot OUT.svg [LABEL=]report.json..."))?;
    let mut all = Vec::new();
    for arg in args {
        let (series, path) = arg.split_once('=').unwrap_or(("", &arg));
        all.extend(points(series, Path::new(path))?);
    }
    // Series in the order given, each by peers.
    let order: Vec<String> = all
        .iter()
        .map(|p| p.series.clone())
        .fold(Vec::new(), |mut o, s| {
            if !o.contains(&s) {
                o.push(s);
            }
            o
        });
    let rank = |p: &Point| order.iter().position(|s| *s == p.series);
    all.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.peers.total_cmp(&b.peers)));
    println!(
        "| series | scenario | peers | status | CPU (cores) | CPU per peer (% core) | RSS per peer (MB) | fps p50 | frames lost | frames late | lag p99 (ms) | all connected (ms) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for p in &all {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {}% | {}% | {} | {} |",
            p.series,
            p.name,
            p.peers,
            p.status,
            cell(p.cpu_cores, 2),
            cell(p.cpu_per_peer_pct, 3),
            cell(p.rss_per_peer_mb, 2),
            cell(p.fps_p50, 1),
            cell(p.frames_lost_pct, 2),
            cell(p.late_pct, 2),
            cell(p.lag_p99_ms, 1),
            cell(p.all_connected_ms, 0),
        );
    }
    plot(Path::new(&out), &all)?;
    println!("\nwrote {out}");
    Ok(())
}
