//! Scenario files: what validates, and where each problem is pointed at.

use super::*;
use crate::media::codec::VideoCodec;
use crate::net::{Direction, Impairment};

fn parse(name: &str, text: &str) -> Result<Scenario, Vec<Problem>> {
    match Scenario::parse(&Source::new(name, text.to_owned())) {
        Ok(scenario) => Ok(scenario),
        Err(ScenarioError::Invalid { problems }) => Err(problems),
        Err(e) => panic!("{e}"),
    }
}

fn problems(text: &str) -> Vec<Problem> {
    parse("s.toml", text).expect_err("the file is invalid")
}

/// The one problem of a file, as `line:column field: message`.
fn only_problem(text: &str) -> Problem {
    let problems = problems(text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    problems.into_iter().next().unwrap()
}

fn call(from: usize, to: usize) -> Verb {
    Verb::Call {
        from,
        to,
        expect_failure: false,
    }
}

const TWO_PEERS: &str = r#"
name = "two"
duration = "3s"

[[peers]]
name = "alice"
[[peers]]
name = "bob"
"#;

#[test]
fn a_full_scenario_resolves_names_topologies_and_the_timeline() {
    let text = format!(
        "{TWO_PEERS}{}",
        r#"
[[peers]]
name = "crowd"
count = 4

[[calls]]
from = "alice"
to = "bob"

[[calls]]
topology = "pairs"
among = ["crowd"]

[[events]]
at = "2s"
hangup = { from = "bob", to = "alice" }

[[events]]
at = "2500ms"
call = { from = "alice", to = "bob" }

[thresholds]
"setup.first_frame_ms" = ["p95 < 200", "max < 1000"]
"#
    );
    let scenario = parse("s.toml", &text).unwrap();
    let names: Vec<&str> = scenario.peers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["alice", "bob", "crowd-1", "crowd-2", "crowd-3", "crowd-4"]
    );
    let verbs: Vec<(u128, Verb)> = scenario
        .actions
        .iter()
        .map(|a| (a.at.as_millis(), a.verb.clone()))
        .collect();
    assert_eq!(
        verbs,
        [
            (0, call(0, 1)),
            (0, call(2, 3)),
            (0, call(4, 5)),
            (2000, Verb::Hangup { from: 1, to: 0 }),
            (2500, call(0, 1)),
        ]
    );
    assert_eq!(
        scenario.server,
        ServerPlan::InProcess {
            tls: false,
            idle_timeout: None,
            ping_interval: None
        }
    );
    let written = &scenario.thresholds[0];
    assert_eq!(written.metric, Metric::SetupFirstFrame);
    assert_eq!(written.expressions.len(), 2);
    // The defaults are added for metrics the file did not mention.
    let defaults: Vec<Metric> = scenario
        .thresholds
        .iter()
        .filter(|t| t.default)
        .map(|t| t.metric)
        .collect();
    assert_eq!(
        defaults,
        [
            Metric::CallFailed,
            Metric::VideoFramesWrongSender,
            Metric::VideoFramesCorrupt,
            Metric::VideoCoverage,
            Metric::AudioCoverage
        ]
    );
}

#[test]
fn json_has_the_same_schema() {
    let text = r#"{
  "name": "two", "duration": "2s",
  "peers": [{"name": "a"}, {"name": "b"}],
  "calls": [{"topology": "mesh"}]
}"#;
    let scenario = parse("s.json", text).unwrap();
    assert_eq!(scenario.actions[0].verb, call(0, 1));
}

#[test]
fn mesh_and_star_make_the_calls_they_describe() {
    let text = format!(
        "{TWO_PEERS}{}",
        "[[peers]]\nname = \"c\"\n[[peers]]\nname = \"d\"\n[[calls]]\ntopology = \"mesh\"\n"
    );
    assert_eq!(parse("s.toml", &text).unwrap().call_count(), 6);
    let text = format!(
        "{TWO_PEERS}{}",
        "[[peers]]\nname = \"c\"\n[[calls]]\ntopology = \"star\"\nhub = \"bob\"\n"
    );
    let scenario = parse("s.toml", &text).unwrap();
    let verbs: Vec<Verb> = scenario.actions.iter().map(|a| a.verb.clone()).collect();
    assert_eq!(verbs, [call(1, 0), call(1, 2)]);
}

