//! Every file in `scenarios/` is a test case: it must validate, run, and
//! pass its thresholds; a failure shows the report's table.
//!
//! A scenario that needs an external server (`url_env`) and was not given
//! one runs against a stand-in for the tutorial's server instead. One with
//! browser peers is skipped, saying so, where Chromium is not installed;
//! one that starts its own media server, where Janus is not.

use std::path::PathBuf;
use std::time::Duration;

use callprobe_harness::record::{RunLog, ScenarioRecord, write_log};
use callprobe_harness::report::{self, Formats, terminal};
use callprobe_harness::results::{DataResult, RunReport, ScenarioResult, Status, judge_record};
use callprobe_harness::runner::{NoProgress, RunOptions, record_scenario};
use callprobe_harness::scenario::{Scenario, ServerPlan, SfuServer};
use callprobe_testkit::{cpu_slot, quiet};
use rstest::rstest;

/// Start-up and clean stop on top of a scenario's own duration.
const OVERHEAD: Duration = Duration::from_secs(60);

/// Runs `scenario` under the suite's CPU budget. A run the harness judged
/// INVALID (overloaded: it measured itself, not the call) is run again
/// once the machine is quiet, since a loaded CI machine can cause that;
/// INVALID [`quiet::MAX_TRIES`] times fails the test with the harness's own
/// reason. Never does INVALID pass.
async fn run_judged(scenario: &Scenario, options: &RunOptions) -> ScenarioResult {
    let what = scenario.file.display().to_string();
    let _slot = cpu_slot(&what).await;
    let mut tries = 0;
    loop {
        tries += 1;
        let record = tokio::time::timeout(
            scenario.duration + OVERHEAD,
            record_scenario(scenario, options, &NoProgress),
        )
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within its bound"));
        let result = judge_record(scenario, &record);
        if !matches!(result.status, Status::Passed | Status::Skipped) {
            keep(&record, &result);
        }
        if result.status != Status::Invalid {
            return result;
        }
        let reason = result.reason.clone().unwrap_or_default();
        assert!(
            tries < quiet::MAX_TRIES,
            "{what} was INVALID {tries} times (harness overloaded): {reason}\n{}",
            report(result)
        );
        eprintln!("{what}: INVALID ({reason}); running it again once the machine is quiet");
        let settling = what.clone();
        tokio::task::spawn_blocking(move || quiet::settle(&settling))
            .await
            .expect("settling does not panic");
    }
}

/// Keeps the record and reports of a run that did not pass, where a flake
/// can be looked into (and judged again with `callprobe judge`).
fn keep(record: &ScenarioRecord, result: &ScenarioResult) {
    let stem = record.scenario.file.file_stem().unwrap_or_default();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("runs-not-passed")
        .join(format!("{}-{}", stem.to_string_lossy(), std::process::id()));
    let run = RunReport {
        callprobe_version: env!("CARGO_PKG_VERSION"),
        started_at: String::new(),
        scenarios: vec![result.clone()],
    };
    let log = RunLog {
        callprobe_version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at: String::new(),
        scenarios: vec![record.clone()],
    };
    match report::write(&run, &dir, Formats::ALL)
        .map_err(|e| e.to_string())
        .and_then(|_| write_log(&dir.join("events.jsonl"), &log).map_err(|e| e.to_string()))
    {
        Ok(()) => eprintln!(
            "{}: {}; its record is in {}",
            result.file,
            result.status,
            dir.display()
        ),
        Err(e) => eprintln!("{}: keeping its record: {e}", result.file),
    }
}

fn report(result: ScenarioResult) -> String {
    terminal(&RunReport {
        callprobe_version: env!("CARGO_PKG_VERSION"),
        started_at: String::new(),
        scenarios: vec![result],
    })
}

/// Every scenario file validates, runs and passes. One with browser peers
/// runs as `callprobe run` runs it, in a loopback-only network namespace
/// (skipped, saying so, where none can be made: not root).
#[rstest]
fn every_scenario_file_passes(#[files("scenarios/*.toml")] path: PathBuf) {
    file_passes(path);
}

/// The must-pass set: calls through benign network behaviour (duplicated,
/// reordered within the receive buffer's hold, delayed, jittered packets)
/// pass the defaults and their own strict bounds: no false alarm.
#[rstest]
fn every_must_pass_file_passes(#[files("tests/fixtures/must-pass/*.toml")] path: PathBuf) {
    file_passes(path);
}

