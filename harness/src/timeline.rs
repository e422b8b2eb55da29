//! A call's setup, phase by phase (DESIGN §5), from the peers' events.
//!
//! t0 is the caller's call command. `signaling_ms` is when the callee had
//! the offer; every later phase is as the caller saw it: the answer, ICE,
//! DTLS (connection `connected`), the first RTP, the first verified frame
//! and the first 100 ms of the callee's tone. All on one monotonic clock.

use crate::clock::RunTime;
use crate::peer::{MediaKind, PeerEvent, PeerEventKind};

/// Milliseconds from the call command; `None` where the phase never came.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct SetupTimeline {
    pub signaling_ms: Option<f64>,
    /// The caller's first relayed candidate (its TURN allocation); only
    /// where the caller has a TURN server, so not one of `phases`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_allocated_ms: Option<f64>,
    pub answer_ms: Option<f64>,
    pub ice_connected_ms: Option<f64>,
    /// The call's data channel open at the caller, where it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_open_ms: Option<f64>,
    pub dtls_connected_ms: Option<f64>,
    pub first_rtp_ms: Option<f64>,
    pub first_frame_ms: Option<f64>,
    pub first_audio_ms: Option<f64>,
}

impl SetupTimeline {
    /// The phases in the order a call goes through them.
    pub fn phases(&self) -> [(&'static str, Option<f64>); 7] {
        [
            ("signaling_ms", self.signaling_ms),
            ("answer_ms", self.answer_ms),
            ("ice_connected_ms", self.ice_connected_ms),
            ("dtls_connected_ms", self.dtls_connected_ms),
            ("first_rtp_ms", self.first_rtp_ms),
            ("first_frame_ms", self.first_frame_ms),
            ("first_audio_ms", self.first_audio_ms),
        ]
    }

    /// Every phase happened, and each video-path phase no earlier than the
    /// one before it (audio runs beside video, so it is only required).
    pub fn complete_and_ordered(&self) -> bool {
        let phases = self.phases();
        let all_present = phases.iter().all(|(_, at)| at.is_some());
        let video_path: Vec<f64> = phases[..6].iter().filter_map(|(_, at)| *at).collect();
        all_present && video_path.windows(2).all(|pair| pair[0] <= pair[1])
    }

    /// The timeline of one call from its events (those filed under its
    /// id): `caller` and `callee` are the peers' indices.
    pub fn of_call(events: &[&PeerEvent], caller: u16, callee: u16) -> Option<SetupTimeline> {
        let t0 = events
            .iter()
            .find(|e| e.peer == caller && matches!(e.kind, PeerEventKind::CallCommanded { .. }))?
            .at;
        let since = |at: RunTime| at.saturating_duration_since(t0).as_secs_f64() * 1e3;
        let first = |peer: u16, want: &dyn Fn(&PeerEventKind) -> bool| {
            events
                .iter()
                .filter(|e| e.peer == peer && e.at >= t0)
                .find(|e| want(&e.kind))
                .map(|e| since(e.at))
        };
        let at_caller = |want: &dyn Fn(&PeerEventKind) -> bool| first(caller, want);
        Some(SetupTimeline {
            signaling_ms: first(callee, &|k| {
                matches!(k, PeerEventKind::OfferReceived { .. })
            }),
            relay_allocated_ms: at_caller(&|k| matches!(k, PeerEventKind::RelayAllocated { .. })),
            answer_ms: at_caller(&|k| matches!(k, PeerEventKind::AnswerReceived { .. })),
            ice_connected_ms: at_caller(&|k| matches!(k, PeerEventKind::IceConnected { .. })),
            data_open_ms: at_caller(&|k| matches!(k, PeerEventKind::DataOpen { .. })),
            dtls_connected_ms: at_caller(&|k| matches!(k, PeerEventKind::Connected { .. })),
            first_rtp_ms: at_caller(&|k| {
                matches!(
                    k,
                    PeerEventKind::FirstRtp {
                        kind: MediaKind::Video,
                        ..
                    }
                )
            }),
            first_frame_ms: at_caller(&|k| matches!(k, PeerEventKind::FirstFrame { .. })),
            first_audio_ms: at_caller(&|k| matches!(k, PeerEventKind::FirstAudio { .. })),
        })
    }
}

impl SetupTimeline {
    /// A subscription's setup, all at the subscriber (the other side is
    /// the media server): from its subscribe command, the server's offer
    /// (`signaling_ms`), our answer out (`answer_ms`; a WHEP viewer that
    /// offers: the server's answer in), ICE, DTLS, the first
    /// RTP, the first verified frame and the first 100 ms of the
    /// publisher's tone.
    pub fn of_subscription(events: &[&PeerEvent], subscriber: u16) -> Option<SetupTimeline> {
        let mut timeline = SetupTimeline::of_call(events, subscriber, subscriber)?;
        let t0 = events
            .iter()
            .find(|e| {
                e.peer == subscriber && matches!(e.kind, PeerEventKind::CallCommanded { .. })
            })?
            .at;
        timeline.answer_ms = events
            .iter()
            .filter(|e| e.peer == subscriber && e.at >= t0)
            .find(|e| {
                matches!(
                    e.kind,
                    PeerEventKind::AnswerSent { .. } | PeerEventKind::AnswerReceived { .. }
                )
            })
            .map(|e| e.at.saturating_duration_since(t0).as_secs_f64() * 1e3);
        Some(timeline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::stamp::Stamp;
    use callprobe_server::protocol::PeerId;
    use std::time::Duration;

    #[test]
    fn phases_are_measured_from_the_call_command_on_the_right_sides() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let t0 = RunTime::from_micros(5_000);
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let event = |peer, at, kind| PeerEvent {
            peer,
            at,
            call: None,
            kind,
        };
        let stamp = Stamp {
            sender: 1,
            frame: 0,
            capture_us: 0,
        };
        let events = vec![
            event(0, ms(0), PeerEventKind::CallCommanded { remote: b }),
            event(0, ms(1), PeerEventKind::OfferSent { remote: b }),
            event(1, ms(2), PeerEventKind::OfferReceived { remote: a }),
            // The callee's own phases must not be taken for the caller's.
            event(1, ms(3), PeerEventKind::IceConnected { remote: a }),
            event(0, ms(4), PeerEventKind::AnswerReceived { remote: b }),
            event(0, ms(6), PeerEventKind::IceConnected { remote: b }),
            event(0, ms(12), PeerEventKind::Connected { remote: b }),
            event(
                0,
                ms(14),
                PeerEventKind::FirstRtp {
                    remote: b,
                    kind: MediaKind::Audio,
                },
            ),
            event(
                0,
                ms(15),
                PeerEventKind::FirstRtp {
                    remote: b,
                    kind: MediaKind::Video,
                },
            ),
            event(
                0,
                ms(18),
                PeerEventKind::FirstFrame {
                    remote: b,
                    stamp: Some(stamp),
                },
            ),
            event(0, ms(120), PeerEventKind::FirstAudio { remote: b }),
        ];
        let events: Vec<&PeerEvent> = events.iter().collect();
        let timeline = SetupTimeline::of_call(&events, 0, 1).unwrap();
        assert_eq!(
            timeline.phases().map(|(_, at)| at),
            [
                Some(2.0),
                Some(4.0),
                Some(6.0),
                Some(12.0),
                Some(15.0),
                Some(18.0),
                Some(120.0)
            ]
        );
        assert!(timeline.complete_and_ordered());
    }

    #[test]
    fn a_missing_phase_makes_the_timeline_incomplete() {
        let b = PeerId::random();
        let commanded = PeerEvent {
            peer: 0,
            at: RunTime::ZERO,
            call: None,
            kind: PeerEventKind::CallCommanded { remote: b },
        };
        let events = [&commanded];
        let timeline = SetupTimeline::of_call(&events, 0, 1).unwrap();
        assert!(!timeline.complete_and_ordered());
        assert_eq!(SetupTimeline::of_call(&events, 1, 0), None, "no such call");
    }
}
