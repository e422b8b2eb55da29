//! The verbs of a timeline (DESIGN §6): what each is, how an event of the
//! file reads into one, and what each names and does to calls. A new verb
//! is its field in `file.rs`, its variant and its reading here, and what
//! the runner does for it (`runner/peers.rs`): every match over verbs is
//! exhaustive, so the compiler lists the rest.

use std::net::IpAddr;
use std::time::Duration;

use super::file::{EventSpec, Expect, ImpairSpec};
use super::source::FieldPath;
use super::validate::{Checker, Names, parse_rate, parse_share};
use super::{Action, RestartBy};
use crate::net::{Direction, Impairment, Loss};
use crate::peer::MediaFault;

/// Peer indices into [`Scenario::peers`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Verb {
    /// `from` calls `to`; with `expect_failure`, the call must not connect.
    Call {
        from: usize,
        to: usize,
        expect_failure: bool,
    },
    Hangup {
        from: usize,
        to: usize,
    },
    /// Hang up every call, then close (a graceful departure).
    Leave {
        peer: usize,
    },
    Crash {
        peer: usize,
    },
    Vanish {
        peer: usize,
    },
    Move {
        peer: usize,
        to: std::net::IpAddr,
        restart: RestartBy,
    },
    Impair {
        peer: usize,
        direction: Direction,
        impairment: Impairment,
    },
    Restore {
        peer: usize,
    },
    /// The peer's signaling connection drops; its calls fail.
    DropSignaling {
        peer: usize,
    },
    /// The peer's camera or microphone goes wrong (to the end of the run).
    Media {
        peer: usize,
        fault: crate::peer::MediaFault,
    },
    /// A server the run started dies at once (killed: no goodbye to
    /// anyone); the calls through it lose it.
    CrashServer {
        server: OwnedServer,
    },
    /// The peer publishes its media to its room on the media server.
    Publish {
        peer: usize,
    },
    /// The peer receives `to`'s media through their room. (An event's
    /// `subscribe = "p"` reads as `to == peer` at first, standing for
    /// every publisher of the peer's room; the rooms' check expands it.)
    Subscribe {
        peer: usize,
        to: usize,
    },
}

/// A server the run starts and so can crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OwnedServer {
    /// The TURN server (`[ice] servers = [{ spawn = "coturn" }]`).
    Turn,
    /// The media server (`[sfu]` without a `url`).
    Sfu,
}

impl OwnedServer {
    pub(crate) const NAMES: &'static [&'static str] = &["turn", "sfu"];

    pub(crate) fn name(self) -> &'static str {
        match self {
            OwnedServer::Turn => "turn",
            OwnedServer::Sfu => "sfu",
        }
    }

    fn from_name(name: &str) -> Option<OwnedServer> {
        match name {
            "turn" => Some(OwnedServer::Turn),
            "sfu" => Some(OwnedServer::Sfu),
            _ => None,
        }
    }
}

/// What a fault verb does to the calls it touches, and so which of its
/// effects are measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultClass {
    /// The peer is gone (crash, vanish, leave, drop-signaling): how fast
    /// each partner learns of it.
    Departure,
    /// The peer's address changes (move): ICE back, media back.
    NetworkChange,
    /// The peer's traffic is degraded (impair, to its restore), one way or
    /// both: what each track lost, and its recovery.
    Impairment(Direction),
    /// A server the calls go through is gone (crash-server): how fast each
    /// side of each call through it learns, and its last frame.
    ServerCrash,
}

