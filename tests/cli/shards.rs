//! One scenario across machines: shards, `--start-at`, `callprobe merge`,
//! and the Kubernetes manifest.

use crate::{callprobe, report_json};

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