#[test]
fn an_unknown_field_is_named_with_its_line_and_column() {
    let problem = only_problem(&format!(
        "{TWO_PEERS}[[calls]]\nfrom = \"alice\"\ntoo = \"bob\"\n"
    ));
    assert_eq!(problem.field.to_string(), "calls[0].too");
    assert_eq!((problem.line, problem.column), (11, 1));
    assert!(problem.message.contains("unknown field `too`"), "{problem}");
    assert!(
        problem
            .to_string()
            .starts_with("s.toml:11:1: field `calls[0].too`"),
        "{problem}"
    );
}

#[test]
fn a_bad_duration_says_how_to_write_one() {
    let problem = only_problem("name = \"x\"\nduration = \"3 fortnights\"\n");
    assert_eq!(problem.field.to_string(), "duration");
    assert_eq!(problem.line, 2);
    assert!(problem.message.contains("\"250ms\""), "{problem}");
}

#[test]
fn a_toml_syntax_error_has_a_line() {
    let problem = only_problem("name = \"x\"\nduration = \n");
    assert_eq!(problem.line, 2, "{problem}");
}

#[test]
fn json_errors_have_lines_and_fields_too() {
    let problems = parse(
        "s.json",
        "{\n  \"name\": \"x\",\n  \"duration\": \"1s\",\n  \"peerz\": []\n}",
    )
    .unwrap_err();
    assert_eq!(problems[0].line, 4, "{problems:?}");
    assert_eq!(problems[0].field.to_string(), "peerz");
    let problems = parse(
        "s.json",
        "{\"name\": \"x\", \"duration\": \"1s\",\n \"peers\": [{\"name\": \"a\"}],\n \"calls\": [{\"from\": \"a\", \"to\": \"zed\"}]}",
    )
    .unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        (problems[0].line, problems[0].field.to_string().as_str()),
        (3, "calls[0].to")
    );
}

#[test]
fn unknown_peers_in_calls_and_events_are_pointed_at() {
    let problems = problems(&format!(
        "{TWO_PEERS}[[calls]]\nfrom = \"alice\"\nto = \"carol\"\n\n[[events]]\nat = \"1s\"\nhangup = {{ from = \"dave\", to = \"bob\" }}\n"
    ));
    let fields: Vec<String> = problems.iter().map(|p| p.field.to_string()).collect();
    assert_eq!(
        fields,
        ["calls[0].to", "events[0].hangup.from"],
        "{problems:#?}"
    );
    assert_eq!(problems[0].line, 11);
    assert!(
        problems[0]
            .message
            .contains("unknown peer `carol` (known: alice, bob)")
    );
    assert_eq!(problems[1].line, 15);
}

#[test]
fn events_after_the_end_are_refused() {
    let problem = only_problem(&format!(
        "{TWO_PEERS}[[calls]]\nfrom = \"alice\"\nto = \"bob\"\n[[events]]\nat = \"3s\"\nhangup = {{ from = \"alice\", to = \"bob\" }}\n"
    ));
    assert_eq!(problem.field.to_string(), "events[0].at");
    assert!(problem.message.contains("not before the end"), "{problem}");
}