/// Loads, runs and judges one file; it must pass. A VP8 or VP9 file in a
/// build without libvpx (`--no-default-features`) is skipped, saying so.
fn file_passes(path: PathBuf) {
    let scenario = match Scenario::load(&path) {
        Ok(scenario) => scenario,
        Err(e) if cfg!(not(feature = "vpx")) && e.to_string().contains("needs libvpx") => {
            return eprintln!("skipped {}: built without libvpx", path.display());
        }
        Err(e) => panic!("{e}"),
    };
    let what = path.display().to_string();
    if scenario.spawns_turn() && !callprobe_testkit::turn_server::available(&what) {
        return;
    }
    let whip = matches!(&scenario.sfu, Some(sfu) if sfu.server == SfuServer::SpawnWhip);
    if whip && !callprobe_testkit::whip_servers::available(&what) {
        return;
    }
    if scenario.has_browsers() {
        callprobe_testkit::run_on_loopback_only(&what, scenario_passes(path, scenario));
    } else if scenario.spawns_sfu() {
        callprobe_testkit::janus_server::in_media_server_namespace(
            &what,
            scenario_passes(path, scenario),
        );
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(scenario_passes(path, scenario));
    }
}

async fn scenario_passes(path: PathBuf, scenario: Scenario) {
    let mut options = RunOptions::default();
    let mut stand_in = None;
    if let ServerPlan::FromEnv { variable } = &scenario.server {
        let server = callprobe_testkit::tutorial_server::TutorialServer::start().await;
        eprintln!(
            "{}: {variable} is not set; running against a stand-in for the tutorial's server at {}",
            path.display(),
            server.url()
        );
        options.server = Some(server.url());
        stand_in = Some(server);
    }
    let result = run_judged(&scenario, &options).await;
    drop(stand_in);
    if result.status == Status::Skipped && scenario.has_browsers() {
        assert!(
            std::env::var_os("CALLPROBE_REQUIRE_CHROMIUM").is_none(),
            "{}: CALLPROBE_REQUIRE_CHROMIUM is set but the run was skipped: {:?}",
            path.display(),
            result.reason
        );
        eprintln!("skipped {}: {:?}", path.display(), result.reason);
        return;
    }
    assert_eq!(
        result.status,
        Status::Passed,
        "\n{}",
        report(result.clone())
    );
    assert!(
        !result.thresholds.is_empty(),
        "{} checks nothing",
        path.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_threshold_fails_the_scenario_and_shows_what_was_measured() {
    let scenario = Scenario::load("tests/fixtures/failing-threshold.toml".as_ref()).unwrap();
    let result = run_judged(&scenario, &RunOptions::default()).await;
    assert_eq!(result.status, Status::Failed, "{}", report(result.clone()));
    let failed: Vec<_> = result.thresholds.iter().filter(|t| !t.passed).collect();
    assert_eq!(failed.len(), 1, "{:#?}", result.thresholds);
    assert_eq!(failed[0].metric, "setup.first_frame_ms");
    let measured = failed[0].measured.expect("the call was measured");
    assert!(measured > 0.0);
    // The call itself worked: only the impossible threshold failed.
    assert!(
        result.calls.iter().all(|c| c.verified),
        "{}",
        report(result.clone())
    );
    let table = report(result);
    assert!(table.contains("FAIL"), "{table}");
    assert!(table.contains("max < 0.001"), "{table}");
}

#[test]
fn a_broken_file_names_its_file_line_and_field() {
    let error = Scenario::load("tests/fixtures/broken.toml".as_ref()).unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with(
            "tests/fixtures/broken.toml:14:1: field `calls[0].too`: unknown field `too`"
        ),
        "{message}"
    );
}

#[test]
fn a_file_with_only_meaning_errors_lists_each_with_its_place() {
    let error = Scenario::load("tests/fixtures/impossible.toml".as_ref()).unwrap_err();
    let lines: Vec<String> = error.to_string().lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert!(
        lines[0].starts_with(
            "tests/fixtures/impossible.toml:16:6: field `calls[0].to`: unknown peer `carol`"
        ),
        "{lines:#?}"
    );
    assert!(lines[1].starts_with("tests/fixtures/impossible.toml:19:12: field `calls[1].topology`: `pairs` needs an even number"), "{lines:#?}");
    assert!(
        lines[2].starts_with(
            "tests/fixtures/impossible.toml:22:6: field `events[0].at`: at 9s is not before the end"
        ),
        "{lines:#?}"
    );
    assert!(
        lines[3].starts_with(
            "tests/fixtures/impossible.toml:27:15: field `thresholds.\"video.fsp\"`: unknown metric"
        ),
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_server_can_speak_tls_and_the_peers_trust_it() {
    let text = "name = \"tls\"\nduration = \"1500ms\"\n[server]\ntls = true\n\
                [[peers]]\nname = \"a\"\n[[peers]]\nname = \"b\"\n[[calls]]\nfrom = \"a\"\nto = \"b\"\n";
    let scenario = Scenario::parse(&callprobe_harness::scenario::Source::new(
        "tls.toml",
        text.to_owned(),
    ))
    .unwrap();
    let result = run_judged(&scenario, &RunOptions::default()).await;
    assert!(result.server.starts_with("wss://"), "{}", result.server);
    assert_eq!(result.status, Status::Passed, "{}", report(result.clone()));
}

/// What `receiver` got on its call's data channel.
fn data_received(result: &ScenarioResult, receiver: &str) -> DataResult {
    result
        .calls
        .iter()
        .flat_map(|c| &c.tracks)
        .find(|t| t.receiver == receiver)
        .and_then(|t| t.data.clone())
        .unwrap_or_else(|| panic!("no data channel at {receiver}:\n{}", report(result.clone())))
}

/// A data channel through 5% loss both ways (alice's link), beside a clean
/// call: ordered and reliable, it loses nothing and the retransmissions
/// show in its round trips; never retransmitting, its losses are counted,
/// not failed. (The files' verdicts include audio through the same loss;
/// only the data is judged here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reliable_data_channel_delivers_everything_through_loss_and_an_unreliable_one_counts_its_losses()
 {
    let load = |path: &str| Scenario::load(path.as_ref()).unwrap();
    let reliable = run_judged(
        &load("tests/fixtures/data-lossy-reliable.toml"),
        &RunOptions::default(),
    )
    .await;
    for (lossy, clean) in [("alice", "carol"), ("bob", "dave")] {
        let (lossy_data, clean_data) = (
            data_received(&reliable, lossy),
            data_received(&reliable, clean),
        );
        assert!(lossy_data.opened && clean_data.opened);
        assert_eq!(lossy_data.lost, 0, "{lossy}: {lossy_data:?}");
        assert!(lossy_data.delivered_ratio >= 0.9, "{lossy}: {lossy_data:?}");
        assert_eq!(
            (
                lossy_data.corrupt,
                lossy_data.wrong_sender,
                lossy_data.reordered
            ),
            (0, 0, 0)
        );
        // The sender's round trips: each lost datagram waits for SCTP's
        // retransmission, which the clean call never does.
        let (lossy_p95, clean_p95) = (
            lossy_data.rtt_p95_ms.unwrap(),
            clean_data.rtt_p95_ms.unwrap(),
        );
        assert!(
            lossy_p95 > 5.0 * clean_p95,
            "{lossy}: p95 {lossy_p95} ms through loss, {clean_p95} ms clean"
        );
        eprintln!(
            "to {lossy} through 5% loss: rtt p50 {:.1} / p95 {lossy_p95:.1} ms; to {clean}, clean: p50 {:.1} / p95 {clean_p95:.1} ms; {} kbit/s",
            lossy_data.rtt_p50_ms.unwrap(),
            clean_data.rtt_p50_ms.unwrap(),
            lossy_data.throughput_kbps.unwrap_or(f64::NAN)
        );
    }
    let unreliable = run_judged(
        &load("tests/fixtures/data-lossy-unreliable.toml"),
        &RunOptions::default(),
    )
    .await;
    let lost: u32 = ["alice", "bob"]
        .iter()
        .map(|r| data_received(&unreliable, r).lost)
        .sum();
    let clean_lost: u32 = ["carol", "dave"]
        .iter()
        .map(|r| data_received(&unreliable, r).lost)
        .sum();
    assert!(lost > 0, "5% loss and no retransmission lost nothing?");
    assert_eq!(clean_lost, 0);
    assert!(
        !unreliable
            .thresholds
            .iter()
            .any(|t| t.metric == "data.messages_lost"),
        "an unreliable channel's losses are counted, not failed by default"
    );
    eprintln!("unreliable through 5% loss: {lost} messages lost, counted");
}