impl Verb {
    /// Its name in scenario files and reports (a media fault: its kind).
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Verb::Call { .. } => "call",
            Verb::Hangup { .. } => "hangup",
            Verb::Leave { .. } => "leave",
            Verb::Crash { .. } => "crash",
            Verb::Vanish { .. } => "vanish",
            Verb::Move { .. } => "move",
            Verb::Impair { .. } => "impair",
            Verb::Restore { .. } => "restore",
            Verb::DropSignaling { .. } => "drop-signaling",
            Verb::Media { fault, .. } => fault.name(),
            Verb::CrashServer { .. } => "crash-server",
            Verb::Publish { .. } => "publish",
            Verb::Subscribe { .. } => "subscribe",
        }
    }

    /// The peer it is aimed at, for verbs between two.
    pub(crate) fn target(&self) -> Option<usize> {
        match *self {
            Verb::Call { to, .. } | Verb::Hangup { to, .. } | Verb::Subscribe { to, .. } => {
                Some(to)
            }
            Verb::Publish { .. }
            | Verb::Leave { .. }
            | Verb::Crash { .. }
            | Verb::Vanish { .. }
            | Verb::Move { .. }
            | Verb::Impair { .. }
            | Verb::Restore { .. }
            | Verb::DropSignaling { .. }
            | Verb::Media { .. }
            | Verb::CrashServer { .. } => None,
        }
    }

    /// The fault it is, if its effects are measured as one. Calls and
    /// hangups are the timeline; a restore ends an impairment; a media
    /// fault is not excused: the verdicts must catch it.
    pub(crate) fn fault_class(&self) -> Option<FaultClass> {
        match self {
            Verb::Leave { .. }
            | Verb::Crash { .. }
            | Verb::Vanish { .. }
            | Verb::DropSignaling { .. } => Some(FaultClass::Departure),
            Verb::Move { .. } => Some(FaultClass::NetworkChange),
            Verb::Impair { direction, .. } => Some(FaultClass::Impairment(*direction)),
            Verb::CrashServer { .. } => Some(FaultClass::ServerCrash),
            Verb::Call { .. }
            | Verb::Hangup { .. }
            | Verb::Restore { .. }
            | Verb::Media { .. }
            | Verb::Publish { .. }
            | Verb::Subscribe { .. } => None,
        }
    }

    /// The key an event writes it under (`media` for every media fault).
    pub(crate) fn key(&self) -> &'static str {
        match self {
            Verb::Media { .. } => "media",
            Verb::Call { .. }
            | Verb::Hangup { .. }
            | Verb::Leave { .. }
            | Verb::Crash { .. }
            | Verb::Vanish { .. }
            | Verb::Move { .. }
            | Verb::Impair { .. }
            | Verb::Restore { .. }
            | Verb::DropSignaling { .. }
            | Verb::CrashServer { .. }
            | Verb::Publish { .. }
            | Verb::Subscribe { .. } => self.name(),
        }
    }

    /// Why a browser peer cannot be its actor, if it cannot: a browser is
    /// on the machine's own network, not the harness's in-process one, and
    /// its camera and microphone are Chromium's.
    pub(crate) fn browser_refuses(&self) -> Option<&'static str> {
        match self {
            Verb::Vanish { .. }
            | Verb::Move { .. }
            | Verb::Impair { .. }
            | Verb::Restore { .. } => Some(
                "acts on the harness's own network, which a browser does not use \
                     (crash, leave, call and hangup work)",
            ),
            Verb::Media { .. } => Some(
                "media faults are for synthetic peers, whose camera and microphone callprobe draws",
            ),
            Verb::Call { .. }
            | Verb::Hangup { .. }
            | Verb::Leave { .. }
            | Verb::Crash { .. }
            | Verb::DropSignaling { .. }
            | Verb::CrashServer { .. }
            | Verb::Publish { .. }
            | Verb::Subscribe { .. } => None,
        }
    }

    /// The peer that acts (or is acted on); `None` for a server's crash.
    pub(crate) fn actor(&self) -> Option<usize> {
        match *self {
            Verb::Call { from, .. } | Verb::Hangup { from, .. } => Some(from),
            Verb::Publish { peer } | Verb::Subscribe { peer, .. } => Some(peer),
            Verb::Leave { peer }
            | Verb::Crash { peer }
            | Verb::Vanish { peer }
            | Verb::Move { peer, .. }
            | Verb::Impair { peer, .. }
            | Verb::Restore { peer }
            | Verb::DropSignaling { peer }
            | Verb::Media { peer, .. } => Some(peer),
            Verb::CrashServer { .. } => None,
        }
    }

    /// Who acts, in words: a peer's name, or the server's.
    pub(crate) fn actor_name(&self, peers: &[String]) -> String {
        match (self.actor(), self) {
            (Some(peer), _) => peers[peer].clone(),
            (None, Verb::CrashServer { server }) => server.name().to_owned(),
            (None, _) => String::new(),
        }
    }

    /// The same verb with every peer index put through `map` (a shard's
    /// part renumbers its peers).
    pub(crate) fn with_peers(&self, map: &dyn Fn(usize) -> usize) -> Verb {
        let mut verb = self.clone();
        match &mut verb {
            Verb::Call { from, to, .. }
            | Verb::Hangup { from, to }
            | Verb::Subscribe { peer: from, to } => {
                *from = map(*from);
                *to = map(*to);
            }
            Verb::Media { peer, fault } => {
                *peer = map(*peer);
                *fault = fault.with_other(|other| map(usize::from(other)) as u16);
            }
            Verb::Leave { peer }
            | Verb::Crash { peer }
            | Verb::Vanish { peer }
            | Verb::Move { peer, .. }
            | Verb::Impair { peer, .. }
            | Verb::Restore { peer }
            | Verb::DropSignaling { peer }
            | Verb::Publish { peer } => *peer = map(*peer),
            Verb::CrashServer { .. } => {}
        }
        verb
    }

    /// Every peer it names, actor first (a shard keeps them together).
    pub(crate) fn peers(&self) -> Vec<usize> {
        let mut named: Vec<usize> = self.actor().into_iter().collect();
        named.extend(self.target());
        if let Verb::Media { fault, .. } = self {
            named.extend(fault.other().map(usize::from));
        }
        named
    }

    /// Whether the actor's calls end by the scenario's intent (it departs
    /// without failing them): a dropped signaling connection fails them.
    pub(crate) fn ends_calls(&self) -> bool {
        match self {
            Verb::Leave { .. } | Verb::Crash { .. } | Verb::Vanish { .. } => true,
            Verb::DropSignaling { .. }
            | Verb::Call { .. }
            | Verb::Hangup { .. }
            | Verb::Move { .. }
            | Verb::Impair { .. }
            | Verb::Restore { .. }
            | Verb::Media { .. }
            | Verb::CrashServer { .. }
            | Verb::Publish { .. }
            | Verb::Subscribe { .. } => false,
        }
    }

    /// Whether the actor is gone afterwards.
    pub(crate) fn ends_peer(&self) -> bool {
        self.fault_class() == Some(FaultClass::Departure)
    }
}

