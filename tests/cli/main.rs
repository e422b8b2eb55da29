//! The `callprobe` binary as CI uses it: exit codes, messages, report files.

use std::process::Command;

use callprobe_testkit::quiet;

mod records;
mod shards;
mod verdicts;

fn callprobe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_callprobe"))
}

/// `callprobe run -q ARGS... FILE --report-dir DIR`. An INVALID run (exit
/// 3) says the harness, not the scenario, was the story: like the scenario
/// tests, it is run again once the machine is quiet, a few times at most.
fn run_into(dir: &std::path::Path, args: &[&str], file: &std::path::Path) -> std::process::Output {
    until_valid(&file.display().to_string(), || {
        callprobe()
            .args(["run", "-q"])
            .args(args)
            .arg("--report-dir")
            .arg(dir)
            .arg(file)
            .env("RUST_LOG", "error")
            .output()
            .unwrap()
    })
}

/// Runs `run` until it exits other than INVALID (3), settling the machine
/// between tries, at most [`quiet::MAX_TRIES`] times; returns the last run.
fn until_valid(what: &str, mut run: impl FnMut() -> std::process::Output) -> std::process::Output {
    let mut output = run();
    for _ in 1..quiet::MAX_TRIES {
        if output.status.code() != Some(3) {
            break;
        }
        eprintln!(
            "{what}: INVALID (harness overloaded); running it again once the machine is quiet:\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
        quiet::settle(what);
        output = run();
    }
    output
}

/// The JSON report a run wrote into `dir`.
fn report_json(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

/// Every `.toml` under `dir`, at any depth.
fn scenario_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(scenario_files(&path));
        } else if path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
    files
}

/// Every shipped scenario validates, the scale and soak ones (not run by
/// the suite) and the verdict fixtures included.
#[test]
fn validate_accepts_every_shipped_scenario() {
    let mut files = scenario_files("scenarios".as_ref());
    assert!(
        files.iter().any(|f| f.starts_with("scenarios/scale")),
        "the walk goes into scenarios/scale: {files:?}"
    );
    files.extend(scenario_files("tests/fixtures/must-fail".as_ref()));
    files.extend(scenario_files("tests/fixtures/must-pass".as_ref()));
    assert!(files.len() >= 30);
    let output = callprobe().arg("validate").args(&files).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.lines().filter(|l| l.contains(": ok: ")).count(),
        files.len(),
        "{stdout}"
    );
}

#[test]
fn an_invalid_file_exits_2_naming_file_line_and_field() {
    for command in ["validate", "run"] {
        let output = callprobe()
            .args([
                command,
                "scenarios/basic-call.toml",
                "tests/fixtures/broken.toml",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains(
                "tests/fixtures/broken.toml:14:1: field `calls[0].too`: unknown field `too`"
            ),
            "{command}: {stderr}"
        );
    }
}

#[test]
fn metrics_lists_every_metric_a_threshold_can_name() {
    let output = callprobe().arg("metrics").output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    for line in [
        "setup.first_frame_ms",
        "video.frames_wrong_sender",
        "harness.cpu_per_peer_pct",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(line)),
            "{line} missing from:\n{stdout}"
        );
    }
}

