//! Rooms on a media server in scenarios: who publishes and subscribes,
//! the actions each room makes, a late subscriber, and every mistake
//! pointed at its field.

use super::*;

const ROOM: &str = r#"
name = "room"
duration = "5s"

[sfu]
kind = "janus"

[[peers]]
name = "pub"
count = 2
[[peers]]
name = "sub"
count = 2
[[peers]]
name = "late"

[[rooms]]
publishers = ["pub"]
subscribers = ["sub"]
members = ["late"]

[[events]]
at = "2s"
subscribe = "late"
"#;

#[test]
fn a_room_publishes_then_subscribes_everyone_to_every_publisher_and_a_late_one_joins() {
    let scenario = parse("s.toml", ROOM).unwrap();
    let sfu = scenario.sfu.as_ref().expect("a media server");
    assert_eq!(sfu.server, SfuServer::SpawnJanus);
    assert!(scenario.spawns_sfu());
    assert_eq!(sfu.rooms[0].publishers, [0, 1]);
    assert_eq!(sfu.rooms[0].members, [0, 1, 2, 3, 4]);
    assert!(scenario.peers.iter().all(|p| p.room == Some(0)));
    let verbs: Vec<(u64, Verb)> = scenario
        .actions
        .iter()
        .map(|a| (a.at.as_millis() as u64, a.verb.clone()))
        .collect();
    let subscribe = |peer, to| Verb::Subscribe { peer, to };
    assert_eq!(
        verbs,
        [
            (0, Verb::Publish { peer: 0 }),
            (0, Verb::Publish { peer: 1 }),
            (0, subscribe(2, 0)),
            (0, subscribe(2, 1)),
            (0, subscribe(3, 0)),
            (0, subscribe(3, 1)),
            // `subscribe = "late"`: to each publisher of its room.
            (2000, subscribe(4, 0)),
            (2000, subscribe(4, 1)),
        ]
    );
    // Defaults judge every stream, as they judge calls.
    assert!(
        scenario
            .thresholds
            .iter()
            .any(|t| t.metric == Metric::VideoFramesWrongSender && t.default)
    );
}

#[test]
fn all_subscribes_every_member_to_every_publisher_but_itself() {
    let text = ROOM
        .replace("subscribers = [\"sub\"]", "subscribers = \"all\"")
        .replace("[[events]]\nat = \"2s\"\nsubscribe = \"late\"\n", "");
    let scenario = parse("s.toml", &text).unwrap();
    let subscriptions: Vec<(usize, usize)> = scenario
        .actions
        .iter()
        .filter_map(|a| match a.verb {
            Verb::Subscribe { peer, to } => Some((peer, to)),
            _ => None,
        })
        .collect();
    assert_eq!(subscriptions.len(), 5 * 2 - 2, "{subscriptions:?}");
    assert!(subscriptions.iter().all(|(peer, to)| peer != to));
}

#[test]
fn an_external_janus_with_its_own_room_is_planned() {
    let text = ROOM.replace(
        "kind = \"janus\"",
        "kind = \"janus\"\nurl = \"ws://127.0.0.1:8188/\"\nroom = 1234",
    );
    let scenario = parse("s.toml", &text).unwrap();
    assert_eq!(
        scenario.sfu.unwrap().server,
        SfuServer::ExternalJanus {
            url: "ws://127.0.0.1:8188/".into(),
            room: Some(1234)
        }
    );
    assert!(!parse("s.toml", &text).unwrap().spawns_sfu());
}

#[test]
fn whip_starts_its_own_servers_and_refuses_an_external_one() {
    let text = ROOM.replace("kind = \"janus\"", "kind = \"whip\"");
    let scenario = parse("s.toml", &text).unwrap();
    assert_eq!(scenario.sfu.as_ref().unwrap().server, SfuServer::SpawnWhip);
    assert!(scenario.spawns_sfu(), "the run needs the media namespace");
    let external = ROOM.replace(
        "kind = \"janus\"",
        "kind = \"whip\"\nurl = \"http://127.0.0.1:7080/whip\"",
    );
    let problem = only_problem(&external);
    assert_eq!(problem.field.to_string(), "sfu.url");
    assert!(problem.message.contains("not supported yet"), "{problem}");
}