/// Makes a verb of the one peer it names.
type MakeVerb = fn(usize) -> Verb;

impl Checker<'_> {
    pub(super) fn event(
        &mut self,
        spec: &EventSpec,
        i: usize,
        names: &Names<'_>,
        duration: Duration,
    ) -> Option<(Action, FieldPath)> {
        let field = FieldPath::default().key("events").index(i);
        let at = self.when(Some(spec.at), duration, field.clone().key("at"));
        let count = [
            spec.call.is_some(),
            spec.hangup.is_some(),
            spec.leave.is_some(),
            spec.crash.is_some(),
            spec.vanish.is_some(),
            spec.move_to.is_some(),
            spec.impair.is_some(),
            spec.restore.is_some(),
            spec.media.is_some(),
            spec.drop_signaling.is_some(),
            spec.crash_server.is_some(),
            spec.subscribe.is_some(),
        ]
        .into_iter()
        .filter(|v| *v)
        .count();
        if count != 1 {
            self.problem(
                field,
                format!(
                    "an event has exactly one verb (call, hangup, leave, crash, vanish, move, \
                     impair, restore, media, drop-signaling, crash-server or subscribe); this one \
                     has {count}"
                ),
            );
            return None;
        }
        // The verbs that name one peer: each with how it is written and
        // what it makes.
        let peer_verbs: [(&str, &Option<String>, MakeVerb); 5] = [
            ("leave", &spec.leave, |peer| Verb::Leave { peer }),
            ("crash", &spec.crash, |peer| Verb::Crash { peer }),
            ("vanish", &spec.vanish, |peer| Verb::Vanish { peer }),
            ("restore", &spec.restore, |peer| Verb::Restore { peer }),
            ("drop-signaling", &spec.drop_signaling, |peer| {
                Verb::DropSignaling { peer }
            }),
        ];
        let peer_verb = peer_verbs
            .into_iter()
            .find_map(|(verb, name, make)| name.as_ref().map(|name| (verb, name, make)));
        let verb = if let Some((verb, name, make)) = peer_verb {
            make(self.one_peer(names, name, field.clone().key(verb))?)
        } else if let Some(name) = &spec.subscribe {
            let peer = self.one_peer(names, name, field.clone().key("subscribe"))?;
            Verb::Subscribe { peer, to: peer }
        } else if let Some(name) = &spec.crash_server {
            let Some(server) = OwnedServer::from_name(name) else {
                self.problem(
                    field.clone().key("crash-server"),
                    format!(
                        "`{name}`: the servers a run starts and can crash are {}",
                        OwnedServer::NAMES.join(", ")
                    ),
                );
                return None;
            };
            Verb::CrashServer { server }
        } else if let Some(spec) = &spec.move_to {
            let at = field.clone().key("move");
            let peer = self.one_peer(names, &spec.peer, at.clone().key("peer"));
            let to = self.move_target(spec.to.as_deref(), at.key("to"));
            Verb::Move {
                peer: peer?,
                to: to?,
                restart: spec.restart,
            }
        } else if let Some(spec) = &spec.media {
            let at = field.clone().key("media");
            let peer = self.one_peer(names, &spec.peer, at.clone().key("peer"));
            let other = match &spec.as_peer {
                Some(name) => self
                    .one_peer(names, name, at.clone().key("as"))
                    .map(|i| i as u16),
                // A sender index no peer of the run has.
                None => Some(u16::try_from(names.peers.len()).unwrap_or(u16::MAX - 1)),
            };
            let fault = MediaFault::parse(&spec.fault, other.unwrap_or(0));
            if fault.is_none() {
                self.problem(
                    at.clone().key("fault"),
                    format!(
                        "unknown media fault `{}`; known: {}",
                        spec.fault,
                        MediaFault::NAMES.join(", ")
                    ),
                );
            }
            if spec.as_peer.is_some()
                && !matches!(
                    fault,
                    Some(MediaFault::WrongSender(_) | MediaFault::WrongTone(_))
                )
            {
                self.problem(at.key("as"), "`as` is for `wrong-sender` and `wrong-tone`");
            }
            Verb::Media {
                peer: peer?,
                fault: fault?,
            }
        } else if let Some(spec) = &spec.impair {
            let at = field.clone().key("impair");
            let peer = self.one_peer(names, &spec.peer, at.clone().key("peer"));
            let impairment = self.impairment(spec, at);
            Verb::Impair {
                peer: peer?,
                direction: spec.direction,
                impairment: impairment?,
            }
        } else {
            // A call or a hangup: the one verb left, counted above.
            let (is_call, verb, endpoints) = match (&spec.call, &spec.hangup) {
                (Some(call), _) => (true, "call", call),
                (None, Some(hangup)) => (false, "hangup", hangup),
                (None, None) => unreachable!("one verb, counted above"),
            };
            let from = self.one_peer(names, &endpoints.from, field.clone().key(verb).key("from"));
            let to = self.one_peer(names, &endpoints.to, field.clone().key(verb).key("to"));
            let (from, to) = (from?, to?);
            if !is_call && endpoints.expect != Expect::Connect {
                self.problem(
                    field.clone().key(verb).key("expect"),
                    "`expect` is for calls",
                );
            }
            if is_call {
                Verb::Call {
                    from,
                    to,
                    expect_failure: endpoints.expect == Expect::Fail,
                }
            } else {
                Verb::Hangup { from, to }
            }
        };
        Some((
            Action {
                at,
                verb,
                origin: format!("events[{i}]"),
            },
            field,
        ))
    }

    /// Where a peer moves: given, or the next of 127.0.0.2, 127.0.0.3, …
    fn move_target(&mut self, to: Option<&str>, at: FieldPath) -> Option<IpAddr> {
        let Some(to) = to else {
            self.moves += 1;
            let last = u8::try_from(self.moves + 1).unwrap_or(254).min(254);
            return Some(IpAddr::from([127, 0, 0, last]));
        };
        match to.parse::<IpAddr>() {
            Ok(ip @ IpAddr::V4(v4)) if v4.is_loopback() => Some(ip),
            Ok(_) => {
                self.problem(
                    at,
                    format!(
                        "`{to}` is not in 127.0.0.0/8: callprobe keeps its traffic on loopback"
                    ),
                );
                None
            }
            Err(_) => {
                self.problem(at, format!("`{to}` is not an IP address"));
                None
            }
        }
    }

    /// A share like "5%" as 0.05, or a problem at `at` saying how to write it.
    fn share(&mut self, text: Option<&str>, at: FieldPath) -> Option<f32> {
        let text = text?;
        let share = parse_share(text).map(|share| share as f32);
        if share.is_none() {
            self.problem(
                at,
                format!("`{text}` is not a share from 0% to 100% (write it like \"5%\")"),
            );
        }
        share
    }

    fn impairment(&mut self, spec: &ImpairSpec, at: FieldPath) -> Option<Impairment> {
        let before = self.problems.len();
        let ratio = self.share(spec.loss.as_deref(), at.clone().key("loss"));
        if let Some(burst) = spec.burst {
            if spec.loss.is_none() {
                self.problem(
                    at.clone().key("burst"),
                    "`burst` shapes `loss`; give a `loss` too",
                );
            } else if burst.is_nan() || burst < 1.0 {
                self.problem(
                    at.clone().key("burst"),
                    "a burst is at least 1 datagram long on average",
                );
            }
        }
        let rate_bps = spec.rate.as_deref().and_then(|text| {
            let rate = parse_rate(text);
            if rate.is_none() {
                self.problem(
                    at.clone().key("rate"),
                    format!("`{text}` is not a rate (write it like \"500kbps\" or \"2mbps\")"),
                );
            }
            rate
        });
        let duplicate = self.share(spec.duplicate.as_deref(), at.clone().key("duplicate"));
        if let Some(every) = spec.reorder {
            if every < 2 {
                self.problem(
                    at.clone().key("reorder"),
                    "every `reorder`-th datagram overtakes the others: at least 2",
                );
            } else if spec.delay.unwrap_or_default().is_zero() {
                self.problem(
                    at.clone().key("reorder"),
                    "a datagram overtakes the delay queue: give a `delay` to reorder by",
                );
            }
        }
        let impairment = Impairment {
            duplicate,
            reorder_every: spec.reorder,
            loss: ratio.map(|ratio| match spec.burst {
                Some(mean_burst) => Loss::Bursty { ratio, mean_burst },
                None => Loss::Random { ratio },
            }),
            delay: spec.delay.unwrap_or_default(),
            jitter: spec.jitter.unwrap_or_default(),
            rate_bps,
            blackhole: spec.blackhole,
        };
        if impairment.jitter > impairment.delay {
            self.problem(
                at.clone().key("jitter"),
                "jitter varies the delay both ways, so it cannot exceed `delay`",
            );
        }
        if self.problems.len() == before && impairment.is_clear() {
            self.problem(
                at,
                "impairs nothing: give loss, delay, jitter, rate, blackhole, duplicate or reorder (or use `restore`)",
            );
        }
        (self.problems.len() == before).then_some(impairment)
    }
}