#[test]
fn a_usage_error_exits_2() {
    let output = callprobe().args(["run"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let output = callprobe()
        .args(["run", "scenarios/basic-call.toml", "--server", "http://x"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn a_failed_threshold_exits_1_and_every_report_carries_the_measured_value() {
    let _slot = callprobe_testkit::cpu_slot_blocking(
        "a_failed_threshold_exits_1_and_every_report_carries_the_measured_value",
    );
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        callprobe()
            .args([
                "run",
                "tests/fixtures/failing-threshold.toml",
                "--report-dir",
            ])
            .arg(dir.path())
            .env("RUST_LOG", "error")
            .output()
            .unwrap()
    };
    // INVALID (exit 3) says the harness, not the threshold, was the story:
    // like the scenario tests, it is run again once the machine is quiet.
    let output = until_valid("tests/fixtures/failing-threshold.toml", run);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("FAIL"), "{stdout}");

    let json = report_json(dir.path());
    let scenario = &json["scenarios"][0];
    assert_eq!(scenario["status"], "failed");
    let failed = scenario["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["passed"] == false)
        .expect("a failed threshold");
    let measured = failed["measured"].as_f64().expect("a measured value");
    assert_eq!(scenario["calls"][0]["tracks"].as_array().unwrap().len(), 2);

    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(junit.contains("<failure"), "{junit}");
    assert!(
        junit.contains("setup.first_frame_ms max &lt; 0.001"),
        "{junit}"
    );
    assert!(
        junit.contains(&format!("measured {measured:.2}")),
        "{junit}"
    );
    assert!(junit.matches("<testcase").count() >= 4, "{junit}");

    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("<svg"), "the plots are inline");
    // Self-contained: nothing to fetch (the SVG namespace is only a name).
    for fetch in ["<script", "<link", "src=\"http", "href=\"http", "url("] {
        assert!(!html.contains(fetch), "the page fetches something: {fetch}");
    }
    assert!(html.contains("FAIL"));
}

#[test]
fn a_skipped_scenario_does_not_fail_the_run() {
    let output = callprobe()
        .args(["run", "--quiet", "scenarios/tutorial-server.toml"])
        .env_remove("CALLPROBE_TUTORIAL_URL")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout.is_empty(), "--quiet prints nothing");
}

#[test]
fn ctrl_c_stops_the_run_and_still_writes_the_partial_report() {
    let _slot = callprobe_testkit::cpu_slot_blocking(
        "ctrl_c_stops_the_run_and_still_writes_the_partial_report",
    );
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::sync::mpsc;
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("long.toml");
    std::fs::write(
        &scenario,
        "name = \"long\"\nduration = \"60s\"\n[[peers]]\nname = \"a\"\n[[peers]]\nname = \"b\"\n\
         [[calls]]\nfrom = \"a\"\nto = \"b\"\n",
    )
    .unwrap();
    let mut child = callprobe()
        .arg("run")
        .arg(&scenario)
        .arg("--report-dir")
        .arg(dir.path())
        // The runner logs each action it carries out at debug level.
        .env("RUST_LOG", "callprobe_harness::runner=debug,warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    // Wait (bounded) until the call has been placed, then press Ctrl-C.
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the run placed its call");
        if line.contains("action") {
            break;
        }
    }
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    // Wait for the exit on a thread, so the wait itself is bounded.
    let pid = child.id();
    let (exited_tx, exited) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = exited_tx.send(child.wait());
    });
    let status = match exited.recv_timeout(Duration::from_secs(30)) {
        Ok(status) => status.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("the run did not stop within 30 s of Ctrl-C");
        }
    };
    assert_eq!(status.code(), Some(130));
    let json = report_json(dir.path());
    let scenario = &json["scenarios"][0];
    assert_eq!(scenario["status"], "interrupted");
    assert!(scenario["ran_ms"].as_f64().unwrap() < 30_000.0);
    assert_eq!(
        scenario["calls"].as_array().unwrap().len(),
        1,
        "the call made so far is reported"
    );
}

/// A run whose harness is over its bounds is not judged: it is INVALID,
/// says why, exits 3, and its report carries the harness's own figures.
#[test]
fn an_overloaded_harness_makes_the_run_invalid_and_exits_3() {
    let _slot = callprobe_testkit::cpu_slot_blocking(
        "an_overloaded_harness_makes_the_run_invalid_and_exits_3",
    );
    let dir = tempfile::tempdir().unwrap();
    let output = callprobe()
        .args([
            "run",
            "tests/fixtures/overloaded.toml",
            "--json",
            "--report-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(3),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("INVALID (harness overloaded)"), "{stdout}");
    assert!(stdout.contains("over the 0 ms bound"), "{stdout}");
    let report = report_json(dir.path());
    let scenario = &report["scenarios"][0];
    assert_eq!(scenario["status"], "invalid");
    let harness = &scenario["harness"];
    assert!(harness["lag_p99_ms"].as_f64().unwrap() > 0.0, "{harness}");
    assert!(
        harness["pacing"]["frames_due"].as_u64().unwrap() > 10,
        "{harness}"
    );
    assert_eq!(harness["ramp"]["connected"], 1, "{harness}");
    assert!(
        harness["overloaded"]
            .as_str()
            .unwrap()
            .contains("event-loop lag")
    );
}
