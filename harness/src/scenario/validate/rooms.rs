//! Part of the validator (see the parent module): `[sfu]` and `[[rooms]]`,
//! the media server the peers meet in and who publishes and subscribes in
//! each room, and the timeline verbs a room scenario can and cannot take.

use super::super::file::{RoomSpec, SfuSpec, Subscribers};
use super::super::{RoomPlan, SfuPlan, SfuServer};
use super::*;

/// What the rooms' check makes of the file.
pub(super) struct Rooms {
    pub(super) sfu: Option<SfuPlan>,
    /// Each room's publishes and subscriptions at its `at`.
    pub(super) actions: Vec<(Action, FieldPath)>,
    /// Each peer's room, by index.
    pub(super) room_of: Vec<Option<usize>>,
}

/// The media servers callprobe drives.
const SFU_KINDS: &[&str] = &["janus", "whip"];

impl Checker<'_> {
    /// The media server and its rooms, each peer's room (by index), and
    /// what each room does at its `at`: its publishers publish, then its
    /// subscribers subscribe to every publisher but themselves.
    pub(super) fn rooms(
        &mut self,
        file: &ScenarioFile,
        names: &Names<'_>,
        peers: &[PeerPlan],
    ) -> Rooms {
        let root = FieldPath::default();
        let mut room_of = vec![None; peers.len()];
        let whip = file.sfu.as_ref().is_some_and(|sfu| sfu.kind == "whip");
        for peer in peers.iter().filter(|p| p.misbehave.wrong_token && !whip) {
            self.problem(
                root.clone().key("peers"),
                format!(
                    "`{}`: misbehaviour `wrong-token` is for WHIP and WHEP peers ([sfu] kind = \"whip\")",
                    peer.name
                ),
            );
        }
        let Some(spec) = &file.sfu else {
            if !file.rooms.is_empty() {
                self.problem(
                    root.key("rooms").index(0),
                    "rooms are on a media server: give [sfu] (kind = \"janus\")",
                );
            }
            return Rooms {
                sfu: None,
                actions: Vec::new(),
                room_of,
            };
        };
        let server = self.sfu_server(spec, file.rooms.len());
        if file.rooms.is_empty() {
            self.problem(
                root.clone().key("sfu"),
                "a media server needs rooms to meet in: give [[rooms]] with publishers and subscribers",
            );
        }
        if !file.calls.is_empty() {
            self.problem(
                root.clone().key("calls").index(0),
                "the peers of a scenario with [sfu] meet in rooms: they publish and subscribe, \
                 and do not call each other (no [[calls]])",
            );
        }
        if file.media.data.is_some() {
            self.problem(
                root.clone().key("media").key("data"),
                "data channels through a media server are not supported yet",
            );
        }
        let mut rooms = Vec::new();
        let mut actions = Vec::new();
        for (i, room) in file.rooms.iter().enumerate() {
            let field = root.clone().key("rooms").index(i);
            let plan = self.room(room, &field, names);
            for &member in &plan.members {
                match room_of[member] {
                    Some(other) => self.problem(
                        field.clone(),
                        format!(
                            "`{}` is in rooms[{other}] already: a peer is in one room",
                            peers[member].name
                        ),
                    ),
                    None => room_of[member] = Some(i),
                }
            }
            let at = self.when(room.at, file.duration, field.clone().key("at"));
            actions.extend(room_actions(room, &plan, names, at, i, &field));
            rooms.push(plan);
        }
        for (peer, room) in peers.iter().zip(&room_of) {
            if room.is_none() && !file.rooms.is_empty() {
                self.problem(
                    root.clone().key("rooms"),
                    format!(
                        "`{}` is in no room: every peer of a scenario with [sfu] is in one",
                        peer.name
                    ),
                );
            }
            if peer.kind == PeerKind::Browser {
                self.problem(
                    root.clone().key("rooms"),
                    format!(
                        "`{}` is a browser peer: rooms take synthetic peers only, so far",
                        peer.name
                    ),
                );
            }
            if !peer.ice.servers.is_empty() || peer.ice.spawned_turn {
                self.problem(
                    root.clone().key("ice"),
                    "STUN and TURN servers with a media server are not supported yet",
                );
                break;
            }
        }
        Rooms {
            sfu: Some(SfuPlan { server, rooms }),
            actions,
            room_of,
        }
    }

    fn sfu_server(&mut self, spec: &SfuSpec, rooms: usize) -> SfuServer {
        let at = FieldPath::default().key("sfu");
        if !SFU_KINDS.contains(&spec.kind.as_str()) {
            self.problem(
                at.clone().key("kind"),
                format!(
                    "`{}`: the media servers callprobe drives are {}",
                    spec.kind,
                    SFU_KINDS.join(", ")
                ),
            );
        }
        if spec.kind == "whip" {
            if spec.url.is_some() || spec.room.is_some() {
                self.problem(
                    at.key(if spec.url.is_some() { "url" } else { "room" }),
                    "`whip`: the run starts its own WHIP and WHEP servers (with a Janus behind \
                     them); external WHIP servers are not supported yet",
                );
            }
            return SfuServer::SpawnWhip;
        }
        match (&spec.url, spec.room) {
            (None, Some(_)) => {
                self.problem(
                    at.key("room"),
                    "`room` names a room on an external server: give its `url` too \
                     (a server the run starts has none until the run makes them)",
                );
                SfuServer::SpawnJanus
            }
            (None, None) => SfuServer::SpawnJanus,
            (Some(url), room) => {
                if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                    self.problem(
                        at.clone().key("url"),
                        format!("`{url}` is not a WebSocket URL (ws://… or wss://…)"),
                    );
                }
                if room.is_some() && rooms > 1 {
                    self.problem(
                        at.key("room"),
                        "one given `room` serves one [[rooms]] entry",
                    );
                }
                SfuServer::ExternalJanus {
                    url: url.clone(),
                    room,
                }
            }
        }
    }

    /// A room's members (publishers, subscribers and members alike).
    fn room(&mut self, spec: &RoomSpec, field: &FieldPath, names: &Names<'_>) -> RoomPlan {
        let publishers = self.named(&spec.publishers, field.clone().key("publishers"), names);
        let mut members = publishers.clone();
        match &spec.subscribers {
            Some(Subscribers::Every(all)) if all != "all" => self.problem(
                field.clone().key("subscribers"),
                format!("`{all}`: write \"all\", or a list of peers and groups"),
            ),
            Some(Subscribers::Named(list)) => {
                members.extend(self.named(list, field.clone().key("subscribers"), names));
            }
            // Every peer of the run.
            Some(Subscribers::Every(_)) => members.extend(0..names.peers.len()),
            None => {}
        }
        members.extend(self.named(&spec.members, field.clone().key("members"), names));
        if publishers.is_empty() {
            self.problem(
                field.clone().key("publishers"),
                "a room needs at least one publisher",
            );
        }
        let mut seen = HashSet::new();
        members.retain(|m| seen.insert(*m));
        RoomPlan {
            members,
            publishers,
        }
    }

    /// Peers and groups by name, in order, each once.
    fn named(&mut self, list: &[String], field: FieldPath, names: &Names<'_>) -> Vec<usize> {
        let mut peers = Vec::new();
        for (j, name) in list.iter().enumerate() {
            match names.get(name) {
                Some(Named::Peer(index)) => peers.push(index),
                Some(Named::Group(group)) => peers.extend_from_slice(group),
                None => self.problem(
                    field.clone().index(j),
                    format!("unknown peer or group `{name}` (known: {})", names.known()),
                ),
            }
        }
        let mut seen = HashSet::new();
        peers.retain(|p| seen.insert(*p));
        peers
    }

    /// The timeline of a room scenario: `subscribe` events expanded to
    /// each publisher of the peer's room; verbs between two peers refused
    /// (they meet in rooms); subscriptions to a publisher that has gone, or
    /// twice to the same, refused; `crash-server = "sfu"` only where the run
    /// starts the server.
    pub(super) fn room_timeline(
        &mut self,
        actions: Vec<(Action, FieldPath)>,
        sfu: Option<&SfuPlan>,
        peers: &[PeerPlan],
        room_of: &[Option<usize>],
    ) -> Vec<(Action, FieldPath)> {
        let mut expanded = Vec::new();
        for (action, field) in actions {
            let verb = &action.verb;
            let Some(sfu) = sfu else {
                match verb {
                    Verb::Subscribe { .. } => self.problem(
                        field.clone().key("subscribe"),
                        "`subscribe` is to a room's publishers: give [sfu] and [[rooms]]",
                    ),
                    Verb::CrashServer {
                        server: OwnedServer::Sfu,
                    } => self.problem(
                        field.clone().key("crash-server"),
                        "the run starts no media server to crash: give [sfu]",
                    ),
                    _ => {}
                }
                expanded.push((action, field));
                continue;
            };
            match *verb {
                Verb::Call { .. } | Verb::Hangup { .. } | Verb::Move { .. } => {
                    self.problem(
                        field.clone().key(verb.key()),
                        format!(
                            "`{}` is not for a room scenario: its peers publish and subscribe \
                             through the media server",
                            verb.name()
                        ),
                    );
                }
                Verb::CrashServer {
                    server: OwnedServer::Sfu,
                } if !matches!(sfu.server, SfuServer::SpawnJanus | SfuServer::SpawnWhip) => self
                    .problem(
                        field.clone().key("crash-server"),
                        "the media server is external: the run can only crash one it starts",
                    ),
                Verb::Subscribe { peer, to } if peer == to => {
                    let publishers = room_of[peer]
                        .map(|room| sfu.rooms[room].publishers.clone())
                        .unwrap_or_default();
                    let others: Vec<usize> =
                        publishers.into_iter().filter(|p| *p != peer).collect();
                    if others.is_empty() {
                        self.problem(
                            field.clone().key("subscribe"),
                            format!("`{}`'s room has no publisher but it", peers[peer].name),
                        );
                    }
                    for to in others {
                        let verb = Verb::Subscribe { peer, to };
                        expanded.push((
                            Action {
                                verb,
                                ..action.clone()
                            },
                            field.clone(),
                        ));
                    }
                    continue;
                }
                _ => {}
            }
            expanded.push((action, field));
        }
        if sfu.is_some() {
            self.subscriptions_on_paper(&expanded, peers);
        }
        expanded
    }

    /// Plays the subscriptions on paper: never to a publisher already gone,
    /// never twice to the same one.
    fn subscriptions_on_paper(&mut self, actions: &[(Action, FieldPath)], peers: &[PeerPlan]) {
        let mut gone: HashMap<usize, &str> = HashMap::new();
        let mut subscribed: HashSet<(usize, usize)> = HashSet::new();
        let mut published: HashSet<usize> = HashSet::new();
        for (action, field) in actions {
            let when = humantime::format_duration(action.at);
            match action.verb {
                Verb::Publish { peer } => {
                    published.insert(peer);
                }
                Verb::Subscribe { peer, to } => {
                    let (who, whom) = (&peers[peer].name, &peers[to].name);
                    if let Some(origin) = gone.get(&to) {
                        self.problem(
                            field.clone(),
                            format!("`{who}` subscribes to `{whom}`, gone by {when} ({origin})"),
                        );
                    } else if !published.contains(&to) {
                        self.problem(
                            field.clone(),
                            format!(
                                "`{who}` subscribes to `{whom}`, which does not publish by {when}"
                            ),
                        );
                    } else if !subscribed.insert((peer, to)) {
                        self.problem(
                            field.clone(),
                            format!("`{who}` subscribes to `{whom}` twice"),
                        );
                    }
                }
                ref verb if verb.ends_peer() => {
                    if let Some(actor) = verb.actor() {
                        gone.insert(actor, &action.origin);
                    }
                }
                _ => {}
            }
        }
    }
}