#[test]
fn impossible_topologies_are_refused() {
    let problem = only_problem(&format!(
        "{TWO_PEERS}[[peers]]\nname = \"c\"\n[[calls]]\ntopology = \"pairs\"\n"
    ));
    assert_eq!(problem.field.to_string(), "calls[0].topology");
    assert!(problem.message.contains("even number"), "{problem}");
    let problem = only_problem(&format!("{TWO_PEERS}[[calls]]\ntopology = \"star\"\n"));
    assert!(problem.message.contains("needs a `hub`"), "{problem}");
    let problem = only_problem(&format!(
        "{TWO_PEERS}[[peers]]\nname = \"g\"\ncount = 2\n[[calls]]\nfrom = \"g\"\nto = \"bob\"\n"
    ));
    assert_eq!(problem.field.to_string(), "calls[0].from");
    assert!(problem.message.contains("is a group of 2"), "{problem}");
}

#[test]
fn the_timeline_cannot_hang_up_a_call_that_is_not_up_or_call_twice() {
    let problem = only_problem(&format!(
        "{TWO_PEERS}[[events]]\nat = \"1s\"\nhangup = {{ from = \"alice\", to = \"bob\" }}\n"
    ));
    assert!(problem.message.contains("not in a call at 1s"), "{problem}");
    let problem = only_problem(&format!(
        "{TWO_PEERS}[[calls]]\nfrom = \"alice\"\nto = \"bob\"\n[[events]]\nat = \"1s\"\ncall = {{ from = \"bob\", to = \"alice\" }}\n"
    ));
    assert!(
        problem
            .message
            .contains("already in a call (from calls[0])"),
        "{problem}"
    );
    let problem = only_problem(&format!(
        "{TWO_PEERS}[[calls]]\nfrom = \"bob\"\nto = \"bob\"\n"
    ));
    assert!(problem.message.contains("calls itself"), "{problem}");
}

#[test]
fn malformed_thresholds_and_unknown_metrics_are_named() {
    let problems = problems(&format!(
        "{TWO_PEERS}[thresholds]\n\"setup.first_frame_ms\" = [\"p95 < 20\", \"p95 <\"]\n\"setup.frist_frame_ms\" = [\"max < 1\"]\n"
    ));
    let fields: Vec<String> = problems.iter().map(|p| p.field.to_string()).collect();
    assert_eq!(
        fields,
        [
            "thresholds.\"setup.first_frame_ms\"[1]",
            "thresholds.\"setup.frist_frame_ms\""
        ]
    );
    assert_eq!(problems[0].line, 10);
    assert_eq!(problems[1].line, 11);
    assert!(
        problems[1]
            .message
            .contains("known metrics: setup.signaling_ms")
    );
}

#[test]
fn every_problem_is_reported_not_only_the_first() {
    let problems = problems(
        "name = \"\"\nduration = \"0s\"\n[media.video]\nwidth = 100\nfps = 0\n[[peers]]\nname = \"a b\"\n",
    );
    let fields: Vec<String> = problems.iter().map(|p| p.field.to_string()).collect();
    assert_eq!(
        fields,
        [
            "name",
            "duration",
            "media.video.width",
            "media.video.fps",
            "peers[0].name"
        ]
    );
}

#[test]
fn shared_media_refuses_per_peer_video_and_a_server_is_one_thing() {
    let problems = problems(
        "name = \"x\"\nduration = \"1s\"\n[server]\nurl = \"http://x\"\ntls = true\n[media]\nmode = \"shared\"\n[[peers]]\nname = \"a\"\nvideo = { fps = 15 }\n",
    );
    let fields: Vec<String> = problems.iter().map(|p| p.field.to_string()).collect();
    assert_eq!(fields, ["server.tls", "server.url", "peers[0].video"]);
}

#[test]
fn a_missing_file_says_which() {
    let error = Scenario::load(std::path::Path::new("/nonexistent/x.toml")).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/x.toml: cannot read"),
        "{error}"
    );
}

