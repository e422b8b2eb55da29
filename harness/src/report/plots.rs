//! The HTML report's plots, drawn to SVG strings with plotters: a setup
//! waterfall per call, a histogram of time to first frame, and per-track
//! frame rate and latency over time with the timeline's actions marked.

use plotters::prelude::*;
use plotters::style::Palette99;

use crate::results::{CallResult, ScenarioResult, SeriesPoint};

/// Rows shown in a waterfall; more calls are summarized in the text.
pub(super) const WATERFALL_ROWS: usize = 40;
/// Tracks drawn as lines over time; more would be a blur.
pub(super) const SERIES_TRACKS: usize = 24;

const WIDTH: u32 = 960;
const PHASES: [(&str, RGBColor); 6] = [
    ("signaling", RGBColor(0x9e, 0x9e, 0x9e)),
    ("answer", RGBColor(0x79, 0x86, 0xcb)),
    ("ICE", RGBColor(0x4d, 0xb6, 0xac)),
    ("DTLS", RGBColor(0xff, 0xb7, 0x4d)),
    ("first RTP", RGBColor(0xba, 0x68, 0xc8)),
    ("first frame", RGBColor(0x43, 0xa0, 0x47)),
];
const AUDIO: RGBColor = RGBColor(0xe5, 0x39, 0x35);

type Drawn = Result<String, String>;

fn svg(
    height: u32,
    draw: impl FnOnce(DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> Result<(), String>,
) -> Drawn {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(root.clone())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Each call's setup phases as consecutive bars from its call command; a
/// red tick where the first audio was heard.
pub(super) fn waterfall(calls: &[CallResult]) -> Drawn {
    let shown: Vec<&CallResult> = calls.iter().take(WATERFALL_ROWS).collect();
    let rows = shown.len().max(1);
    let end = shown
        .iter()
        .flat_map(|c| c.setup.phases().into_iter().filter_map(|(_, v)| v))
        .fold(1.0_f64, f64::max)
        // Room on the right for the legend.
        * 1.45;
    svg(90 + 24 * rows as u32, |root| {
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(150)
            .build_cartesian_2d(0.0..end, -0.5..rows as f64 - 0.5)
            .map_err(err)?;
        let names: Vec<String> = shown
            .iter()
            .map(|c| format!("{} → {}", c.caller, c.callee))
            .collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(rows)
            .y_label_formatter(&|y| {
                let row = y.round();
                if (y - row).abs() < 1e-6 && row >= 0.0 && (row as usize) < rows {
                    // The first call at the top.
                    names
                        .get(rows - 1 - row as usize)
                        .cloned()
                        .unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .x_desc("ms since the call command")
            .draw()
            .map_err(err)?;
        for (phase, (label, color)) in PHASES.iter().enumerate() {
            let bars = shown.iter().enumerate().filter_map(|(row, call)| {
                let marks = call.setup.phases();
                let start = if phase == 0 {
                    Some(0.0)
                } else {
                    marks[phase - 1].1
                };
                let (start, stop) = (start?, marks[phase].1?);
                let y = (rows - 1 - row) as f64;
                Some(Rectangle::new(
                    [(start, y - 0.32), (stop.max(start), y + 0.32)],
                    color.filled(),
                ))
            });
            chart
                .draw_series(bars)
                .map_err(err)?
                .label(*label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
        }
        let ticks = shown.iter().enumerate().filter_map(|(row, call)| {
            let at = call.setup.first_audio_ms?;
            let y = (rows - 1 - row) as f64;
            Some(PathElement::new(
                vec![(at, y - 0.42), (at, y + 0.42)],
                AUDIO.stroke_width(3),
            ))
        });
        chart
            .draw_series(ticks)
            .map_err(err)?
            .label("first audio")
            .legend(|(x, y)| {
                PathElement::new(vec![(x + 6, y - 6), (x + 6, y + 6)], AUDIO.stroke_width(3))
            });
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(err)
    })
}

/// A "nice" bin width (1, 2 or 5 times a power of ten) for ~20 bins.
fn bin_width(span: f64) -> f64 {
    let raw = (span / 20.0).max(0.1);
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|w| *w >= raw)
        .unwrap_or(10.0 * power)
}

/// How many calls reached their first frame after how long.
pub(super) fn histogram(samples: &[f64], what: &str) -> Drawn {
    let max = samples.iter().copied().fold(0.0_f64, f64::max);
    let min = samples.iter().copied().fold(max, f64::min);
    let width = bin_width(max - min);
    let first = (min / width).floor() * width;
    let bins = ((max - first) / width).floor() as usize + 1;
    let mut counts = vec![0u32; bins];
    for &sample in samples {
        counts[(((sample - first) / width).floor() as usize).min(bins - 1)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1);
    svg(300, |root| {
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(first..first + bins as f64 * width, 0u32..top + top / 8 + 1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(what)
            .y_desc("calls")
            .draw()
            .map_err(err)?;
        chart
            .draw_series(counts.iter().enumerate().map(|(i, &count)| {
                let x = first + i as f64 * width;
                Rectangle::new([(x, 0), (x + width * 0.92, count)], PHASES[5].1.filled())
            }))
            .map_err(err)?;
        Ok(())
    })
}

/// A value per received track over the run's time, one line per track,
/// with the timeline's actions after the start marked by dashed lines.
pub(super) fn over_time(
    scenario: &ScenarioResult,
    what: &str,
    value: impl Fn(&SeriesPoint) -> f64,
) -> Drawn {
    let tracks: Vec<(String, Vec<(f64, f64)>)> = scenario
        .calls
        .iter()
        .flat_map(|c| &c.tracks)
        .filter(|t| !t.series.is_empty())
        .map(|t| {
            // Each second's value drawn at its middle; live video has no
            // latency (NaN), and no point.
            let points = t
                .series
                .iter()
                .map(|p| (p.t_s + 0.5, value(p)))
                .filter(|(_, v)| v.is_finite())
                .collect();
            (format!("{} ← {}", t.receiver, t.sender), points)
        })
        .take(SERIES_TRACKS)
        .collect();
    let end = (scenario.ran_ms.max(scenario.planned_ms) / 1e3).max(1.0);
    let top = tracks
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, v)| *v))
        .fold(1.0_f64, f64::max)
        * 1.15;
    svg(320, |root| {
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(0.0..end, 0.0..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("s since the timeline started")
            .y_desc(what)
            .draw()
            .map_err(err)?;
        for (i, (label, points)) in tracks.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
                });
        }
        for action in scenario.actions.iter().filter(|a| a.planned_ms > 0.0) {
            let x = action.at_ms / 1e3;
            let mark = RGBColor(0x61, 0x61, 0x61);
            chart
                .draw_series(DashedLineSeries::new(
                    [(x, 0.0), (x, top)],
                    6,
                    4,
                    mark.stroke_width(1),
                ))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    match &action.to {
                        Some(to) => format!("{} {}→{to}", action.verb, action.from),
                        None => format!("{} {}", action.verb, action.from),
                    },
                    (x, top * 0.97),
                    ("sans-serif", 12).into_font().color(&mark),
                )))
                .map_err(err)?;
        }
        if tracks.len() <= 8 {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .draw()
                .map_err(err)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_round_numbers() {
        assert_eq!(bin_width(200.0), 10.0);
        assert_eq!(bin_width(30.0), 2.0);
        assert_eq!(bin_width(7.0), 0.5);
    }

    #[test]
    fn a_histogram_draws_as_svg_even_with_one_sample() {
        let svg = histogram(&[12.0], "first_frame_ms").unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<rect"), "{svg}");
    }
}
