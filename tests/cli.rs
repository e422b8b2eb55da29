//! The `callprobe` binary as CI uses it: exit codes, messages, report files.

use std::process::Command;

fn callprobe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_callprobe"))
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
    // like the scenario tests, it gets one more run.
    let mut output = run();
    if output.status.code() == Some(3) {
        eprintln!(
            "INVALID (harness overloaded); running it once more:\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
        output = run();
    }
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

/// The metrics a must-fail file names in its `# fails:` line.
fn expected_failures(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("# fails: "))
        .unwrap_or_else(|| panic!("{} has no `# fails:` line", path.display()));
    line.split(',').map(|m| m.trim().to_owned()).collect()
}

/// The must-fail matrix: one scenario per fault class a pass must never
/// hide. Each exits 1, and the thresholds its file names are among those
/// that failed (defaults included: most files set none of their own).
#[rstest::rstest]
fn every_must_fail_scenario_exits_1_on_the_threshold_it_names(
    #[files("tests/fixtures/must-fail/*.toml")] path: std::path::PathBuf,
) {
    let what = path.display().to_string();
    let _slot = callprobe_testkit::cpu_slot_blocking(&what);
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        callprobe()
            .args(["run", "-q", "--json", "--report-dir"])
            .arg(dir.path())
            .arg(&path)
            .env("RUST_LOG", "error")
            .output()
            .unwrap()
    };
    let mut output = run();
    if output.status.code() == Some(3) {
        eprintln!("{what}: INVALID (harness overloaded); running it once more");
        output = run();
    }
    let json = report_json(dir.path());
    let scenario = &json["scenarios"][0];
    assert_eq!(
        output.status.code(),
        Some(1),
        "{what}: {}\n{:#}",
        String::from_utf8_lossy(&output.stderr),
        scenario["thresholds"]
    );
    let failed: Vec<&str> = scenario["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["passed"] == false)
        .filter_map(|t| t["metric"].as_str())
        .collect();
    for metric in expected_failures(&path) {
        assert!(
            failed.contains(&metric.as_str()),
            "{what}: `{metric}` did not fail; what failed: {failed:?}"
        );
    }
    // The record of every fault class judges again to the same report.
    assert_judged_again_the_same(dir.path(), output.status.code());
}

/// `callprobe judge` on the record a run left in `dir` exits as the run
/// did and writes the same report.json, byte for byte.
fn assert_judged_again_the_same(dir: &std::path::Path, code: Option<i32>) {
    let again = tempfile::tempdir().unwrap();
    let output = callprobe()
        .args(["judge", "-q", "--report-dir"])
        .arg(again.path())
        .arg(dir)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        code,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read = |dir: &std::path::Path| std::fs::read_to_string(dir.join("report.json")).unwrap();
    let (live, judged) = (read(dir), read(again.path()));
    assert!(
        live == judged,
        "judged again, the report differs:\n{}",
        first_difference(&live, &judged)
    );
    assert!(
        again.path().join("events.jsonl").exists(),
        "the record is copied"
    );
}

/// The first line where two texts differ, for a message.
fn first_difference(a: &str, b: &str) -> String {
    let line = a.lines().zip(b.lines()).position(|(x, y)| x != y);
    match line {
        Some(n) => format!(
            "line {}:\n  live:   {}\n  judged: {}",
            n + 1,
            a.lines().nth(n).unwrap_or(""),
            b.lines().nth(n).unwrap_or("")
        ),
        None => format!("lengths {} and {}", a.len(), b.len()),
    }
}