/// What a room does at its `at`: each publisher publishes, then each
/// subscriber subscribes to every publisher but itself.
fn room_actions(
    spec: &RoomSpec,
    plan: &RoomPlan,
    names: &Names<'_>,
    at: Duration,
    i: usize,
    field: &FieldPath,
) -> Vec<(Action, FieldPath)> {
    let origin = format!("rooms[{i}]");
    let subscribers: Vec<usize> = match &spec.subscribers {
        Some(Subscribers::Every(_)) => plan.members.clone(),
        Some(Subscribers::Named(list)) => list
            .iter()
            .flat_map(|name| match names.get(name) {
                Some(Named::Peer(index)) => vec![index],
                Some(Named::Group(group)) => group.to_vec(),
                None => vec![],
            })
            .collect(),
        None => Vec::new(),
    };
    let action = |verb| {
        let origin = origin.clone();
        (Action { at, verb, origin }, field.clone())
    };
    let mut actions: Vec<_> = plan
        .publishers
        .iter()
        .map(|&peer| action(Verb::Publish { peer }))
        .collect();
    let mut seen = HashSet::new();
    for peer in subscribers.into_iter().filter(|p| seen.insert(*p)) {
        for &to in plan.publishers.iter().filter(|&&p| p != peer) {
            actions.push(action(Verb::Subscribe { peer, to }));
        }
    }
    actions
}
