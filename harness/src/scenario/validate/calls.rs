//! Part of the validator (see the parent module).

use super::*;

impl Checker<'_> {
    pub(super) fn calls(
        &mut self,
        spec: &CallSpec,
        i: usize,
        names: &Names<'_>,
        duration: Duration,
    ) -> Vec<(Action, FieldPath)> {
        let at_field = FieldPath::default().key("calls").index(i);
        let at = self.when(spec.at, duration, at_field.clone().key("at"));
        let origin = format!("calls[{i}]");
        let pairs = match (&spec.from, &spec.to, spec.topology) {
            (Some(from), Some(to), None) => {
                if spec.among.is_some() || spec.hub.is_some() {
                    self.problem(
                        at_field.clone(),
                        "`among` and `hub` go with `topology`, not with `from`/`to`",
                    );
                }
                let from = self.one_peer(names, from, at_field.clone().key("from"));
                let to = self.one_peer(names, to, at_field.clone().key("to"));
                match (from, to) {
                    (Some(from), Some(to)) => vec![(from, to)],
                    _ => vec![],
                }
            }
            (None, None, Some(topology)) => self.topology(topology, spec, &at_field, names),
            (_, _, Some(_)) => {
                self.problem(
                    at_field.clone().key("topology"),
                    "give `topology` or `from` and `to`, not both",
                );
                vec![]
            }
            (None, _, None) => {
                self.problem(
                    at_field.clone().key("from"),
                    "a call needs `from` and `to`, or a `topology`",
                );
                vec![]
            }
            (Some(_), None, None) => {
                self.problem(at_field.clone().key("to"), "a call needs `to`");
                vec![]
            }
        };
        let spacing = self.spawn_spacing(spec, &at_field, at, pairs.len(), duration);
        let redials = spec
            .redial
            .as_ref()
            .and_then(|redial| self.redial(redial, &at_field.clone().key("redial"), duration));
        let call = |at: Duration, from: usize, to: usize, origin: &str| {
            let verb = Verb::Call {
                from,
                to,
                expect_failure: false,
            };
            let origin = origin.to_owned();
            (Action { at, verb, origin }, at_field.clone())
        };
        let mut actions = Vec::new();
        for (k, (from, to)) in pairs.into_iter().enumerate() {
            let first = at + spacing * k as u32;
            actions.push(call(first, from, to, &origin));
            let Some((every, pause)) = redials else {
                continue;
            };
            let redial_origin = format!("{origin}.redial");
            // Each new call keeps at least one `every` before the end.
            let mut hangup = first + every;
            while hangup + pause + every <= duration {
                actions.push((
                    Action {
                        at: hangup,
                        verb: Verb::Hangup { from, to },
                        origin: redial_origin.clone(),
                    },
                    at_field.clone(),
                ));
                actions.push(call(hangup + pause, from, to, &redial_origin));
                hangup += every;
            }
        }
        actions
    }

    /// A call's redial period and pause, checked.
    pub(super) fn redial(
        &mut self,
        spec: &crate::scenario::file::RedialSpec,
        field: &FieldPath,
        duration: Duration,
    ) -> Option<(Duration, Duration)> {
        let pause = spec.pause.unwrap_or(Duration::from_millis(500));
        let text = |d: Duration| humantime::format_duration(d).to_string();
        if spec.every <= pause {
            self.problem(
                field.clone().key("every"),
                format!(
                    "a call redialled every {} must last longer than the {} pause before it",
                    text(spec.every),
                    text(pause)
                ),
            );
            return None;
        }
        if spec.every * 2 + pause > duration {
            self.problem(
                field.clone().key("every"),
                format!(
                    "every {} never redials within {}: a redialled call needs one period \
                     before it and one after",
                    text(spec.every),
                    text(duration)
                ),
            );
            return None;
        }
        Some((spec.every, pause))
    }

    /// Time between one call of a group and the next: none without a
    /// `spawn_rate`. Every call must start before the scenario ends.
    pub(super) fn spawn_spacing(
        &mut self,
        spec: &CallSpec,
        field: &FieldPath,
        at: Duration,
        calls: usize,
        duration: Duration,
    ) -> Duration {
        let Some(rate) = spec.spawn_rate else {
            return Duration::ZERO;
        };
        let field = field.clone().key("spawn_rate");
        if !(rate.is_finite() && rate > 0.0) {
            self.problem(
                field,
                format!("calls per second must be more than 0, not {rate}"),
            );
            return Duration::ZERO;
        }
        let spacing = Duration::from_secs_f64(1.0 / rate);
        let last = at + spacing * calls.saturating_sub(1) as u32;
        if last >= duration {
            self.problem(
                field,
                format!(
                    "at {rate} per second the last of {calls} calls would start at {}, \
                     not before the scenario ends",
                    humantime::format_duration(Duration::from_millis(last.as_millis() as u64))
                ),
            );
        }
        spacing
    }

    pub(super) fn topology(
        &mut self,
        topology: Topology,
        spec: &CallSpec,
        at: &FieldPath,
        names: &Names<'_>,
    ) -> Vec<(usize, usize)> {
        let mut members = Vec::new();
        match &spec.among {
            None => members.extend(0..names.peers.len()),
            Some(among) => {
                for (j, name) in among.iter().enumerate() {
                    match names.get(name) {
                        Some(Named::Peer(index)) => members.push(index),
                        Some(Named::Group(group)) => members.extend_from_slice(group),
                        None => self.problem(
                            at.clone().key("among").index(j),
                            format!("unknown peer or group `{name}` (known: {})", names.known()),
                        ),
                    }
                }
            }
        }
        let mut unique = HashSet::new();
        members.retain(|m| unique.insert(*m));
        if spec.hub.is_some() && topology != Topology::Star {
            self.problem(at.clone().key("hub"), "only a `star` has a hub");
        }
        match topology {
            Topology::Pairs => {
                if members.len() < 2 || members.len() % 2 == 1 {
                    self.problem(
                        at.clone().key("topology"),
                        format!(
                            "`pairs` needs an even number of peers, and there are {}",
                            members.len()
                        ),
                    );
                    return vec![];
                }
                members.chunks(2).map(|pair| (pair[0], pair[1])).collect()
            }
            Topology::Mesh => {
                if members.len() < 2 {
                    self.problem(
                        at.clone().key("topology"),
                        "`mesh` needs at least two peers",
                    );
                }
                let mut pairs = Vec::new();
                for (k, &a) in members.iter().enumerate() {
                    pairs.extend(members[k + 1..].iter().map(|&b| (a, b)));
                }
                pairs
            }
            Topology::Star => {
                let Some(hub_name) = &spec.hub else {
                    self.problem(at.clone().key("topology"), "a `star` needs a `hub`");
                    return vec![];
                };
                let Some(hub) = self.one_peer(names, hub_name, at.clone().key("hub")) else {
                    return vec![];
                };
                members.retain(|&m| m != hub);
                if members.is_empty() {
                    self.problem(
                        at.clone().key("topology"),
                        "the star has no peers besides its hub",
                    );
                }
                members.into_iter().map(|m| (hub, m)).collect()
            }
        }
    }
}
