//! Commands on saved runs: `judge` (a record judged again) and `merge`
//! (the records of a scenario's shards judged as one run).

use std::path::PathBuf;

use super::{EXIT_INVALID, RECORD_FILE, exit_code, out, write_reports};
use crate::record::{RunLog, read_log, shards_of};
use crate::report::{self, Formats};
use crate::results::{RunReport, judge_record, merge as merge_results};
use crate::scenario::Scenario;

#[derive(Debug, clap::Args)]
pub(super) struct JudgeArgs {
    /// A report directory a run wrote (it holds events.jsonl).
    dir: PathBuf,
    /// Judge with these thresholds instead (a `thresholds` table, as in a
    /// scenario file), for each metric it names.
    #[arg(long)]
    thresholds: Option<PathBuf>,
    /// Where the reports go (default: DIR, rewritten).
    #[arg(long)]
    report_dir: Option<PathBuf>,
    /// No summary; only the exit code and errors.
    #[arg(long, short)]
    quiet: bool,
}

/// Re-judges a saved run: its record read back, each scenario validated
/// again from the text it ran, judged, reported.
pub(super) fn judge(args: &JudgeArgs) -> u8 {
    let log = match read_log(&args.dir.join(RECORD_FILE)) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("callprobe judge: {e}");
            return EXIT_INVALID;
        }
    };
    if log.callprobe_version != env!("CARGO_PKG_VERSION") {
        tracing::warn!(
            recorded_by = %log.callprobe_version,
            "the record was written by another callprobe; it is judged by this one's rules"
        );
    }
    let overrides = match &args.thresholds {
        Some(path) => match Scenario::load_thresholds(path) {
            Ok(thresholds) => thresholds,
            Err(e) => {
                eprintln!("{e}");
                return EXIT_INVALID;
            }
        },
        None => Vec::new(),
    };
    let mut report = RunReport {
        callprobe_version: env!("CARGO_PKG_VERSION"),
        started_at: log.started_at.clone(),
        scenarios: Vec::new(),
    };
    for record in &log.scenarios {
        let scenario = match record.scenario.scenario() {
            Ok(scenario) => scenario.with_thresholds(&overrides),
            Err(e) => {
                eprintln!("callprobe judge: the recorded scenario no longer validates:\n{e}");
                return EXIT_INVALID;
            }
        };
        report.scenarios.push(judge_record(&scenario, record));
    }
    if !args.quiet {
        out(&report::terminal(&report));
    }
    let dir = args.report_dir.as_ref().unwrap_or(&args.dir);
    // A new directory gets the record too, so it can be judged again.
    let copy = (dir != &args.dir).then_some(&log);
    if let Err(code) = write_reports(&report, copy, dir, Formats::ALL, args.quiet) {
        return code;
    }
    exit_code(&report, false)
}

#[derive(Debug, clap::Args)]
pub(super) struct MergeArgs {
    /// The shards' report directories (each holds its events.jsonl).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Where the merged reports go.
    #[arg(long)]
    report_dir: PathBuf,
    /// No summary; only the exit code and errors.
    #[arg(long, short)]
    quiet: bool,
}

/// One verdict from N shards' records: each judged on its part, their facts
/// pooled, every metric recomputed and every threshold judged once.
pub(super) fn merge(args: &MergeArgs) -> u8 {
    let mut logs = Vec::new();
    for dir in &args.dirs {
        match read_log(&dir.join(RECORD_FILE)) {
            Ok(log) => logs.push((dir.clone(), log)),
            Err(e) => {
                eprintln!("callprobe merge: {e}");
                return EXIT_INVALID;
            }
        }
    }
    if let Some((dir, log)) = logs
        .iter()
        .find(|(_, log)| log.callprobe_version != env!("CARGO_PKG_VERSION"))
    {
        eprintln!(
            "callprobe merge: {}: written by callprobe {}; this is {}",
            dir.display(),
            log.callprobe_version,
            env!("CARGO_PKG_VERSION")
        );
        return EXIT_INVALID;
    }
    let scenarios = match shards_of(&logs) {
        Ok(scenarios) => scenarios,
        Err(e) => {
            eprintln!("callprobe merge: {e}");
            return EXIT_INVALID;
        }
    };
    let mut report = RunReport {
        callprobe_version: env!("CARGO_PKG_VERSION"),
        started_at: earliest_start(&logs),
        scenarios: Vec::new(),
    };
    for records in scenarios {
        let as_run = &records[0].scenario;
        let whole = match as_run.whole() {
            Ok(whole) => whole,
            Err(e) => {
                eprintln!("callprobe merge: the recorded scenario no longer validates:\n{e}");
                return EXIT_INVALID;
            }
        };
        let parts: Vec<_> = records
            .iter()
            .map(|record| {
                let part = record.scenario.scenario().expect("its whole validated");
                judge_record(&part, record)
            })
            .collect();
        report.scenarios.push(merge_results(&whole, &parts));
    }
    if !args.quiet {
        out(&report::terminal(&report));
    }
    if let Err(code) = write_reports(&report, None, &args.report_dir, Formats::ALL, args.quiet) {
        return code;
    }
    exit_code(&report, false)
}

/// The run started when its first shard did.
fn earliest_start(logs: &[(PathBuf, RunLog)]) -> String {
    logs.iter()
        .map(|(_, log)| log.started_at.clone())
        .min()
        .unwrap_or_default()
}