#[test]
fn after_leaving_a_peer_does_nothing_and_a_call_to_it_must_expect_failure() {
    let base = format!(
        "{TWO_PEERS}[[calls]]\nfrom = \"alice\"\nto = \"bob\"\n[[events]]\nat = \"1s\"\nleave = \"bob\"\n"
    );
    let scenario = parse("s.toml", &format!(
        "{base}[[events]]\nat = \"2s\"\ncall = {{ from = \"alice\", to = \"bob\", expect = \"fail\" }}\n"
    ))
    .unwrap();
    let verbs: Vec<Verb> = scenario.actions.iter().map(|a| a.verb.clone()).collect();
    assert_eq!(
        verbs,
        [
            call(0, 1),
            Verb::Leave { peer: 1 },
            Verb::Call {
                from: 0,
                to: 1,
                expect_failure: true
            }
        ]
    );
    let problem = only_problem(&format!(
        "{base}[[events]]\nat = \"2s\"\ncall = {{ from = \"alice\", to = \"bob\" }}\n"
    ));
    assert!(
        problem.message.contains("say `expect = \"fail\"`"),
        "{problem}"
    );
    let problem = only_problem(&format!(
        "{base}[[events]]\nat = \"2s\"\ncall = {{ from = \"bob\", to = \"alice\" }}\n"
    ));
    assert!(
        problem
            .message
            .contains("`bob` is already gone (events[0])"),
        "{problem}"
    );
    let problem = only_problem(&format!(
        "{base}[[events]]\nat = \"2s\"\nhangup = {{ from = \"alice\", to = \"bob\" }}\n"
    ));
    assert!(problem.message.contains("not in a call at 2s"), "{problem}");
}

