//! ICE servers and policy in scenarios: per run or per peer, credentials
//! written or from the environment, a spawned coturn, and every mistake
//! pointed at its field.

use super::*;
use crate::peer::{IcePolicy, IceServer};

const PEERS: &str = r#"
[[peers]]
name = "alice"
[[peers]]
name = "bob"
ice = { policy = "all" }
"#;

#[test]
fn the_runs_ice_applies_to_every_peer_and_a_peers_own_replaces_what_it_names() {
    let text = format!(
        r#"
name = "ice"
duration = "3s"

[ice]
policy = "relay"
servers = [
  {{ urls = ["stun:127.0.0.1:3478"] }},
  {{ urls = ["turn:127.0.0.1:3478?transport=udp"], username = "u", credential = "c" }},
]
{PEERS}"#
    );
    let scenario = parse("s.toml", &text).unwrap();
    let alice = &scenario.peers[0].ice;
    assert_eq!(alice.policy, IcePolicy::Relay);
    assert_eq!(
        alice.servers[1],
        IceServer {
            urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
            username: "u".into(),
            credential: "c".into(),
        }
    );
    assert!(!alice.spawned_turn);
    // Bob keeps the run's servers and takes his own policy.
    let bob = &scenario.peers[1].ice;
    assert_eq!((bob.policy, &bob.servers), (IcePolicy::All, &alice.servers));
    assert!(!scenario.spawns_turn());
}

#[test]
fn a_spawned_coturn_is_planned_and_its_credentials_are_never_shown() {
    let scenario = parse(
        "s.toml",
        &format!(
            "name = \"spawn\"\nduration = \"3s\"\n[ice]\npolicy = \"relay\"\nservers = [{{ spawn = \"coturn\" }}]\n{PEERS}"
        ),
    )
    .unwrap();
    assert!(scenario.spawns_turn());
    assert!(scenario.peers[0].ice.spawned_turn);
    let server = IceServer {
        urls: vec!["turn:127.0.0.1:3478".into()],
        username: "u".into(),
        credential: "secret-value".into(),
    };
    assert!(!format!("{server:?}").contains("secret-value"));
}

#[test]
fn ice_mistakes_are_each_pointed_at_their_field() {
    let problems = problems(
        r#"
name = "bad ice"
duration = "3s"

[ice]
policy = "sometimes"
servers = [
  { urls = ["turns:127.0.0.1:5349"], username = "u", credential = "c" },
  { urls = ["turn:127.0.0.1:3478?transport=tcp"], username = "u", credential = "c" },
  { urls = ["turn:127.0.0.1:3478"] },
  { urls = ["http://example.net"] },
  { urls = [] },
  { urls = ["turn:127.0.0.1"], username = "u", credential_env = "CALLPROBE_TEST_SURELY_UNSET_3f9a" },
  { spawn = "stunnel" },
  { spawn = "coturn", username = "u" },
]

[[peers]]
name = "alice"
[[peers]]
name = "bob"
kind = "browser"
"#,
    );
    let seen: Vec<(usize, String, &str)> = problems
        .iter()
        .map(|p| (p.line, p.field.to_string(), p.message.as_str()))
        .collect();
    let expect = |field: &str, says: &str| {
        assert!(
            seen.iter().any(|(_, f, m)| f == field && m.contains(says)),
            "no `{says}` at {field}: {seen:#?}"
        );
    };
    expect("ice.policy", "the policy is \"all\" or \"relay\"");
    expect("ice.servers[0].urls[0]", "over TLS are not supported");
    expect("ice.servers[1].urls[0]", "TURN over TCP is not supported");
    expect("ice.servers[2].username", "a TURN server needs a username");
    expect(
        "ice.servers[2].credential",
        "a TURN server needs a credential",
    );
    expect("ice.servers[3].urls[0]", "not a STUN or TURN URL");
    expect("ice.servers[4].urls", "name at least one");
    expect(
        "ice.servers[5].credential_env",
        "`CALLPROBE_TEST_SURELY_UNSET_3f9a` is not set",
    );
    expect(
        "ice.servers[6].spawn",
        "the TURN server callprobe can start is \"coturn\"",
    );
    expect(
        "ice.servers[7].username",
        "makes up its own URL and credentials",
    );
    // The lines are the fields' own.
    let line_of = |field: &str| seen.iter().find(|(_, f, _)| f == field).unwrap().0;
    assert_eq!(line_of("ice.policy"), 6);
    assert_eq!(line_of("ice.servers[0].urls[0]"), 8);
}

#[test]
fn relay_without_a_turn_server_and_ice_on_a_browser_are_refused() {
    let relay_alone = only_problem(
        "name = \"r\"\nduration = \"3s\"\n[ice]\npolicy = \"relay\"\nservers = [{ urls = [\"stun:127.0.0.1\"] }]\n[[peers]]\nname = \"a\"\n",
    );
    assert_eq!(relay_alone.field.to_string(), "ice.policy");
    assert!(
        relay_alone.message.contains("needs a TURN server"),
        "{}",
        relay_alone.message
    );

    let browser = only_problem(
        "name = \"b\"\nduration = \"3s\"\n[[peers]]\nname = \"a\"\n[[peers]]\nname = \"b\"\nkind = \"browser\"\nice = { servers = [{ spawn = \"coturn\" }] }\n",
    );
    assert_eq!(browser.field.to_string(), "peers[1].ice");
    assert!(
        browser.message.contains("browser peer takes no ICE"),
        "{}",
        browser.message
    );
}

#[test]
fn a_recorded_run_is_judged_again_without_the_credentials_it_read() {
    let text = "name = \"env\"\nduration = \"3s\"\n[ice]\nservers = [{ urls = [\"turn:127.0.0.1\"], username = \"u\", credential_env = \"CALLPROBE_TEST_SURELY_UNSET_77c1\" }]\n[[peers]]\nname = \"a\"\n";
    let source = Source::new("s.toml", text.to_owned());
    assert!(
        Scenario::parse(&source).is_err(),
        "a run needs the variable"
    );
    let recorded = Scenario::parse_recorded(&source).expect("judging does not");
    assert_eq!(recorded.peers[0].ice.servers[0].credential, "");
}
