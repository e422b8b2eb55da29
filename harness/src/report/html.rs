//! One self-contained HTML page (no scripts, no network): per scenario, its
//! verdict, thresholds, setup phases, plots and calls.

use maud::{DOCTYPE, Markup, PreEscaped, html as markup};

use super::plots::{self, SERIES_TRACKS, WATERFALL_ROWS};
use super::{ms, value};
use crate::results::{RunReport, ScenarioResult, Status};

const STYLE: &str = "
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #212121; }
h1 { font-size: 1.5em; } h2 { margin-top: 2.2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .8em 0; }
th, td { padding: .25em .7em; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.badge { display: inline-block; padding: .1em .6em; border-radius: .8em; color: white; font-size: .8em; vertical-align: middle; }
.passed { background: #2e7d32; } .failed, .error { background: #c62828; } .skipped, .interrupted { background: #757575; } .invalid { background: #ef6c00; }
.fail { color: #c62828; font-weight: bold; } .pass { color: #2e7d32; }
.plot { margin: 1em 0; } .note { color: #616161; }
";

pub fn html(report: &RunReport) -> String {
    let page = markup! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "callprobe report" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "callprobe report" }
                p.note {
                    "Started " (report.started_at) " · callprobe " (report.callprobe_version) " · "
                    (report.scenarios.len()) " scenario(s)"
                }
                table {
                    tr { th { "scenario" } th { "status" } th { "calls verified" } th { "thresholds passed" } }
                    @for s in &report.scenarios {
                        tr {
                            td { a href={ "#" (anchor(s)) } { (s.name) } }
                            td { (badge(s.status)) }
                            td { (s.calls.iter().filter(|c| c.verified).count()) "/" (s.calls.len()) }
                            td { (s.thresholds.iter().filter(|t| t.passed).count()) "/" (s.thresholds.len()) }
                        }
                    }
                }
                @for s in &report.scenarios { (scenario(s)) }
            }
        }
    };
    page.into_string()
}

