//! What a soak's harness held over time, from a `callprobe run` JSON
//! report: resident memory, open file descriptors and live tasks, second by
//! second, each with the growth line the run fitted to its steady part.
//!
//!     cargo run --release --example soak_plot -- OUT.svg report.json
//!
//! Prints the fitted growth as a Markdown table; the SVG has one panel per
//! quantity.
#![allow(clippy::print_stdout)] // the table on stdout is what this tool is for

use plotters::prelude::*;
use serde_json::Value;

/// One panel: the samples, and the slope the run fitted to them.
struct Panel {
    title: &'static str,
    points: Vec<(f64, f64)>,
    per_min: Option<f64>,
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(out), Some(input)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: soak_plot OUT.svg report.json");
    };
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&input)?)?;
    let scenario = &report["scenarios"][0];
    let harness = &scenario["harness"];
    let growth = &harness["growth"];
    let series = harness["series"].as_array().cloned().unwrap_or_default();
    let column = |key: &str| -> Vec<(f64, f64)> {
        series
            .iter()
            .filter_map(|p| Some((p["t_s"].as_f64()?, p[key].as_f64()?)))
            .collect()
    };
    // Memory beyond the run's own record is the leak figure; a report
    // without the record in its series shows memory in all.
    let record = column("record_mb");
    let memory = if record.is_empty() {
        Panel {
            title: "resident memory in all (MB)",
            points: column("rss_mb"),
            per_min: growth["rss_total_mb_per_min"].as_f64(),
        }
    } else {
        Panel {
            title: "resident memory beyond the run's record (MB)",
            points: column("rss_mb")
                .into_iter()
                .zip(record)
                .map(|((t, rss), (_, kept))| (t, rss - kept))
                .collect(),
            per_min: growth["rss_mb_per_min"].as_f64(),
        }
    };
    let panels = [
        memory,
        Panel {
            title: "open file descriptors",
            points: column("open_fds"),
            per_min: growth["fds_per_min"].as_f64(),
        },
        Panel {
            title: "live tasks",
            points: column("tasks"),
            per_min: growth["tasks_per_min"].as_f64(),
        },
    ];
    let (from_s, to_s) = (
        growth["from_s"].as_f64().unwrap_or(0.0),
        growth["to_s"].as_f64().unwrap_or(0.0),
    );
    println!(
        "| {} | status {} | window {from_s:.0}-{to_s:.0} s |",
        scenario["name"].as_str().unwrap_or("?"),
        scenario["status"].as_str().unwrap_or("?")
    );
    println!("|---|---|---|");
    let root = SVGBackend::new(&out, (900, 780)).into_drawing_area();
    root.fill(&WHITE)?;
    let end = series.last().and_then(|p| p["t_s"].as_f64()).unwrap_or(1.0);
    for (area, panel) in root.split_evenly((3, 1)).iter().zip(&panels) {
        let window: Vec<&(f64, f64)> = panel
            .points
            .iter()
            .filter(|(t, _)| (from_s..=to_s).contains(t))
            .collect();
        let n = window.len().max(1) as f64;
        let mt = window.iter().map(|p| p.0).sum::<f64>() / n;
        let mv = window.iter().map(|p| p.1).sum::<f64>() / n;
        let top = panel.points.iter().map(|p| p.1).fold(0.0, f64::max) * 1.15 + 1.0;
        let mut chart = ChartBuilder::on(area)
            .caption(panel.title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..end, 0.0..top)?;
        chart.configure_mesh().x_desc("s").draw()?;
        chart.draw_series(LineSeries::new(panel.points.clone(), BLUE.stroke_width(1)))?;
        if let Some(per_min) = panel.per_min {
            // The fitted line passes through the window's mean point.
            let at = |t: f64| mv + per_min * (t - mt) / 60.0;
            chart
                .draw_series(LineSeries::new(
                    [(from_s, at(from_s)), (to_s, at(to_s))],
                    RED.stroke_width(2),
                ))?
                .label(format!("{per_min:+.2} per minute"))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RED.stroke_width(2)));
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .draw()?;
        }
        println!(
            "| {} | {} | {} |",
            panel.title,
            panel
                .per_min
                .map_or("–".to_owned(), |v| format!("{v:+.2} per minute")),
            window
                .first()
                .zip(window.last())
                .map_or("–".to_owned(), |(a, b)| format!(
                    "{:.0} to {:.0}",
                    a.1, b.1
                )),
        );
    }
    root.present()?;
    println!("\nwrote {out}");
    Ok(())
}
