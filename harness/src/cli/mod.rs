//! The `callprobe` command line: `run`, `judge`, `validate`, `serve`. The
//! binary's edge: errors become messages and exit codes here.
//!
//! Exit codes: 0 every scenario passed (or was skipped); 1 a threshold
//! failed or a scenario could not run; 2 invalid input (a scenario file, or
//! the command line); 130 interrupted by Ctrl-C.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use callprobe_server::serve::{ServeArgs, serve_until_stopped};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing_subscriber::EnvFilter;

mod records;

use crate::record::{RunLog, write_log};
use crate::report::{self, Formats};
use crate::results::{RunReport, Status, judge_record};
use crate::runner::{Progress, RunOptions, record_scenario};
use crate::scenario::Scenario;
use crate::scenario::shard::{Shard, part};
use records::{JudgeArgs, MergeArgs, judge, merge};

/// The run's record, beside its reports.
pub(crate) const RECORD_FILE: &str = "events.jsonl";
/// How far in the past `--start-at` may be: a shard that starts later than
/// this would run its timeline out of step with the others.
const START_AT_GRACE: Duration = Duration::from_secs(5);

/// Without RUST_LOG: warnings, except the `webrtc` stack's routine ones
/// (ICE checks and SRTP packets that arrive a moment before their keys,
/// DTLS without a server name) and chromiumoxide's about DevTools events
/// newer than its protocol tables.
const QUIET_LOGS: &str = "warn,rtc=error,rtc_ice=error,rtc_dtls=error,chromiumoxide=error";

pub(crate) const EXIT_FAILED: u8 = 1;
pub(crate) const EXIT_INVALID: u8 = 2;
/// The harness was overloaded: the run measured callprobe, not the system
/// under test (fewer peers, or more cores, or `--shard`).
pub(crate) const EXIT_OVERLOADED: u8 = 3;
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

/// Headless WebRTC call tests: run scenario files against a signaling
/// server with synthetic peers, verify media, check thresholds. Logs go to
/// stderr; RUST_LOG sets the level.
#[derive(Debug, Parser)]
#[command(name = "callprobe", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run scenario files; exit 0 only if every threshold passed.
    Run(RunArgs),
    /// Judge a saved run again, without any network: its record
    /// (DIR/events.jsonl) against its scenarios' thresholds, or FILE's.
    Judge(JudgeArgs),
    /// Merge the records of a scenario's shards (`run --shard I/N` on N
    /// machines) into one result: metrics recomputed over all of them,
    /// thresholds judged once, one exit code.
    Merge(MergeArgs),
    /// Print the Kubernetes manifest that runs a scenario as N shards and
    /// merges them (deploy/kubernetes/job.yaml, filled in).
    KubernetesJob(KubernetesJobArgs),
    /// Check scenario files without running them.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run the signaling server.
    Serve(ServeArgs),
    /// List the metrics thresholds can name: what one sample is, and what
    /// it is taken over (a call, a track, a frame, ...).
    Metrics,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Scenario files (.toml or .json).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Where report files go; alone, it writes JSON, JUnit XML and HTML.
    #[arg(long)]
    report_dir: Option<PathBuf>,
    /// Write report.json (the full results).
    #[arg(long)]
    json: bool,
    /// Write junit.xml (a test case per threshold).
    #[arg(long)]
    junit: bool,
    /// Write report.html (plots).
    #[arg(long)]
    html: bool,
    /// Override every scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Use this signaling server (ws:// or wss://) instead of spawning one.
    #[arg(long)]
    server: Option<String>,
    /// Run only shard I of N of each scenario (`2/4`): its peers and calls,
    /// split so that no call is cut; `callprobe merge` makes one result of
    /// the shards' report directories.
    #[arg(long, value_name = "I/N", conflicts_with = "shard_from_env")]
    shard: Option<Shard>,
    /// Like --shard, with I from the environment's JOB_COMPLETION_INDEX
    /// (from 0, as a Kubernetes Indexed Job sets it) and N given here.
    #[arg(long, value_name = "N")]
    shard_from_env: Option<u32>,
    /// Start the timeline at this wall-clock instant (RFC 3339, such as
    /// 2026-12-01T12:00:00Z), once every peer is up: every shard of a split
    /// run given the same one runs in step.
    #[arg(long, value_name = "TIME")]
    start_at: Option<String>,
    /// No progress bar and no summary; only the exit code and errors.
    #[arg(long, short)]
    quiet: bool,
    /// Let browser peers use the machine's own network interfaces. Without
    /// it, a run with browser peers and the in-process server runs in a
    /// network namespace that has only loopback (where it can: root), so
    /// Chromium's media stays on 127.0.0.0/8.
    #[arg(long)]
    host_network: bool,
}

