//! Scenario files: what validates, and where each problem is pointed at.

use super::*;
use crate::media::codec::VideoCodec;
use crate::net::{Direction, Impairment};

mod codecs;
mod data;
mod ice;
mod rooms;
mod timeline;

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
