//! The timeline's verbs and the harness's bounds: what a fault, a
//! departure or a spawn rate must say, and where a bad one is pointed at.

use super::*;

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