#[derive(Debug, clap::Args)]
struct KubernetesJobArgs {
    /// The scenario, by its path in the image (relative to /opt/callprobe,
    /// as in this checkout: it is validated here).
    scenario: PathBuf,
    /// How many machines (pods) share the run.
    #[arg(long)]
    shards: u32,
    /// The image built from deploy/Dockerfile.
    #[arg(long)]
    image: String,
    /// When every shard's timeline starts (RFC 3339); default: --start-in
    /// from now.
    #[arg(long, value_name = "TIME")]
    start_at: Option<String>,
    /// Without --start-at: start this long from now, time for pods to be
    /// scheduled, pull the image and start their peers.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "3m")]
    start_in: Duration,
    /// The signaling server under test (without it each shard runs its own).
    #[arg(long)]
    server: Option<String>,
    /// Names the Jobs and the volume (default: from the scenario's file).
    #[arg(long)]
    name: Option<String>,
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_INVALID } else { 0 });
        }
    };
    init_logs();
    // Scenarios are read before the runtime starts: whether its threads
    // need a loopback-only network depends on them.
    let scenarios = match &cli.command {
        Command::Run(args) => match load_run(args) {
            Ok(scenarios) => {
                isolate_browsers(args, &scenarios);
                scenarios
            }
            Err(code) => return ExitCode::from(code),
        },
        _ => Vec::new(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("callprobe: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run(args, scenarios).await,
            Command::Judge(args) => judge(&args),
            Command::Merge(args) => merge(&args),
            Command::KubernetesJob(args) => kubernetes_job(&args),
            Command::Validate { files } => validate(&files),
            Command::Metrics => {
                out(&crate::metrics::catalogue());
                0
            }
            Command::Serve(args) => match serve_until_stopped(args.config()).await {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("callprobe serve: {e}");
                    EXIT_FAILED
                }
            },
        }
    });
    // Peers may leave blocking codec work behind; do not wait on it.
    runtime.shutdown_timeout(Duration::from_secs(2));
    ExitCode::from(code)
}

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(QUIET_LOGS)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Loads every file, printing every problem of every file.
fn load_all(files: &[PathBuf]) -> Option<Vec<Scenario>> {
    let mut scenarios = Vec::new();
    let mut invalid = false;
    for file in files {
        match Scenario::load(file) {
            Ok(scenario) => scenarios.push(scenario),
            Err(e) => {
                eprintln!("{e}");
                invalid = true;
            }
        }
    }
    (!invalid).then_some(scenarios)
}

fn validate(files: &[PathBuf]) -> u8 {
    let Some(scenarios) = load_all(files) else {
        return EXIT_INVALID;
    };
    for s in &scenarios {
        out(&format!(
            "{}: ok: \"{}\", {} peers, {} calls, {} actions, {} thresholds, {}\n",
            s.file.display(),
            s.name,
            s.peers.len(),
            s.call_count(),
            s.actions.len(),
            s.thresholds
                .iter()
                .map(|t| t.expressions.len())
                .sum::<usize>(),
            humantime::format_duration(s.duration),
        ));
    }
    0
}