fn anchor(s: &ScenarioResult) -> String {
    s.file
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn badge(status: Status) -> Markup {
    let class = format!("badge {}", format!("{status:?}").to_lowercase());
    markup! { span class=(class) { (status) } }
}

fn plot(drawn: Result<String, String>) -> Markup {
    match drawn {
        Ok(svg) => markup! { div.plot { (PreEscaped(svg)) } },
        Err(e) => markup! { p.note { "(plot not drawn: " (e) ")" } },
    }
}

fn scenario(s: &ScenarioResult) -> Markup {
    let first_frames = s
        .metric("setup.first_frame_ms")
        .map(|m| m.samples.clone())
        .unwrap_or_default();
    let tracks: usize = s.calls.iter().map(|c| c.tracks.len()).sum();
    markup! {
        h2 id=(anchor(s)) { (s.name) " " (badge(s.status)) }
        p {
            code { (s.file) } " · " (s.peers.len()) " peers · " (s.calls.len()) " calls · "
            (if s.media.shared { "shared" } else { "live" }) " media "
            (s.media.width) "x" (s.media.height) "@" (s.media.fps)
            " · ran " (format!("{:.1}", s.ran_ms.max(0.0) / 1e3)) " s of " (format!("{:.1}", s.planned_ms / 1e3))
            " · seed " (s.seed) " · server " code { (s.server) }
        }
        @if !s.description.is_empty() { p.note { (s.description) } }
        @if let Some(reason) = &s.reason { p.fail { (reason) } }
        @if !s.thresholds.is_empty() {
            h3 { "Thresholds" }
            table {
                tr { th { "metric" } th { "threshold" } th { "measured" } th { "result" } }
                @for t in &s.thresholds {
                    tr {
                        td { (t.metric) @if t.default { span.note { " (default)" } } }
                        td { code { (t.expression) } }
                        td { (value(t.measured)) }
                        td { @if t.passed { span.pass { "pass" } } @else { span.fail { "FAIL" } } }
                    }
                }
            }
        }
        @if !s.calls.is_empty() {
            h3 { "Call setup" }
            p.note { "Each bar is one call, from the caller's call command: signaling (offer at the callee), answer, ICE connected, DTLS connected, first RTP, first verified frame; the red tick is the first 100 ms of the other side's tone."
                @if s.calls.len() > WATERFALL_ROWS { " The first " (WATERFALL_ROWS) " of " (s.calls.len()) " calls are drawn." } }
            (plot(plots::waterfall(&s.calls)))
            @if !first_frames.is_empty() {
                h3 { "Time to first frame" }
                (plot(plots::histogram(&first_frames, "setup.first_frame_ms")))
            }
            h3 { "Frame rate and latency over time" }
            p.note { "Verified frames per second, and mean capture-to-verified latency, per received track; dashed lines mark the timeline's actions."
                @if tracks > SERIES_TRACKS { " The first " (SERIES_TRACKS) " of " (tracks) " tracks are drawn." } }
            (plot(plots::over_time(s, "verified frames per second", |p| p.fps)))
            (plot(plots::over_time(s, "latency ms", |p| p.latency_ms)))
            h3 { "Metrics" }
            table {
                tr { th { "metric" } th { "n" } th { "min" } th { "p50" } th { "p90" } th { "p95" } th { "p99" } th { "max" } }
                @for m in &s.metrics {
                    tr {
                        td { (m.name) }
                        td { (m.count) }
                        td { (value(m.min)) } td { (value(m.p50)) } td { (value(m.p90)) }
                        td { (value(m.p95)) } td { (value(m.p99)) } td { (value(m.max)) }
                    }
                }
            }
            h3 { "Calls" }
            table {
                tr { th { "call" } th { "at s" } th { "pair (caller · callee)" } th { "relay ms" } th { "ICE ms" } th { "DTLS ms" } th { "first frame ms" } th { "first audio ms" } th { "frames verified/sent" } th { "lost" } th { "end" } }
                @for c in s.calls.iter().take(200) {
                    tr {
                        td {
                            @if c.verified == c.expect_failure { span.fail { "✗ " } }
                            (c.caller) " → " (c.callee)
                            @if c.expect_failure { span.note { " (expected to fail)" } }
                        }
                        td { (format!("{:.2}", c.started_at_ms / 1e3)) }
                        td {
                            (c.pairs.caller.as_ref().map_or("–".to_owned(), ToString::to_string))
                            " · "
                            (c.pairs.callee.as_ref().map_or("–".to_owned(), ToString::to_string))
                        }
                        td { (ms(c.setup.relay_allocated_ms)) }
                        td { (ms(c.setup.ice_connected_ms)) }
                        td { (ms(c.setup.dtls_connected_ms)) }
                        td { (ms(c.setup.first_frame_ms)) }
                        td { (ms(c.setup.first_audio_ms)) }
                        td {
                            @for (i, t) in c.tracks.iter().enumerate() {
                                @if i > 0 { " · " }
                                (t.video.as_ref().map_or(0, |v| v.verified)) "/" (t.frames_sent)
                            }
                        }
                        td { (c.tracks.iter().map(|t| t.frames_lost).sum::<u64>()) }
                        td { (c.end) }
                    }
                }
            }
        }
        @if s.calls.iter().flat_map(|c| &c.tracks).any(|t| t.data.is_some()) {
            h3 { "Data channels" }
            table {
                tr { th { "direction" } th { "open" } th { "received/sent" } th { "expected" } th { "lost" } th { "duplicated" } th { "reordered" } th { "corrupt" } th { "wrong sender" } th { "rtt p50 / p95 ms" } th { "kbit/s" } }
                @for t in s.calls.iter().flat_map(|c| &c.tracks) {
                    @if let Some(d) = &t.data {
                        tr {
                            td { (t.sender) " → " (t.receiver) }
                            td { (if d.opened { "yes" } else { "no" }) }
                            td { (d.received) "/" (d.sent) } td { (d.expected) }
                            td { (d.lost) } td { (d.duplicated) } td { (d.reordered) }
                            td { (d.corrupt) } td { (d.wrong_sender) }
                            td { (ms(d.rtt_p50_ms)) " / " (ms(d.rtt_p95_ms)) }
                            td { (d.throughput_kbps.map_or("–".to_owned(), |k| format!("{k:.1}"))) }
                        }
                    }
                }
            }
        }
        @if !s.faults.is_empty() {
            h3 { "Faults" }
            p.note { "Departures: ms from the fault to each signal at each partner (– : never came). Moves and impairments: what each track lost from the fault to the first verified frame after its end." }
            table {
                tr { th { "fault" } th { "partner" } th { "hangup" } th { "peerLeft" } th { "ICE disconnected" } th { "ICE failed" } th { "last frame" } }
                @for f in &s.faults {
                    @for d in &f.departures {
                        tr {
                            td { (f.verb) " " (f.peer) " @" (format!("{:.2}", f.at_ms / 1e3)) "s" }
                            td { (d.partner) }
                            td { (ms(d.hangup_ms)) } td { (ms(d.peer_left_ms)) }
                            td { (ms(d.ice_disconnected_ms)) } td { (ms(d.ice_failed_ms)) }
                            td { (ms(d.last_frame_ms)) }
                        }
                    }
                }
            }
            @if s.faults.iter().any(|f| !f.outage.is_empty()) {
                table {
                    tr { th { "server crash" } th { "side (from)" } th { "ICE disconnected" } th { "ICE failed" } th { "call ended" } th { "last frame" } }
                    @for f in &s.faults {
                        @for o in &f.outage {
                            tr {
                                td { (f.verb) " " (f.peer) " @" (format!("{:.2}", f.at_ms / 1e3)) "s" }
                                td { (o.peer) " (from " (o.remote) ")" }
                                td { (ms(o.ice_disconnected_ms)) } td { (ms(o.ice_failed_ms)) }
                                td { (ms(o.call_ended_ms)) } td { (ms(o.last_frame_ms)) }
                            }
                        }
                    }
                }
            }
            table {
                tr { th { "fault" } th { "until s" } th { "track" } th { "frames lost" } th { "freezes" } th { "frozen ms" } th { "recovered ms" } th { "media path before → after" } }
                @for f in &s.faults {
                    @for t in &f.tracks {
                        tr {
                            td { (f.verb) " " (f.peer) " @" (format!("{:.2}", f.at_ms / 1e3)) "s" }
                            td { (f.until_ms.map_or("end".to_owned(), |u| format!("{:.2}", u / 1e3))) }
                            td { (t.sender) " → " (t.receiver) }
                            td { (t.frames_lost) } td { (t.freezes) } td { (ms(Some(t.freeze_ms))) }
                            td { (ms(t.recovered_ms)) }
                            td {
                                @if let Some(p) = &f.path_before { code { (p.local) } }
                                @if f.path_after.is_some() { " → " }
                                @if let Some(p) = &f.path_after { code { (p.local) } }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(h) = &s.harness {
            h3 { "Harness load" }
            p.note { "The harness's own load: over its bounds, the run is INVALID (it measured callprobe, not the system under test). CPU and RSS are the whole process's." }
            table {
                tr { th { "event-loop lag p50 / p99 / max ms" } th { "frames late" } th { "CPU steady (cores)" } th { "CPU per peer (% core)" } th { "RSS peak MB" } th { "RSS per peer MB" } th { "calls connected" } th { "all connected ms" } th { "calls/s" } }
                tr {
                    td { (ms(h.lag_p50_ms)) " / " (ms(h.lag_p99_ms)) " / " (ms(h.lag_max_ms)) }
                    td { (format!("{:.2}%", h.pacing.late_ratio * 100.0)) " (" (h.pacing.frames_late) " of " (h.pacing.frames_due) ")" }
                    td { (h.cpu.map_or("–".to_owned(), |c| format!("{:.2}", c.steady_cores))) }
                    td { (h.cpu.map_or("–".to_owned(), |c| format!("{:.3}", c.per_peer_pct))) }
                    td { (h.memory.map_or("–".to_owned(), |m| format!("{:.0}", m.peak_mb))) }
                    td { (h.memory.map_or("–".to_owned(), |m| format!("{:.2}", m.per_peer_mb))) }
                    td { (h.ramp.connected) " / " (h.ramp.calls) }
                    td { (ms(h.ramp.all_connected_ms)) }
                    td { (h.ramp.calls_per_second.map_or("–".to_owned(), |r| format!("{r:.0}"))) }
                }
            }
            @if let Some(why) = &h.overloaded { p.fail { "harness overloaded: " (why) } }
            @if let Some(g) = &h.growth {
                p.note { "Growth per minute, a line fitted to one sample a second from " (format!("{:.0}", g.from_s)) " s to " (format!("{:.0}", g.to_s)) " s. Memory is counted beyond the run's own record (per-frame times and events kept for this report); a leak grows, churn only scatters." }
                table {
                    tr { th { "RSS beyond the record MB/min" } th { "RSS in all MB/min" } th { "the record MB/min" } th { "open fds /min" } th { "live tasks /min" } }
                    tr {
                        td { (format!("{:+.2}", g.rss_mb_per_min)) }
                        td { (format!("{:+.2}", g.rss_total_mb_per_min)) " (" (format!("{:.0}", g.rss_mb.0)) " to " (format!("{:.0}", g.rss_mb.1)) " MB)" }
                        td { (format!("{:+.2}", g.record_mb_per_min)) }
                        td { (g.fds_per_min.map_or("–".to_owned(), |v| format!("{v:+.1}"))) }
                        td { (g.tasks_per_min.map_or("–".to_owned(), |v| format!("{v:+.1}"))) }
                    }
                }
            }
        }
        @if s.actions.len() > 1 {
            h3 { "Timeline" }
            table {
                tr { th { "at s" } th { "action" } th { "from" } th { "to" } th { "written at" } }
                @for a in &s.actions {
                    tr { td { (format!("{:.3}", a.at_ms / 1e3)) } td { (a.verb) } td { (a.from) } td { (a.to.as_deref().unwrap_or("")) } td { code { (a.origin) } } }
                }
            }
        }
    }
}
