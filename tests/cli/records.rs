//! The run as a record: `callprobe judge` on what a run saved.

use crate::{callprobe, report_json, run_into};

/// `callprobe judge` on the record a run left in `dir` exits as the run
/// did and writes the same report.json, byte for byte.
pub(crate) fn assert_judged_again_the_same(dir: &std::path::Path, code: Option<i32>) {
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
    let output = run_into(dir.path(), &[], "scenarios/basic-call.toml".as_ref());
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
