//! Part of the validator (see the parent module): `[ice]` and a peer's
//! `ice`, servers and policy. URLs are parsed as the `webrtc` crate parses
//! them, and what it would skip with only a log line (TLS, TCP) is refused
//! here, in one line, before anything starts.

use rtc::ice::url::{ProtoType, SchemeType, Url};

use super::*;
use crate::peer::{IcePolicy, IceServer};
use crate::scenario::IcePlan;
use crate::scenario::file::{IceServerSpec, IceSpec};

/// The only TURN server a run can start itself.
const SPAWNABLE: &str = "coturn";

/// One `servers` entry, once checked.
enum ServerEntry {
    Given(IceServer),
    Spawned,
}

impl Checker<'_> {
    /// `spec` over `base` (the run's plan, for a peer's own `ice`): each
    /// field given replaces the base's.
    pub(super) fn ice(&mut self, spec: &IceSpec, base: &IcePlan, at: FieldPath) -> IcePlan {
        let mut plan = base.clone();
        if let Some(servers) = &spec.servers {
            plan.servers.clear();
            plan.spawned_turn = false;
            for (i, server) in servers.iter().enumerate() {
                let field = at.clone().key("servers").index(i);
                match self.ice_server(server, field.clone()) {
                    Some(ServerEntry::Given(server)) => plan.servers.push(server),
                    Some(ServerEntry::Spawned) if plan.spawned_turn => self.problem(
                        field.key("spawn"),
                        "one TURN server per run is started: name it once",
                    ),
                    Some(ServerEntry::Spawned) => plan.spawned_turn = true,
                    None => {}
                }
            }
        }
        if let Some(policy) = &spec.policy {
            match policy.as_str() {
                "all" => plan.policy = IcePolicy::All,
                "relay" => plan.policy = IcePolicy::Relay,
                other => self.problem(
                    at.clone().key("policy"),
                    format!("`{other}`: the policy is \"all\" or \"relay\""),
                ),
            }
        }
        if plan.policy == IcePolicy::Relay && !plan.has_turn() {
            self.problem(
                at.key("policy"),
                "policy \"relay\" needs a TURN server: a `turn:` URL in `servers`, or { spawn = \"coturn\" }",
            );
        }
        plan
    }

    fn ice_server(&mut self, spec: &IceServerSpec, at: FieldPath) -> Option<ServerEntry> {
        if let Some(spawn) = &spec.spawn {
            if spawn != SPAWNABLE {
                self.problem(
                    at.key("spawn"),
                    format!("`{spawn}`: the TURN server callprobe can start is \"{SPAWNABLE}\""),
                );
                return None;
            }
            let given = [
                (!spec.urls.is_empty(), "urls"),
                (spec.username.is_some(), "username"),
                (spec.username_env.is_some(), "username_env"),
                (spec.credential.is_some(), "credential"),
                (spec.credential_env.is_some(), "credential_env"),
            ];
            if let Some((_, field)) = given.iter().find(|(set, _)| *set) {
                self.problem(
                    at.key(field),
                    "a server the run starts makes up its own URL and credentials: leave this out",
                );
                return None;
            }
            return Some(ServerEntry::Spawned);
        }
        if spec.urls.is_empty() {
            self.problem(
                at.key("urls"),
                "name at least one `stun:` or `turn:` URL (or spawn = \"coturn\")",
            );
            return None;
        }
        let mut turn = false;
        let mut usable = true;
        for (j, url) in spec.urls.iter().enumerate() {
            match check_url(url) {
                Ok(is_turn) => turn |= is_turn,
                Err(why) => {
                    self.problem(at.clone().key("urls").index(j), format!("`{url}`: {why}"));
                    usable = false;
                }
            }
        }
        let username = self.secret(
            spec.username.as_ref(),
            spec.username_env.as_ref(),
            turn,
            &at,
            "username",
        );
        let credential = self.secret(
            spec.credential.as_ref(),
            spec.credential_env.as_ref(),
            turn,
            &at,
            "credential",
        );
        let (Some(username), Some(credential), true) = (username, credential, usable) else {
            return None;
        };
        Some(ServerEntry::Given(IceServer {
            urls: spec.urls.clone(),
            username,
            credential,
        }))
    }

    /// A username or credential, written or from the environment; a TURN
    /// server needs both. Its value is never part of a problem.
    fn secret(
        &mut self,
        written: Option<&String>,
        variable: Option<&String>,
        required: bool,
        at: &FieldPath,
        field: &str,
    ) -> Option<String> {
        let env_field = format!("{field}_env");
        match (written, variable) {
            (Some(_), Some(_)) => {
                self.problem(
                    at.clone().key(&env_field),
                    format!("give `{field}` or `{env_field}`, not both"),
                );
                None
            }
            (Some(value), None) => Some(value.clone()),
            // Judging a record connects to nothing: the secret is not needed.
            (None, Some(_)) if self.recorded => Some(String::new()),
            (None, Some(variable)) => match std::env::var(variable) {
                Ok(value) if !value.is_empty() => Some(value),
                _ => {
                    self.problem(
                        at.clone().key(&env_field),
                        format!("the environment variable `{variable}` is not set"),
                    );
                    None
                }
            },
            (None, None) if required => {
                self.problem(
                    at.clone().key(field),
                    format!("a TURN server needs a {field} (`{field}`, or `{env_field}` naming an environment variable)"),
                );
                None
            }
            (None, None) => Some(String::new()),
        }
    }
}

/// Whether `url` is a TURN URL the library can use (else a STUN one), or
/// why it is not usable.
fn check_url(url: &str) -> Result<bool, String> {
    let parsed = Url::parse_url(url).map_err(|e| format!("not a STUN or TURN URL ({e})"))?;
    match parsed.scheme {
        SchemeType::Stun => Ok(false),
        SchemeType::Turn if parsed.proto == ProtoType::Udp => Ok(true),
        SchemeType::Turn => Err(
            "TURN over TCP is not supported by the webrtc crate callprobe uses (0.21): use ?transport=udp"
                .into(),
        ),
        SchemeType::Stuns | SchemeType::Turns => Err(
            "STUN and TURN over TLS are not supported by the webrtc crate callprobe uses (0.21): use stun: or turn: over UDP"
                .into(),
        ),
        _ => Err("the scheme is stun: or turn:".into()),
    }
}
