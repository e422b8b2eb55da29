//! One direction of a call's data channel, judged: what the sender sent
//! and the receiver got over the call's span, and the sender's round trips
//! by the receiver's echoes.

use serde::Serialize;

use crate::peer::DataSettings;
use crate::threshold::percentile;
use crate::verify::data::DataVerdict;

/// A data channel's messages one way.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DataResult {
    /// The channel opened at both ends.
    pub opened: bool,
    pub sent: u32,
    pub received: u32,
    /// Messages the span asked for: one per interval from the sender's
    /// opening to the call's end, less those still in flight then.
    pub expected: u32,
    pub lost: u32,
    pub duplicated: u32,
    pub reordered: u32,
    pub corrupt: u32,
    pub wrong_sender: u32,
    /// Received over expected, at most 1 (1 when nothing was due).
    pub delivered_ratio: f64,
    pub throughput_kbps: Option<f64>,
    pub rtt_p50_ms: Option<f64>,
    pub rtt_p95_ms: Option<f64>,
    /// The sender's round trips, each (for the metric; not in the JSON).
    #[serde(skip)]
    pub rtt_ms: Vec<f64>,
}

/// The SCTP retransmission timeout's floor in the `webrtc` crate
/// (`rtc-sctp`, `RTO_MIN`), and RFC 9260's.
const SCTP_RTO_MIN_US: f64 = 1e6;

/// The direction from the side that `sent` to the side that `received`,
/// over a call that ended at `end_us` on the peers' clock.
pub(super) fn judge(
    received: Option<&DataVerdict>,
    sent: Option<&DataVerdict>,
    settings: &DataSettings,
    end_us: f64,
) -> DataResult {
    let (Some(received), Some(sent)) = (received, sent) else {
        return DataResult::default();
    };
    let (Some(_), Some(opened_us)) = (received.opened_us, sent.opened_us) else {
        return DataResult {
            sent: sent.sent,
            received: received.received,
            ..DataResult::default()
        };
    };
    let mut rtt = sent.rtt_ms.clone();
    rtt.sort_by(f64::total_cmp);
    let rtt_p50 = (!rtt.is_empty()).then(|| percentile(&rtt, 50.0));
    // What was still on its way when the call ended: a round trip or two
    // (retransmissions), an interval, and a floor for the scheduler.
    let interval_us = settings.interval.as_secs_f64() * 1e6;
    // A reliable channel's last messages, lost once, are sent again only
    // when SCTP's retransmission timer fires (no later message's SACK
    // shows the gap): one timeout more, at its 1 s minimum.
    let retransmission_us = if settings.reliable() {
        SCTP_RTO_MIN_US
    } else {
        0.0
    };
    let in_flight_us =
        (2.0 * rtt_p50.unwrap_or(100.0) * 1e3).max(50_000.0) + interval_us + retransmission_us;
    let due_us = end_us - in_flight_us - opened_us as f64;
    let expected = if due_us < 0.0 {
        0
    } else {
        (due_us / interval_us).floor() as u32 + 1
    };
    // Of what was sent, those sent in the last in-flight window may still
    // be on their way (a sender that fell behind its schedule sends fewer
    // than `expected`, so the window is taken off its own count too).
    let tail = (in_flight_us / interval_us).ceil() as u32;
    let due = expected.min(sent.sent.saturating_sub(tail));
    let beyond_highest = received
        .highest_seq
        .map_or(due, |highest| due.saturating_sub(highest + 1));
    let throughput_kbps = match (received.first_us, received.last_us) {
        (Some(first), Some(last)) if last > first => {
            Some(received.bytes_received as f64 * 8.0 / ((last - first) as f64 / 1e6) / 1e3)
        }
        _ => None,
    };
    DataResult {
        opened: true,
        sent: sent.sent,
        received: received.received,
        expected,
        lost: received.gaps + beyond_highest,
        duplicated: received.duplicated,
        reordered: received.reordered,
        corrupt: received.corrupt,
        wrong_sender: received.wrong_sender,
        delivered_ratio: if expected == 0 {
            1.0
        } else {
            (f64::from(received.received) / f64::from(expected)).min(1.0)
        },
        throughput_kbps,
        rtt_p50_ms: rtt_p50,
        rtt_p95_ms: (!rtt.is_empty()).then(|| percentile(&rtt, 95.0)),
        rtt_ms: rtt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SETTINGS: DataSettings = DataSettings {
        ordered: true,
        max_retransmits: None,
        interval: Duration::from_millis(100),
        size: 1024,
    };

    fn verdict(opened_us: u64, sent: u32, received: u32, highest: Option<u32>) -> DataVerdict {
        DataVerdict {
            opened_us: Some(opened_us),
            sent,
            received,
            highest_seq: highest,
            bytes_received: u64::from(received) * 1024,
            first_us: Some(opened_us),
            last_us: highest.map(|h| opened_us + u64::from(h) * 100_000),
            rtt_ms: vec![1.0, 2.0, 3.0],
            ..DataVerdict::default()
        }
    }

    #[test]
    fn every_message_due_delivered_is_a_full_ratio_and_no_loss() {
        // Open at 1 s, call over at 3 s: 20 messages sent, all received;
        // the last 1.15 s may have been in flight (a retransmission timeout
        // and an interval), so 9 were due.
        let result = judge(
            Some(&verdict(1_000_000, 20, 20, Some(19))),
            Some(&verdict(1_000_000, 20, 20, Some(19))),
            &SETTINGS,
            3_000_000.0,
        );
        assert!(result.opened);
        assert_eq!((result.lost, result.delivered_ratio), (0, 1.0));
        assert_eq!(result.expected, 9, "{result:?}");
        assert_eq!(result.rtt_p50_ms, Some(2.0));
        let kbps = result.throughput_kbps.unwrap();
        assert!(
            (kbps - 20.0 * 1024.0 * 8.0 / 1.9 / 1e3).abs() < 0.1,
            "{kbps}"
        );
    }

    #[test]
    fn a_sender_that_stops_or_a_channel_that_never_opens_fails_the_ratio() {
        // The receiver got the first 5 of 40, and nothing after.
        let stopped = judge(
            Some(&verdict(1_000_000, 0, 5, Some(4))),
            Some(&verdict(1_000_000, 40, 0, None)),
            &SETTINGS,
            5_000_000.0,
        );
        // 40 sent, the last 12 (1.15 s) maybe in flight: 28 due, 5 came.
        assert_eq!(stopped.lost, 23, "{stopped:?}");
        assert!(stopped.delivered_ratio < 0.3, "{stopped:?}");
        let mut never = verdict(0, 0, 0, None);
        never.opened_us = None;
        let unopened = judge(Some(&never), Some(&never), &SETTINGS, 3_000_000.0);
        assert!(!unopened.opened);
        assert_eq!(unopened.delivered_ratio, 0.0);
    }
}
