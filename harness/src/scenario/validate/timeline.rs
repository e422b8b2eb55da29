//! Part of the validator (see the parent module).

use super::peers::no_codec_in_common;
use super::*;

impl Checker<'_> {
    /// The verbs a browser peer cannot be the actor of (`Verb::browser_refuses`).
    pub(super) fn browser_faults(&mut self, actions: &[(Action, FieldPath)], peers: &[PeerPlan]) {
        for (action, field) in actions {
            let Some(actor) = action.verb.actor() else {
                continue;
            };
            let peer = &peers[actor];
            if peer.kind != PeerKind::Browser {
                continue;
            }
            if let Some(why) = action.verb.browser_refuses() {
                self.problem(
                    field.clone().key(action.verb.key()),
                    format!(
                        "`{}` is a browser peer: {} {why}",
                        peer.name,
                        action.verb.name()
                    ),
                );
            }
        }
    }

    /// A data fault needs a data channel to act on.
    pub(super) fn data_faults(&mut self, actions: &[(Action, FieldPath)], has_data: bool) {
        for (action, field) in actions {
            if let Verb::Media { fault, .. } = action.verb
                && fault.is_data()
                && !has_data
            {
                self.problem(
                    field.clone().key("media").key("fault"),
                    format!(
                        "`{}` acts on the calls' data channel, and there is none: give [media] data",
                        fault.name()
                    ),
                );
            }
        }
    }

    /// Plays the timeline on paper: a peer never calls itself or a peer it
    /// is already in a call with, only hangs up calls that are up, and does
    /// nothing after it has left (except be called, which must then fail).
    pub(super) fn timeline(&mut self, actions: &[(Action, FieldPath)], peers: &[PeerPlan]) {
        let mut up: HashMap<(usize, usize), &str> = HashMap::new();
        let mut left: HashMap<usize, &str> = HashMap::new();
        let mut crashed: HashMap<&'static str, String> = HashMap::new();
        let key = |a: usize, b: usize| (a.min(b), a.max(b));
        let name = |i: usize| peers[i].name.as_str();
        for (action, field) in actions {
            let when = humantime::format_duration(action.at);
            let Some(actor) = action.verb.actor() else {
                self.server_crash(action, field, peers, &mut crashed);
                continue;
            };
            if let Some(origin) = left.get(&actor) {
                self.problem(
                    field.clone(),
                    format!("`{}` is already gone ({origin}) at {when}", name(actor)),
                );
                continue;
            }
            if let Verb::Call {
                from,
                to,
                expect_failure,
            } = action.verb
            {
                if from == to {
                    self.problem(field.clone(), format!("`{}` calls itself", name(from)));
                    continue;
                }
                if !expect_failure && let Some(why) = no_codec_in_common(&peers[from], &peers[to]) {
                    self.problem(
                        field.clone(),
                        format!("{why}; say `expect = \"fail\"` to test that the call is refused"),
                    );
                }
                if left.contains_key(&to) {
                    if !expect_failure {
                        self.problem(
                            field.clone(),
                            format!(
                                "`{}` is gone by {when}, so this call cannot connect; \
                                 say `expect = \"fail\"` to test that it fails",
                                name(to)
                            ),
                        );
                    }
                } else if let Some(origin) = up.insert(key(from, to), &action.origin) {
                    self.problem(
                        field.clone(),
                        format!(
                            "`{}` and `{}` are already in a call (from {origin}) at {when}",
                            name(from),
                            name(to)
                        ),
                    );
                }
            } else if let Verb::Hangup { from, to } = action.verb {
                if up.remove(&key(from, to)).is_none() {
                    self.problem(
                        field.clone(),
                        format!(
                            "`{}` and `{}` are not in a call at {when}",
                            name(from),
                            name(to)
                        ),
                    );
                }
            } else if action.verb.ends_peer() {
                // Its calls are over, and it does nothing more.
                up.retain(|&(a, b), _| a != actor && b != actor);
                left.insert(actor, &action.origin);
            }
        }
    }

    /// A server's crash: the run must start that server, and it dies once.
    fn server_crash(
        &mut self,
        action: &Action,
        field: &FieldPath,
        peers: &[PeerPlan],
        crashed: &mut HashMap<&'static str, String>,
    ) {
        let Verb::CrashServer { server } = action.verb else {
            return;
        };
        let field = field.clone().key("crash-server");
        match server {
            OwnedServer::Turn if !peers.iter().any(|p| p.ice.spawned_turn) => self.problem(
                field,
                "the run starts no TURN server to crash: give [ice] servers = [{ spawn = \"coturn\" }]",
            ),
            // Whether the run starts a media server is the rooms' check.
            OwnedServer::Turn | OwnedServer::Sfu => {
                if let Some(origin) = crashed.insert(server.name(), action.origin.clone()) {
                    self.problem(
                        field,
                        format!("the {} server has already crashed ({origin})", server.name()),
                    );
                }
            }
        }
    }
}
