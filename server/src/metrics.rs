//! Counters behind `/metrics`, rendered in the Prometheus text format.
//!
//! Handles to every labelled counter are made once at start so the relay's
//! hot path is one atomic add, not a map lookup.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::protocol::{ErrorCode, RelayAction};

/// Why the server closed a connection (clients closing are not counted here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CloseReason {
    TooLarge,
    BadUtf8,
    Binary,
    RateLimited,
    Idle,
    Stuck,
    Shutdown,
}

impl CloseReason {
    const ALL: [CloseReason; 7] = [
        CloseReason::TooLarge,
        CloseReason::BadUtf8,
        CloseReason::Binary,
        CloseReason::RateLimited,
        CloseReason::Idle,
        CloseReason::Stuck,
        CloseReason::Shutdown,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CloseReason::TooLarge => "too-large",
            CloseReason::BadUtf8 => "bad-utf8",
            CloseReason::Binary => "binary-frame",
            CloseReason::RateLimited => "rate-limited",
            CloseReason::Idle => "idle-timeout",
            CloseReason::Stuck => "outbox-full",
            CloseReason::Shutdown => "shutdown",
        }
    }
}

#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    pub(crate) connections: Gauge,
    pub(crate) connections_accepted: Counter,
    pub(crate) connections_rejected: Counter,
    pub(crate) peers: Gauge,
    pub(crate) calls: Gauge,
    pub(crate) calls_started: Counter,
    pub(crate) peer_left_sent: Counter,
    pub(crate) fields_dropped: Counter,
    pub(crate) origins_refused: Counter,
    relayed: [Counter; RelayAction::ALL.len()],
    errors: [Counter; ErrorCode::ALL.len()],
    closes: [Counter; CloseReason::ALL.len()],
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("callprobe_signaling");
        let connections = Gauge::default();
        registry.register(
            "connections",
            "Open WebSocket connections",
            connections.clone(),
        );
        let connections_accepted = Counter::default();
        registry.register(
            "connections_accepted",
            "WebSocket upgrades accepted",
            connections_accepted.clone(),
        );
        let connections_rejected = Counter::default();
        registry.register(
            "connections_rejected",
            "WebSocket upgrades refused because the connection limit was reached",
            connections_rejected.clone(),
        );
        let peers = Gauge::default();
        registry.register("peers", "Connections that have sent start", peers.clone());
        let calls = Gauge::default();
        registry.register("calls", "Calls in progress", calls.clone());
        let calls_started = Counter::default();
        registry.register(
            "calls_started",
            "Calls opened by an offer",
            calls_started.clone(),
        );
        let peer_left_sent = Counter::default();
        registry.register(
            "peer_left_sent",
            "peerLeft notices sent to remaining peers",
            peer_left_sent.clone(),
        );
        let fields_dropped = Counter::default();
        registry.register(
            "fields_dropped",
            "Fields in relayed messages that the protocol does not define, dropped",
            fields_dropped.clone(),
        );
        let origins_refused = Counter::default();
        registry.register(
            "origins_refused",
            "WebSocket upgrades refused (403) because their Origin is not allowed",
            origins_refused.clone(),
        );

        let relayed = counters_by(
            &mut registry,
            "messages_relayed",
            "Messages relayed, by action",
            "action",
            RelayAction::ALL.map(RelayAction::as_str),
        );
        let errors = counters_by(
            &mut registry,
            "errors",
            "Error replies sent, by code",
            "code",
            ErrorCode::ALL.map(ErrorCode::as_str),
        );
        let closes = counters_by(
            &mut registry,
            "closes",
            "Connections closed by the server, by reason",
            "reason",
            CloseReason::ALL.map(CloseReason::as_str),
        );

        Metrics {
            registry,
            connections,
            connections_accepted,
            connections_rejected,
            peers,
            calls,
            calls_started,
            peer_left_sent,
            fields_dropped,
            origins_refused,
            relayed,
            errors,
            closes,
        }
    }

    pub(crate) fn relayed(&self, action: RelayAction) {
        let index = RelayAction::ALL.iter().position(|a| *a == action);
        self.relayed[index.expect("ALL lists every action")].inc();
    }

    pub(crate) fn error(&self, code: ErrorCode) {
        let index = ErrorCode::ALL.iter().position(|c| *c == code);
        self.errors[index.expect("ALL lists every code")].inc();
    }

    pub(crate) fn closed(&self, reason: CloseReason) {
        let index = CloseReason::ALL.iter().position(|r| *r == reason);
        self.closes[index.expect("ALL lists every reason")].inc();
    }

    /// The Prometheus text exposition of every metric.
    pub(crate) fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// One counter family with a single label, every value created up front so
/// all of them are exported (at 0) from the start.
fn counters_by<const N: usize>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    label: &'static str,
    values: [&'static str; N],
) -> [Counter; N] {
    let family = Family::<Vec<(&'static str, &'static str)>, Counter>::default();
    registry.register(name, help, family.clone());
    values.map(|value| family.get_or_create(&vec![(label, value)]).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_labelled_counter_is_exported_from_the_start() {
        let metrics = Metrics::new();
        metrics.relayed(RelayAction::IceCandidate);
        metrics.error(ErrorCode::NoCall);
        let text = metrics.render();
        assert!(
            text.contains(r#"callprobe_signaling_messages_relayed_total{action="iceCandidate"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"callprobe_signaling_errors_total{code="no-call"} 1"#));
        assert!(text.contains(r#"callprobe_signaling_errors_total{code="too-large"} 0"#));
        assert!(text.contains(r#"callprobe_signaling_closes_total{reason="idle-timeout"} 0"#));
        assert!(text.ends_with("# EOF\n"));
    }
}