#[test]
fn fault_verbs_read_with_their_settings() {
    let scenario = parse(
        "s.toml",
        &format!(
            "{TWO_PEERS}
[detection]
preset = \"fast\"
failed = \"2s\"

[server]
idle_timeout = \"1s\"

[[events]]
at = \"1s\"
impair = {{ peer = \"alice\", direction = \"in\", loss = \"5%\", burst = 3, delay = \"40ms\", jitter = \"10ms\", rate = \"500kbps\" }}

[[events]]
at = \"1500ms\"
restore = \"alice\"

[[events]]
at = \"2s\"
move = {{ peer = \"bob\", restart = \"remote\" }}

[[events]]
at = \"2500ms\"
crash = \"bob\"
"
        ),
    )
    .unwrap();
    assert_eq!(
        scenario.detection,
        Detection {
            failed: Duration::from_secs(2),
            ..Detection::FAST
        }
    );
    assert_eq!(
        scenario.server,
        ServerPlan::InProcess {
            tls: false,
            idle_timeout: Some(Duration::from_secs(1)),
            ping_interval: Some(Duration::from_millis(500)),
        }
    );
    let verbs: Vec<Verb> = scenario.actions.iter().map(|a| a.verb.clone()).collect();
    assert_eq!(
        verbs,
        [
            Verb::Impair {
                peer: 0,
                direction: Direction::In,
                impairment: Impairment {
                    loss: Some(crate::net::Loss::Bursty {
                        ratio: 0.05,
                        mean_burst: 3.0
                    }),
                    delay: Duration::from_millis(40),
                    jitter: Duration::from_millis(10),
                    rate_bps: Some(500_000),
                    blackhole: false,
                    duplicate: None,
                    reorder_every: None,
                },
            },
            Verb::Restore { peer: 0 },
            Verb::Move {
                peer: 1,
                to: std::net::IpAddr::from([127, 0, 0, 2]),
                restart: RestartBy::Remote,
            },
            Verb::Crash { peer: 1 },
        ]
    );
}

#[test]
fn fault_settings_that_cannot_work_are_refused_where_they_are_written() {
    let event =
        |body: &str| only_problem(&format!("{TWO_PEERS}\n[[events]]\nat = \"1s\"\n{body}\n"));
    let problem = event("move = { peer = \"bob\", to = \"10.0.0.7\" }");
    assert_eq!(problem.field.to_string(), "events[0].move.to");
    assert!(problem.message.contains("127.0.0.0/8"), "{problem}");
    let problem = event("impair = { peer = \"bob\", loss = \"five\" }");
    assert_eq!(problem.field.to_string(), "events[0].impair.loss");
    let problem = event("impair = { peer = \"bob\", rate = \"fast\" }");
    assert_eq!(problem.field.to_string(), "events[0].impair.rate");
    let problem = event("impair = { peer = \"bob\", delay = \"5ms\", jitter = \"20ms\" }");
    assert_eq!(problem.field.to_string(), "events[0].impair.jitter");
    let problem = event("impair = { peer = \"bob\" }");
    assert!(problem.message.contains("impairs nothing"), "{problem}");
    let problem = event("vanish = \"bob\"\ncrash = \"alice\"");
    assert!(problem.message.contains("exactly one verb"), "{problem}");
    let problem = only_problem(&format!(
        "{TWO_PEERS}\n[detection]\ndisconnected = \"100ms\"\nkeepalive = \"200ms\"\n"
    ));
    assert_eq!(problem.field.to_string(), "detection.keepalive");
    let problem = only_problem(&format!(
        "{TWO_PEERS}\n[[events]]\nat = \"1s\"\nvanish = \"bob\"\n[[events]]\nat = \"2s\"\nmove = {{ peer = \"bob\" }}\n"
    ));
    assert!(
        problem.message.contains("`bob` is already gone"),
        "{problem}"
    );
}

#[test]
fn a_spawn_rate_spaces_a_groups_calls_and_must_fit_the_duration() {
    let crowd = r#"
name = "ramp"
duration = "3s"
[[peers]]
name = "p"
count = 8
[[calls]]
topology = "pairs"
at = "1s"
spawn_rate = 4
"#;
    let scenario = parse("s.toml", crowd).unwrap();
    let starts: Vec<u128> = scenario.actions.iter().map(|a| a.at.as_millis()).collect();
    assert_eq!(starts, [1000, 1250, 1500, 1750]);
    let too_slow = only_problem(&crowd.replace("spawn_rate = 4", "spawn_rate = 1"));
    assert_eq!(too_slow.field.to_string(), "calls[0].spawn_rate");
    assert!(too_slow.message.contains("would start at 4s"), "{too_slow}");
    let zero = only_problem(&crowd.replace("spawn_rate = 4", "spawn_rate = 0"));
    assert!(zero.message.contains("more than 0"), "{zero}");
}

#[test]
fn harness_bounds_have_defaults_and_read_a_share() {
    let scenario = parse("s.toml", TWO_PEERS).unwrap();
    assert_eq!(scenario.load_bounds, LoadBounds::default());
    let set = parse(
        "s.toml",
        &format!("{TWO_PEERS}[harness]\nmax_lag = \"20ms\"\nmax_late_frames = \"0.5%\"\n"),
    )
    .unwrap();
    assert_eq!(set.load_bounds.max_lag, Duration::from_millis(20));
    assert!((set.load_bounds.max_late_frames - 0.005).abs() < 1e-12);
    let bad = only_problem(&format!(
        "{TWO_PEERS}[harness]\nmax_late_frames = \"lots\"\n"
    ));
    assert_eq!(bad.field.to_string(), "harness.max_late_frames");
}

const CODEC_PEERS: &str = r#"
name = "codecs"
duration = "3s"

[[peers]]
name = "alice"
video = { codec = "vp8" }
[[peers]]
name = "bob"
video = { codec = ["vp9", "h264"] }
"#;

#[test]
fn codecs_are_read_one_or_as_a_preference_list() {
    let scenario = parse("s.toml", CODEC_PEERS).unwrap();
    assert_eq!(
        scenario.media.video.codecs,
        [VideoCodec::H264],
        "the default"
    );
    assert_eq!(scenario.peers[0].video.codecs, [VideoCodec::Vp8]);
    assert_eq!(
        scenario.peers[1].video.codecs,
        [VideoCodec::Vp9, VideoCodec::H264]
    );
}

#[test]
fn a_call_between_peers_with_no_codec_in_common_is_refused_at_its_line() {
    let text = format!("{CODEC_PEERS}\n[[calls]]\nfrom = \"alice\"\nto = \"bob\"\n");
    let problem = only_problem(&text);
    assert_eq!(
        (problem.line, problem.field.to_string().as_str()),
        (12, "calls[0]")
    );
    assert_eq!(
        problem.message,
        "`alice` offers only vp8 and `bob` takes only vp9, h264: no video codec in common; \
         say `expect = \"fail\"` to test that the call is refused"
    );
    // Said to fail, it is a test of the refusal, and valid.
    let expected = format!(
        "{CODEC_PEERS}\n[[events]]\nat = \"1s\"\ncall = {{ from = \"alice\", to = \"bob\", expect = \"fail\" }}\n"
    );
    parse("s.toml", &expected).unwrap();
}

#[test]
fn unknown_repeated_and_shared_mode_codecs_are_refused_with_their_field() {
    let problems = problems(
        r#"
name = "bad codecs"
duration = "3s"

[[peers]]
name = "alice"
video = { codec = ["av1", "h264", "h264"] }
[[peers]]
name = "web"
kind = "browser"
video = { codec = "vp8" }
"#,
    );
    let found: Vec<(String, &str)> = problems
        .iter()
        .map(|p| (p.field.to_string(), p.message.as_str()))
        .collect();
    let has = |field: &str, start: &str| {
        found
            .iter()
            .any(|(f, m)| f == field && m.starts_with(start))
    };
    assert!(
        has(
            "peers[0].video.codec[0]",
            "unknown codec `av1`; known: h264, vp8, vp9"
        ),
        "{found:#?}"
    );
    assert!(
        has("peers[0].video.codec[2]", "h264 is named twice"),
        "{found:#?}"
    );
    assert!(
        has("peers[1].video.codec", "a browser offers its own codecs"),
        "{found:#?}"
    );
}

#[test]
fn shared_media_is_h264_only() {
    let problem = only_problem(
        "name = \"s\"\nduration = \"3s\"\n[media]\nmode = \"shared\"\nvideo = { codec = \"vp8\" }\n[[peers]]\nname = \"a\"\n",
    );
    assert_eq!(problem.field.to_string(), "media.video.codec");
    assert!(
        problem
            .message
            .starts_with("shared media is one H.264 clip"),
        "{problem}"
    );
}

#[cfg(not(feature = "vpx"))]
#[test]
fn without_libvpx_a_vp8_scenario_is_refused_in_one_line() {
    let problem = only_problem(
        "name = \"v\"\nduration = \"3s\"\n[media]\nvideo = { codec = \"vp8\" }\n[[peers]]\nname = \"a\"\n",
    );
    assert_eq!(problem.field.to_string(), "media.video.codec");
    assert!(problem.message.starts_with("vp8 needs libvpx"), "{problem}");
}

#[test]
fn a_browser_is_refused_network_and_media_faults_at_their_field() {
    let problems = problems(
        r#"
name = "browser faults"
duration = "3s"

[[peers]]
name = "web"
kind = "browser"

[[events]]
at = "1s"
move = { peer = "web" }

[[events]]
at = "2s"
media = { peer = "web", fault = "video-freeze" }

[[events]]
at = "2s"
crash = "web"
"#,
    );
    let found: Vec<(String, &str)> = problems
        .iter()
        .map(|p| (p.field.to_string(), p.message.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (
                "events[0].move".to_owned(),
                "`web` is a browser peer: move acts on the harness's own network, which a \
                 browser does not use (crash, leave, call and hangup work)"
            ),
            (
                "events[1].media".to_owned(),
                "`web` is a browser peer: video-freeze media faults are for synthetic peers, \
                 whose camera and microphone callprobe draws"
            ),
        ],
        "a crash is fine"
    );
}