#[test]
fn a_wrong_token_is_for_whip_peers_only() {
    let on = |kind: &str| {
        ROOM.replace("kind = \"janus\"", kind).replace(
            "name = \"late\"",
            "name = \"late\"\nmisbehave = [\"wrong-token\"]",
        )
    };
    let scenario = parse("s.toml", &on("kind = \"whip\"")).unwrap();
    assert!(scenario.peers[4].misbehave.wrong_token);
    assert!(!scenario.peers[0].misbehave.wrong_token);
    let problem = only_problem(&on("kind = \"janus\""));
    assert_eq!(problem.field.to_string(), "peers");
    assert!(
        problem
            .message
            .contains("`late`: misbehaviour `wrong-token` is for WHIP"),
        "{problem}"
    );
}

#[test]
fn room_mistakes_are_pointed_at_their_fields() {
    let cases: &[(&str, &str, &str, &str)] = &[
        // (replace, with, field, message fragment)
        (
            "kind = \"janus\"",
            "kind = \"mediasoup\"",
            "sfu.kind",
            "the media servers callprobe drives are janus, whip",
        ),
        (
            "kind = \"janus\"",
            "kind = \"janus\"\nroom = 7",
            "sfu.room",
            "give its `url` too",
        ),
        (
            "kind = \"janus\"",
            "kind = \"janus\"\nurl = \"http://x/\"",
            "sfu.url",
            "not a WebSocket URL",
        ),
        (
            "publishers = [\"pub\"]",
            "publishers = [\"nobody\"]",
            "rooms[0].publishers[0]",
            "unknown peer or group `nobody`",
        ),
        (
            "subscribers = [\"sub\"]",
            "subscribers = \"everyone\"",
            "rooms[0].subscribers",
            "write \"all\"",
        ),
        ("members = [\"late\"]", "", "rooms", "`late` is in no room"),
        (
            "subscribe = \"late\"",
            "subscribe = \"ghost\"",
            "events[0].subscribe",
            "unknown peer `ghost`",
        ),
        (
            "at = \"2s\"\nsubscribe = \"late\"",
            "at = \"2s\"\ncall = { from = \"sub-1\", to = \"sub-2\" }",
            "events[0].call",
            "not for a room scenario",
        ),
        (
            "at = \"2s\"\nsubscribe = \"late\"",
            "at = \"2s\"\nmove = { peer = \"sub-1\" }",
            "events[0].move",
            "not for a room scenario",
        ),
    ];
    for &(replace, with, field, message) in cases {
        let text = ROOM.replace(replace, with);
        let problems = problems(&text);
        assert!(
            problems
                .iter()
                .any(|p| p.field.to_string() == field && p.message.contains(message)),
            "{replace} → {with}: want `{field}: …{message}…`, got {problems:#?}"
        );
        assert!(problems.iter().all(|p| p.line > 0), "{problems:#?}");
    }
}

#[test]
fn rooms_need_a_media_server_and_a_media_server_needs_rooms() {
    let no_sfu = ROOM.replace("[sfu]\nkind = \"janus\"\n", "");
    let problems = problems(&no_sfu);
    assert!(
        problems
            .iter()
            .any(|p| p.field.to_string() == "rooms[0]" && p.message.contains("give [sfu]")),
        "{problems:#?}"
    );
    let no_rooms =
        "name = \"r\"\nduration = \"3s\"\n[sfu]\nkind = \"janus\"\n[[peers]]\nname = \"a\"\n";
    let problem = only_problem(no_rooms);
    assert_eq!(problem.field.to_string(), "sfu");
    assert!(problem.message.contains("needs rooms"), "{problem}");
}

#[test]
fn a_subscription_to_a_publisher_gone_is_refused_and_crash_server_needs_a_spawned_one() {
    let gone = ROOM.replace(
        "[[events]]\nat = \"2s\"",
        "[[events]]\nat = \"1s\"\ncrash = \"pub-1\"\n\n[[events]]\nat = \"2s\"",
    );
    let found = problems(&gone);
    assert!(
        found.iter().any(|p| p
            .message
            .contains("`late` subscribes to `pub-1`, gone by 2s")),
        "{found:#?}"
    );
    let external = ROOM
        .replace(
            "kind = \"janus\"",
            "kind = \"janus\"\nurl = \"ws://127.0.0.1:8188/\"",
        )
        .replace("subscribe = \"late\"", "crash-server = \"sfu\"");
    let found = problems(&external);
    assert!(
        found
            .iter()
            .any(|p| p.field.to_string() == "events[0].crash-server"
                && p.message.contains("external")),
        "{found:#?}"
    );
}