/// A saved run is a record: judged again it passes as it did, and with a
/// stricter thresholds file it fails, naming the new threshold.
#[test]
fn a_saved_run_is_judged_again_and_fails_a_stricter_threshold() {
    let _slot = callprobe_testkit::cpu_slot_blocking(
        "a_saved_run_is_judged_again_and_fails_a_stricter_threshold",
    );
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        callprobe()
            .args(["run", "-q", "--report-dir"])
            .arg(dir.path())
            .arg("scenarios/basic-call.toml")
            .env("RUST_LOG", "error")
            .output()
            .unwrap()
    };
    let mut output = run();
    if output.status.code() == Some(3) {
        eprintln!("INVALID (harness overloaded); running it once more");
        output = run();
    }
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_judged_again_the_same(dir.path(), Some(0));

    let stricter = tempfile::tempdir().unwrap();
    let output = callprobe()
        .args([
            "judge",
            "--thresholds",
            "tests/fixtures/stricter-thresholds.toml",
        ])
        .arg("--report-dir")
        .arg(stricter.path())
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("setup.first_frame_ms"), "{stdout}");
    let json = report_json(stricter.path());
    let failed: Vec<String> = json["scenarios"][0]["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["passed"] == false)
        .map(|t| {
            format!(
                "{} {}",
                t["metric"].as_str().unwrap(),
                t["expression"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(failed, ["setup.first_frame_ms max < 0.001"]);
    // The scenario's other thresholds are still judged, and still pass.
    assert!(json["scenarios"][0]["thresholds"].as_array().unwrap().len() > 1);

    // A record that is not one is refused, naming the file and line.
    let broken = tempfile::tempdir().unwrap();
    std::fs::write(broken.path().join("events.jsonl"), "{\"type\":\"run\",\"version\":1,\"callprobe\":\"0.1.0\",\"started_at\":\"x\"}\n{\"type\":\"event\"}\n").unwrap();
    let output = callprobe()
        .arg("judge")
        .arg(broken.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("events.jsonl:2:"), "{stderr}");
}

/// A `callprobe serve` on a free loopback port, stopped when dropped.
struct Serving {
    child: std::process::Child,
    url: String,
}

impl Serving {
    fn start() -> Serving {
        use std::io::BufRead;
        let mut child = callprobe()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "callprobe_server=info")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(url) = line.split("url=").nth(1) {
                    let _ = tx.send(url.split_whitespace().next().unwrap_or("").to_owned());
                }
            }
        });
        let url = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the server says where it listens");
        Serving { child, url }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// pairs-20 as four shards (four processes against one server, released
/// together by one --start-at), merged: every call verified, the merged
/// counts the sums of the shards', the unsharded run's verdict (it passes,
/// in `every_scenario_file_passes`). A missing shard is refused by name,
/// and a shard whose harness was overloaded makes the whole INVALID.
#[test]
fn pairs_20_as_four_shards_merges_into_one_verdict() {
    let _slot =
        callprobe_testkit::cpu_slot_blocking("pairs_20_as_four_shards_merges_into_one_verdict");
    let server = Serving::start();
    let root = tempfile::tempdir().unwrap();
    let dir = |i: usize| root.path().join(format!("shard-{i}"));
    let start_at = humantime::format_rfc3339_seconds(
        std::time::SystemTime::now() + std::time::Duration::from_secs(6),
    )
    .to_string();
    let shards: Vec<std::process::Child> = (1..=4)
        .map(|i| {
            callprobe()
                .args([
                    "run",
                    "-q",
                    "--shard",
                    &format!("{i}/4"),
                    "--server",
                    &server.url,
                ])
                .args(["--start-at", &start_at, "--report-dir"])
                .arg(dir(i))
                .arg("scenarios/pairs-20.toml")
                .env("RUST_LOG", "error")
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, shard) in shards.into_iter().enumerate() {
        let output = shard.wait_with_output().unwrap();
        assert!(
            matches!(output.status.code(), Some(0 | 3)),
            "shard {}: {}",
            i + 1,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let merged = root.path().join("merged");
    let merge = |dirs: &[usize], out: &std::path::Path| {
        callprobe()
            .arg("merge")
            .args(dirs.iter().map(|&i| dir(i)))
            .arg("--report-dir")
            .arg(out)
            .output()
            .unwrap()
    };
    let output = merge(&[3, 1, 4, 2], &merged);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json = report_json(&merged);
    let whole = &json["scenarios"][0];
    let shard_status: Vec<&str> = whole["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    if shard_status.contains(&"invalid") {
        // The machine was too loaded to measure: that is the merged verdict too.
        assert_eq!(output.status.code(), Some(3), "{stdout}");
        eprintln!("a shard was INVALID (harness overloaded): {shard_status:?}");
        return;
    }
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert_eq!(whole["status"], "passed");
    let calls = whole["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 20);
    assert!(calls.iter().all(|c| c["verified"] == true), "{stdout}");
    assert_eq!(whole["peers"].as_array().unwrap().len(), 40);
    // The whole is the sum of its parts.
    let verified = |scenario: &serde_json::Value| -> u64 {
        scenario["calls"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["tracks"].as_array().unwrap())
            .map(|t| t["video"]["verified"].as_u64().unwrap())
            .sum()
    };
    let parts: Vec<serde_json::Value> = (1..=4)
        .map(|i| report_json(&dir(i))["scenarios"][0].clone())
        .collect();
    assert_eq!(verified(whole), parts.iter().map(verified).sum::<u64>());
    let count = |scenario: &serde_json::Value, metric: &str| {
        scenario["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == metric)
            .map_or(0, |m| m["count"].as_u64().unwrap())
    };
    for metric in [
        "setup.first_frame_ms",
        "video.verified_ratio",
        "audio.coverage",
    ] {
        let sum: u64 = parts.iter().map(|p| count(p, metric)).sum();
        assert_eq!(count(whole, metric), sum, "{metric}");
    }
    for shard in whole["shards"].as_array().unwrap() {
        assert_eq!(shard["peers"], 10);
        assert!(shard["start_offset_ms"].as_f64().is_some(), "{shard}");
    }

    // Three of four shards: refused, naming the missing one.
    let output = merge(&[1, 2, 4], &root.path().join("three"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("shard 3/4 is missing"), "{stderr}");

    // Shard 2's harness, as if it had lagged 200 ms at every probe: the
    // whole cannot be judged.
    let record = dir(2).join("events.jsonl");
    let lagged: String = std::fs::read_to_string(&record)
        .unwrap()
        .lines()
        .map(|line| {
            let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
            if value["type"] == "load" {
                for probe in value["watched"]["lag"].as_array_mut().unwrap() {
                    probe[1] = 200.0.into();
                }
            }
            value.to_string() + "\n"
        })
        .collect();
    std::fs::write(&record, lagged).unwrap();
    let output = merge(&[1, 2, 3, 4], &root.path().join("lagged"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("shard 2/4"), "{stdout}");
}

/// The manifest of a split run, rendered for N shards: an Indexed Job of N
/// pods released at one instant, each its own shard and report volume, and
/// the merge. (CI checks the same output against the Kubernetes schema.)
#[test]
fn the_kubernetes_job_is_rendered_for_n_shards() {
    let output = callprobe()
        .args([
            "kubernetes-job",
            "--shards",
            "3",
            "--image",
            "callprobe:test",
        ])
        .args(["--start-at", "2099-01-01T00:00:00Z", "--name", "pairs"])
        .arg("scenarios/pairs-20.toml")
        .output()
        .unwrap();
    let yaml = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(yaml.matches("\n---\n").count(), 2, "three objects: {yaml}");
    for expected in [
        "kind: PersistentVolumeClaim",
        "name: pairs-shards",
        "completionMode: Indexed",
        "completions: 3",
        "parallelism: 3",
        "- --shard-from-env\n            - \"3\"",
        "- --start-at\n            - \"2099-01-01T00:00:00Z\"",
        "subPathExpr: shard-$(JOB_COMPLETION_INDEX)",
        "name: pairs-merge",
        "exec callprobe merge /reports/shard-* --report-dir /reports/merged",
        "image: callprobe:test",
    ] {
        assert!(yaml.contains(expected), "{expected:?} not in:\n{yaml}");
    }
    assert!(!yaml.contains("{{"), "{yaml}");

    let output = callprobe()
        .args(["kubernetes-job", "--shards", "3", "--image", "x"])
        .arg("tests/fixtures/broken.toml")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

/// `--shard-from-env N` takes its index from JOB_COMPLETION_INDEX (from 0,
/// as a Kubernetes Indexed Job sets it) and refuses one out of range;
/// `--start-at` refuses an instant long past.
#[test]
fn a_shard_from_the_environment_and_a_start_in_the_past_are_checked() {
    let run = |env: Option<&str>, args: &[&str]| {
        let mut command = callprobe();
        command.arg("run").args(args).arg("scenarios/pairs-20.toml");
        command.env_remove("JOB_COMPLETION_INDEX");
        if let Some(index) = env {
            command.env("JOB_COMPLETION_INDEX", index);
        }
        command.output().unwrap()
    };
    for (env, expected) in [
        (
            Some("4"),
            "JOB_COMPLETION_INDEX=\"4\" is not an index from 0 to 3",
        ),
        (None, "JOB_COMPLETION_INDEX is not set"),
    ] {
        let output = run(env, &["--shard-from-env", "4"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
    let output = run(
        None,
        &["--shard", "1/4", "--start-at", "2020-01-01T00:00:00Z"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("more than the 5s a shard may start late"),
        "{stderr}"
    );
    let output = run(None, &["--shard", "5/4"]);
    assert_eq!(output.status.code(), Some(2));
}
