//! The summary printed after a run: per scenario, its setup phases, what
//! the media amounted to, and every threshold with its measured value.

use std::fmt::Write;

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};

use super::{ms, value};
use crate::results::{CallKind, RunReport, ScenarioResult, Status};

/// Calls listed by name when they did not verify media (the rest counted).
const FAILED_CALLS_LISTED: usize = 5;

pub fn terminal(report: &RunReport) -> String {
    let mut out = String::new();
    for scenario in &report.scenarios {
        scenario_section(&mut out, scenario);
    }
    let count = |status: Status| {
        report
            .scenarios
            .iter()
            .filter(|s| s.status == status)
            .count()
    };
    let _ = writeln!(
        out,
        "callprobe: {} scenario(s): {} passed, {} failed, {} errors, {} skipped{}",
        report.scenarios.len(),
        count(Status::Passed),
        count(Status::Failed),
        count(Status::Error),
        count(Status::Skipped),
        [
            (Status::Interrupted, "interrupted"),
            (Status::Invalid, "invalid (harness overloaded)")
        ]
        .iter()
        .filter(|(status, _)| count(*status) > 0)
        .map(|(status, what)| format!(", {} {what}", count(*status)))
        .collect::<String>()
    );
    out
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.to_vec());
    for column in 1..header.len() {
        if let Some(c) = table.column_mut(column) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

fn scenario_section(out: &mut String, s: &ScenarioResult) {
    let _ = writeln!(
        out,
        "\n== {} ({}): {} after {:.1} s of {:.1} s",
        s.name,
        s.file,
        s.status,
        s.ran_ms.max(0.0) / 1e3,
        s.planned_ms / 1e3
    );
    if let Some(reason) = &s.reason {
        let _ = writeln!(out, "   {reason}");
    }
    if s.status == Status::Skipped {
        return;
    }
    let verified = s.calls.iter().filter(|c| c.verified).count();
    let media = &s.media;
    let publishes = s
        .calls
        .iter()
        .filter(|c| c.kind == CallKind::Publish)
        .count();
    let calls = if publishes > 0 {
        // A room's: its publishes are up or not, its subscriptions verified.
        let subscriptions = s.calls.len() - publishes;
        let streams = s
            .calls
            .iter()
            .filter(|c| c.kind == CallKind::Subscription && c.verified)
            .count();
        format!("{publishes} publishes, {subscriptions} subscriptions ({streams} streams verified)")
    } else {
        format!("{} calls ({verified} verified both ways)", s.calls.len())
    };
    let _ = writeln!(
        out,
        "   {} peers, {calls}, {} media {}x{}@{}, server {}, seed {}",
        s.peers.len(),
        if media.shared { "shared" } else { "live" },
        media.width,
        media.height,
        media.fps,
        s.server,
        s.seed,
    );

    let mut setup = table(&["setup phase (ms)", "n", "p50", "p95", "max"]);
    for phase in [
        "signaling",
        "relay_allocated",
        "answer",
        "ice_connected",
        "dtls_connected",
        "first_rtp",
        "first_frame",
        "first_audio",
    ] {
        if let Some(m) = s.metric(&format!("setup.{phase}_ms")) {
            setup.add_row(vec![
                phase.to_owned(),
                m.count.to_string(),
                ms(m.p50),
                ms(m.p95),
                ms(m.max),
            ]);
        }
    }
    // A room's publishes and subscriptions, under their own names.
    for name in [
        "data.open_ms",
        "sfu.publish_answer_ms",
        "sfu.publish_connected_ms",
        "sfu.offer_ms",
        "sfu.ice_connected_ms",
        "sfu.dtls_connected_ms",
        "sfu.first_frame_ms",
        "sfu.first_audio_ms",
    ] {
        if let Some(m) = s.metric(name) {
            let label = name.strip_suffix("_ms").unwrap_or(name);
            setup.add_row(vec![
                label.replace("data.open", "data_open"),
                m.count.to_string(),
                ms(m.p50),
                ms(m.p95),
                ms(m.max),
            ]);
        }
    }
    let _ = writeln!(out, "{setup}");

    let sum = |name: &str| {
        s.metric(name)
            .map_or(0.0, |m| m.samples.iter().sum::<f64>())
    };
    // Calls meant to fail carry no media to judge.
    let judged = || s.calls.iter().filter(|c| !c.expect_failure);
    let sent: u64 = judged()
        .flat_map(|c| &c.tracks)
        .map(|t| u64::from(t.frames_sent))
        .sum();
    let tracks = judged().map(|c| c.tracks.len()).sum::<usize>();
    let tone = s
        .metric("audio.tone_match")
        .map_or(0.0, |m| m.samples.iter().sum());
    let latency = s.metric("video.latency_ms");
    let fps = s.metric("video.fps");
    let mut media = table(&[
        "tracks",
        "frames verified/sent",
        "lost",
        "corrupt",
        "wrong sender",
        "freezes",
        "fps p50",
        "latency p50/p95 ms",
        "tone matches",
    ]);
    media.add_row(vec![
        tracks.to_string(),
        format!("{:.0}/{sent}", sum("video.frames_verified")),
        format!("{:.0}", sum("video.frames_lost")),
        format!("{:.0}", sum("video.frames_corrupt")),
        format!("{:.0}", sum("video.frames_wrong_sender")),
        format!("{:.0}", sum("video.freezes")),
        fps.map_or("–".to_owned(), |m| value(m.p50)),
        latency.map_or("–".to_owned(), |m| format!("{}/{}", ms(m.p50), ms(m.p95))),
        format!("{tone:.0}/{tracks}"),
    ]);
    let _ = writeln!(out, "{media}");
    let mut codecs: std::collections::BTreeMap<_, usize> = Default::default();
    for codec in judged().flat_map(|c| &c.tracks).filter_map(|t| t.codec) {
        *codecs.entry(codec).or_default() += 1;
    }
    if !codecs.is_empty() {
        let counts: Vec<String> = codecs
            .iter()
            .map(|(codec, n)| format!("{codec} x{n}"))
            .collect();
        let _ = writeln!(out, "   video tracks by codec: {}", counts.join(", "));
    }
    data_line(out, s);
    // What media went over, each side's view of each call counted.
    let mut pairs: std::collections::BTreeMap<String, usize> = Default::default();
    for pair in s
        .calls
        .iter()
        .flat_map(|c| [&c.pairs.caller, &c.pairs.callee])
        .flatten()
    {
        *pairs.entry(pair.to_string()).or_default() += 1;
    }
    if !pairs.is_empty() {
        let counts: Vec<String> = pairs
            .iter()
            .map(|(pair, n)| format!("{pair} x{n}"))
            .collect();
        let _ = writeln!(
            out,
            "   candidate pairs (local-remote, per side): {}",
            counts.join(", ")
        );
    }

    for call in s.calls.iter().filter(|c| c.expect_failure) {
        let outcome = match (call.verified, call.failed_after_ms) {
            (true, _) => "connected, though it was expected to fail".to_owned(),
            (false, Some(ms)) => format!(
                "failed as expected after {ms:.1} ms: {}",
                call.failure.as_deref().unwrap_or(&call.end)
            ),
            (false, None) => format!("did not connect: {}", call.end),
        };
        let _ = writeln!(out, "   call {} -> {} {outcome}", call.caller, call.callee);
    }
    let failed: Vec<_> = s
        .calls
        .iter()
        .filter(|c| (!c.verified || c.failure.is_some()) && !c.expect_failure)
        .collect();
    for call in failed.iter().take(FAILED_CALLS_LISTED) {
        let why = match &call.failure {
            Some(failure) => format!("failed: {failure}"),
            None => format!("did not verify media: {}", call.end),
        };
        let _ = writeln!(out, "   call {} -> {} {why}", call.caller, call.callee);
    }
    if failed.len() > FAILED_CALLS_LISTED {
        let _ = writeln!(
            out,
            "   … and {} more calls",
            failed.len() - FAILED_CALLS_LISTED
        );
    }
    for peer in s
        .peers
        .iter()
        .filter(|p| !p.errors.is_empty())
        .take(FAILED_CALLS_LISTED)
    {
        let _ = writeln!(out, "   {} reported: {}", peer.name, peer.errors.join("; "));
    }

    faults_section(out, s);
    harness_line(out, s);
    shards_line(out, s);

    if !s.thresholds.is_empty() {
        let mut thresholds = table(&["threshold", "", "measured", "result"]);
        for t in &s.thresholds {
            thresholds.add_row(vec![
                format!("{}{}", t.metric, if t.default { " (default)" } else { "" }),
                t.expression.clone(),
                value(t.measured),
                if t.passed { "pass" } else { "FAIL" }.to_owned(),
            ]);
        }
        let _ = writeln!(out, "{thresholds}");
    }
}

/// The calls' data channels, every direction summed.
fn data_line(out: &mut String, s: &ScenarioResult) {
    let directions: Vec<&crate::results::DataResult> = s
        .calls
        .iter()
        .filter(|c| !c.expect_failure)
        .flat_map(|c| &c.tracks)
        .filter_map(|t| t.data.as_ref())
        .collect();
    if directions.is_empty() {
        return;
    }
    let sum =
        |f: fn(&crate::results::DataResult) -> u32| directions.iter().map(|d| f(d)).sum::<u32>();
    let opened = directions.iter().filter(|d| d.opened).count();
    let rtt = s.metric("data.rtt_ms");
    let kbps = s.metric("data.throughput_kbps");
    let _ = writeln!(
        out,
        "   data channels: {opened}/{} directions open, {}/{} messages received (expected {}), lost {}, duplicated {}, reordered {}, corrupt {}, wrong sender {}; rtt p50/p95 {} ms; {} kbit/s p50",
        directions.len(),
        sum(|d| d.received),
        sum(|d| d.sent),
        sum(|d| d.expected),
        sum(|d| d.lost),
        sum(|d| d.duplicated),
        sum(|d| d.reordered),
        sum(|d| d.corrupt),
        sum(|d| d.wrong_sender),
        rtt.map_or("–".to_owned(), |m| format!("{}/{}", ms(m.p50), ms(m.p95))),
        kbps.map_or("–".to_owned(), |m| value(m.p50)),
    );
}

/// What each fault did: how partners learned of a departure, and what a
/// move or an impairment cost each track.
fn faults_section(out: &mut String, s: &ScenarioResult) {
    let fault =
        |f: &crate::results::FaultResult| format!("{} {} @{:.2}s", f.verb, f.peer, f.at_ms / 1e3);
    let departures: Vec<_> = s
        .faults
        .iter()
        .flat_map(|f| f.departures.iter().map(move |d| (f, d)))
        .collect();
    if !departures.is_empty() {
        let mut t = table(&[
            "departure (ms after)",
            "partner",
            "hangup",
            "peerLeft",
            "ICE disconnected",
            "ICE failed",
            "last frame",
        ]);
        for (f, d) in departures {
            t.add_row(vec![
                fault(f),
                d.partner.clone(),
                ms(d.hangup_ms),
                ms(d.peer_left_ms),
                ms(d.ice_disconnected_ms),
                ms(d.ice_failed_ms),
                ms(d.last_frame_ms),
            ]);
        }
        let _ = writeln!(out, "{t}");
    }
    let outages: Vec<_> = s
        .faults
        .iter()
        .flat_map(|f| f.outage.iter().map(move |o| (f, o)))
        .collect();
    if !outages.is_empty() {
        let mut t = table(&[
            "server crash (ms after)",
            "side (from)",
            "ICE disconnected",
            "ICE failed",
            "call ended",
            "last frame",
        ]);
        for (f, o) in outages {
            t.add_row(vec![
                fault(f),
                format!("{} (from {})", o.peer, o.remote),
                ms(o.ice_disconnected_ms),
                ms(o.ice_failed_ms),
                ms(o.call_ended_ms),
                ms(o.last_frame_ms),
            ]);
        }
        let _ = writeln!(out, "{t}");
    }
    let tracks: Vec<_> = s
        .faults
        .iter()
        .flat_map(|f| f.tracks.iter().map(move |t| (f, t)))
        .collect();
    if !tracks.is_empty() {
        let mut t = table(&[
            "fault",
            "track",
            "frames lost",
            "freezes",
            "frozen ms",
            "recovered ms",
        ]);
        for (f, track) in tracks {
            let window = match f.until_ms {
                Some(until) => format!("{}-{:.2}s", fault(f), until / 1e3),
                None => fault(f),
            };
            t.add_row(vec![
                window,
                format!("{} -> {}", track.sender, track.receiver),
                track.frames_lost.to_string(),
                track.freezes.to_string(),
                ms(Some(track.freeze_ms)),
                ms(track.recovered_ms),
            ]);
        }
        let _ = writeln!(out, "{t}");
    }
    for f in s
        .faults
        .iter()
        .filter(|f| f.path_before.is_some() || f.path_after.is_some())
    {
        let path = |p: &Option<crate::results::PathRecord>| {
            p.as_ref()
                .map_or("–".to_owned(), |p| format!("{} <- {}", p.local, p.remote))
        };
        let _ = writeln!(
            out,
            "   {}: ICE connected again after {} ms; media path {}  =>  {}",
            fault(f),
            ms(f.ice_reconnected_ms),
            path(&f.path_before),
            path(&f.path_after)
        );
    }
}

/// A run split across machines: each shard, when it started against
/// `--start-at`, its own verdict and its machine's lag.
fn shards_line(out: &mut String, s: &ScenarioResult) {
    for shard in &s.shards {
        let offset = shard.start_offset_ms.map_or(String::new(), |ms| {
            format!(", timeline started {ms:+.1} ms from --start-at")
        });
        let lag = shard.harness.as_ref().map_or(String::new(), |h| {
            format!(", lag p99 {} ms", ms(h.lag_p99_ms))
        });
        let _ = writeln!(
            out,
            "   shard {}: {} peers, {} calls, {}{offset}{lag}{}",
            shard.shard,
            shard.peers,
            shard.calls,
            shard.status,
            shard
                .reason
                .as_ref()
                .map_or(String::new(), |r| format!(" ({r})")),
        );
    }
}

/// The harness's own load in two lines: is it the bottleneck, what does a
/// peer cost, how fast did calls connect.
fn harness_line(out: &mut String, s: &ScenarioResult) {
    let Some(h) = &s.harness else { return };
    let cpu = h.cpu.map_or("CPU –".to_owned(), |c| {
        format!(
            "CPU {:.2} cores steady ({:.3}% of a core per peer)",
            c.steady_cores, c.per_peer_pct
        )
    });
    let memory = h.memory.map_or("RSS –".to_owned(), |m| {
        format!(
            "RSS peak {:.0} MB ({:.2} MB per peer)",
            m.peak_mb, m.per_peer_mb
        )
    });
    let _ = writeln!(
        out,
        "   harness: event-loop lag p50/p99/max {}/{}/{} ms, frames late {:.2}% ({} of {}), {cpu}, {memory}",
        ms(h.lag_p50_ms),
        ms(h.lag_p99_ms),
        ms(h.lag_max_ms),
        h.pacing.late_ratio * 100.0,
        h.pacing.frames_late,
        h.pacing.frames_due,
    );
    let ramp = &h.ramp;
    if ramp.calls > 0 {
        let _ = writeln!(
            out,
            "   calls connected: {}/{}{}{}",
            ramp.connected,
            ramp.calls,
            ramp.all_connected_ms.map_or(String::new(), |ms| format!(
                ", all within {ms:.0} ms of the start"
            )),
            ramp.calls_per_second
                .map_or(String::new(), |r| format!(", {r:.0} calls/s")),
        );
    }
    if let Some(g) = &h.growth {
        let per_min = |v: Option<f64>, ends: Option<(u64, u64)>| match (v, ends) {
            (Some(v), Some((from, to))) => format!("{v:+.1}/min ({from} to {to})"),
            _ => "–".to_owned(),
        };
        let _ = writeln!(
            out,
            "   growth over {:.0}-{:.0} s: RSS {:+.2} MB/min beyond the record ({:+.2} in all, {:.0} to {:.0} MB; the record {:+.2}), fds {}, tasks {}",
            g.from_s,
            g.to_s,
            g.rss_mb_per_min,
            g.rss_total_mb_per_min,
            g.rss_mb.0,
            g.rss_mb.1,
            g.record_mb_per_min,
            per_min(g.fds_per_min, g.fds),
            per_min(g.tasks_per_min, g.tasks),
        );
    }
}