fn kubernetes_job(args: &KubernetesJobArgs) -> u8 {
    let scenario = match Scenario::load(&args.scenario) {
        Ok(scenario) => scenario,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_INVALID;
        }
    };
    let now = std::time::SystemTime::now();
    let start = match &args.start_at {
        Some(text) => match start_at(text) {
            Ok(at) => at,
            Err(code) => return code,
        },
        None => now + args.start_in,
    };
    let lead = start.duration_since(now).unwrap_or_default();
    let stem = args
        .scenario
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy();
    let name: String = args.name.clone().unwrap_or_else(|| {
        let name: String = stem
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        format!("callprobe-{}", name.trim_matches('-'))
    });
    let plan = crate::deploy::JobPlan {
        name,
        image: args.image.clone(),
        shards: args.shards,
        start_at: humantime::format_rfc3339_seconds(start).to_string(),
        scenario: args.scenario.display().to_string(),
        server: args.server.clone(),
        lasts: lead + scenario.duration,
    };
    match plan.render() {
        Ok(yaml) => {
            out(&yaml);
            0
        }
        Err(e) => {
            eprintln!("callprobe kubernetes-job: {e}");
            EXIT_INVALID
        }
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

/// The scenarios of a `run`, with the command line's overrides; an exit
/// code when the input is invalid.
fn load_run(args: &RunArgs) -> Result<Vec<Scenario>, u8> {
    let mut scenarios = load_all(&args.files).ok_or(EXIT_INVALID)?;
    if let Some(url) = &args.server
        && !(url.starts_with("ws://") || url.starts_with("wss://"))
    {
        eprintln!("--server {url}: not a WebSocket URL (ws://… or wss://…)");
        return Err(EXIT_INVALID);
    }
    if let Some(seed) = args.seed {
        for scenario in &mut scenarios {
            scenario.seed = seed;
        }
    }
    let shard = match (args.shard, args.shard_from_env) {
        (Some(shard), _) => Some(shard),
        (None, Some(count)) => Some(shard_from_env(count)?),
        (None, None) => None,
    };
    if let Some(shard) = shard {
        scenarios = scenarios.iter().map(|s| part(s, shard)).collect();
    }
    Ok(scenarios)
}

/// Shard JOB_COMPLETION_INDEX (from 0) of `count`.
fn shard_from_env(count: u32) -> Result<Shard, u8> {
    const VARIABLE: &str = "JOB_COMPLETION_INDEX";
    let index = std::env::var(VARIABLE).map_err(|_| {
        eprintln!("--shard-from-env: {VARIABLE} is not set");
        EXIT_INVALID
    })?;
    index
        .trim()
        .parse::<u32>()
        .ok()
        .and_then(|index| Shard::new(index, count))
        .ok_or_else(|| {
            eprintln!(
                "--shard-from-env {count}: {VARIABLE}={index:?} is not an index from 0 to {}",
                count.saturating_sub(1)
            );
            EXIT_INVALID
        })
}

/// `--start-at`, checked: RFC 3339, and not more than a few seconds past.
fn start_at(text: &str) -> Result<std::time::SystemTime, u8> {
    let at = humantime::parse_rfc3339_weak(text).map_err(|e| {
        eprintln!("--start-at {text}: {e} (write it as RFC 3339: 2026-12-01T12:00:00Z)");
        EXIT_INVALID
    })?;
    if let Ok(past) = std::time::SystemTime::now().duration_since(at)
        && past > START_AT_GRACE
    {
        eprintln!(
            "--start-at {text}: that was {} ago, more than the {} a shard may start late",
            humantime::format_duration(Duration::from_secs(past.as_secs())),
            humantime::format_duration(START_AT_GRACE)
        );
        return Err(EXIT_INVALID);
    }
    Ok(at)
}

/// A run with browser peers whose every address is ours (the in-process
/// server) moves into a loopback-only network namespace before the runtime
/// starts, so Chromium cannot gather candidates or run checks anywhere
/// else. Against an external server the run keeps the host's network.
/// A run that starts its own media server moves into a media server's
/// namespace instead (loopback and one address Janus gathers on).
fn isolate_browsers(args: &RunArgs, scenarios: &[Scenario]) {
    if scenarios.iter().any(Scenario::spawns_sfu) {
        if let Err(e) = crate::netns::enter_media_server_namespace() {
            tracing::warn!(
                "the media server cannot have a network of its own, so it will not start: {e}"
            );
        }
        return;
    }
    let in_process = |s: &Scenario| {
        args.server.is_none() && matches!(s.server, crate::scenario::ServerPlan::InProcess { .. })
    };
    if args.host_network || !scenarios.iter().any(Scenario::has_browsers) {
        return;
    }
    if !scenarios.iter().all(in_process) {
        tracing::warn!(
            "browser peers keep the host's network: a scenario uses an external signaling server"
        );
        return;
    }
    if let Err(e) = crate::netns::enter_loopback_namespace() {
        tracing::warn!(
            "browser peers keep the host's network and may use its other interfaces: {e} \
             (--host-network silences this)"
        );
    }
}

async fn run(args: RunArgs, scenarios: Vec<Scenario>) -> u8 {
    let start_at = match args.start_at.as_deref().map(start_at).transpose() {
        Ok(at) => at,
        Err(code) => return code,
    };
    // Checked by `load_run` already.
    let shard = args
        .shard
        .or_else(|| args.shard_from_env.and_then(|n| shard_from_env(n).ok()));
    let options = RunOptions {
        server: args.server.clone(),
        shard,
        start_at,
        ..RunOptions::default()
    };
    let cancel = options.cancel.clone();
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ncallprobe: interrupted; stopping the run and writing what was measured");
            cancel.cancel();
        }
    });
    let progress = Bar::new(args.quiet);
    let mut report = RunReport {
        callprobe_version: env!("CARGO_PKG_VERSION"),
        started_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        scenarios: Vec::new(),
    };
    let mut log = RunLog {
        callprobe_version: report.callprobe_version.to_owned(),
        started_at: report.started_at.clone(),
        scenarios: Vec::new(),
    };
    for scenario in &scenarios {
        if options.cancel.is_cancelled() {
            break;
        }
        let record = record_scenario(scenario, &options, &progress).await;
        report.scenarios.push(judge_record(scenario, &record));
        log.scenarios.push(record);
    }
    progress.bar.finish_and_clear();
    ctrl_c.abort();
    if !args.quiet {
        out(&report::terminal(&report));
    }
    let mut formats = Formats {
        json: args.json,
        junit: args.junit,
        html: args.html,
    };
    if args.report_dir.is_some() && !formats.any() {
        formats = Formats::ALL;
    }
    if formats.any() {
        let dir = args
            .report_dir
            .unwrap_or_else(|| PathBuf::from("callprobe-report"));
        if let Err(code) = write_reports(&report, Some(&log), &dir, formats, args.quiet) {
            return code;
        }
    }
    exit_code(&report, options.cancel.is_cancelled())
}

