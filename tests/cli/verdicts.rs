//! The must-fail matrix: every fault class a pass must never hide fails,
//! on the threshold its file names; and its record judges again the same.

use crate::records::assert_judged_again_the_same;
use crate::{report_json, run_into};

/// The metrics a must-fail file names in its `# fails:` line.
fn expected_failures(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("# fails: "))
        .unwrap_or_else(|| panic!("{} has no `# fails:` line", path.display()));
    line.split(',').map(|m| m.trim().to_owned()).collect()
}

/// Whether the file has the run start its own TURN server (coturn).
fn needs_turn(path: &std::path::Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| text.contains("spawn = \"coturn\""))
}

/// Whether the file has the run start its own media server (Janus).
fn needs_janus(path: &std::path::Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| text.contains("[sfu]"))
}

/// Whether the file has the run start WHIP and WHEP servers.
fn needs_whip(path: &std::path::Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| text.contains("kind = \"whip\""))
}

/// The must-fail matrix: one scenario per fault class a pass must never
/// hide. Each exits 1, and the thresholds its file names are among those
/// that failed (defaults included: most files set none of their own).
#[rstest::rstest]
fn every_must_fail_scenario_exits_1_on_the_threshold_it_names(
    #[files("tests/fixtures/must-fail/*.toml")] path: std::path::PathBuf,
) {
    let what = path.display().to_string();
    if needs_turn(&path) && !callprobe_testkit::turn_server::available(&what) {
        return;
    }
    if needs_janus(&path) && !callprobe_testkit::janus_server::available(&what) {
        return;
    }
    if needs_whip(&path) && !callprobe_testkit::whip_servers::available(&what) {
        return;
    }
    let _slot = callprobe_testkit::cpu_slot_blocking(&what);
    let dir = tempfile::tempdir().unwrap();
    let output = run_into(dir.path(), &["--json"], &path);
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