/// Writes the reports (and the record, when given) into `dir`.
pub(super) fn write_reports(
    report: &RunReport,
    log: Option<&RunLog>,
    dir: &std::path::Path,
    formats: Formats,
    quiet: bool,
) -> Result<(), u8> {
    let mut files = report::write(report, dir, formats).map_err(|e| {
        eprintln!("callprobe: {e}");
        EXIT_FAILED
    })?;
    if let Some(log) = log {
        let path = dir.join(RECORD_FILE);
        write_log(&path, log).map_err(|e| {
            eprintln!("callprobe: writing the run's record: {e}");
            EXIT_FAILED
        })?;
        files.push(path);
    }
    if !quiet {
        for file in files {
            out(&format!("wrote {}\n", file.display()));
        }
    }
    Ok(())
}

/// The exit code a run's results call for.
pub(super) fn exit_code(report: &RunReport, cancelled: bool) -> u8 {
    if report
        .scenarios
        .iter()
        .any(|s| s.status == Status::Interrupted)
        || cancelled
    {
        EXIT_INTERRUPTED
    } else if report.passed() {
        0
    } else if report
        .scenarios
        .iter()
        .all(|s| matches!(s.status, Status::Passed | Status::Skipped | Status::Invalid))
    {
        EXIT_OVERLOADED
    } else {
        EXIT_FAILED
    }
}

/// The progress bar on stderr: only on a terminal, never with `--quiet`.
struct Bar {
    bar: ProgressBar,
}

impl Bar {
    fn new(quiet: bool) -> Self {
        let target = if quiet || !std::io::stderr().is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(0), target);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {elapsed} {msg}")
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        Bar { bar }
    }
}

impl Progress for Bar {
    fn starting(&self, scenario: &Scenario) {
        self.bar.reset();
        self.bar.set_length(scenario.duration.as_millis() as u64);
        self.bar.set_position(0);
        self.bar.set_prefix(scenario.name.clone());
        self.bar
            .set_message(format!("starting {} peers", scenario.peers.len()));
        self.bar.enable_steady_tick(Duration::from_millis(120));
    }

    fn tick(&self, elapsed: Duration, first_frames: usize) {
        self.bar.set_position(elapsed.as_millis() as u64);
        self.bar
            .set_message(format!("{first_frames} tracks with video"));
    }

    fn finishing(&self) {
        self.bar.set_message("closing");
    }
}
