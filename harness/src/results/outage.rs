//! What a server's crash did to the calls that went through it: for a
//! TURN server, every call whose selected pair was relayed when it died;
//! for a media server, every publish and subscription (the one side each
//! has: the peer's). Each side of each such call is measured as a
//! departure's partner is: when ICE said so, when the call failed, and its
//! last verified frame.

use serde::Serialize;

use super::collect::signed_ms;
use super::faults::FaultInput;
use super::{CallKind, CallResult};
use crate::clock::RunTime;
use crate::peer::PeerEventKind;
use crate::scenario::OwnedServer;

/// One side of one call through the crashed server; milliseconds from the
/// crash, `None` where that signal never came.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct OutageSeen {
    /// The side that saw it, and the other side of its call.
    pub peer: String,
    pub remote: String,
    pub ice_disconnected_ms: Option<f64>,
    pub ice_failed_ms: Option<f64>,
    /// Its call ended: failed here, or hung up by the other side's failure.
    pub call_ended_ms: Option<f64>,
    /// The last frame from the remote verified here (negative: before).
    pub last_frame_ms: Option<f64>,
}

impl OutageSeen {
    /// The first signal that said the path was gone (a media server's
    /// crash ends a call before ICE can tell: its signaling goes first).
    pub(crate) fn detected_ms(&self) -> Option<f64> {
        [
            self.ice_disconnected_ms,
            self.ice_failed_ms,
            self.call_ended_ms,
        ]
        .into_iter()
        .flatten()
        .reduce(f64::min)
    }
}

/// Each side of each call through `server` that was up at `at`.
pub(super) fn server_crash(
    input: &FaultInput<'_>,
    server: OwnedServer,
    at: RunTime,
) -> Vec<OutageSeen> {
    let at_ms = signed_ms(at, input.started);
    let mut seen = Vec::new();
    let through = |c: &CallResult| match server {
        OwnedServer::Turn => c.pairs.relayed(),
        OwnedServer::Sfu => c.kind != CallKind::Call,
    };
    let up = input.calls.iter().filter(|c| {
        through(c) && c.started_at_ms <= at_ms && c.ended_at_ms.is_none_or(|e| e >= at_ms)
    });
    for call in up {
        let sides = [(&call.caller, &call.callee), (&call.callee, &call.caller)];
        // A room's call has one peer in it: the other side is the server.
        let sides = if call.kind == CallKind::Call {
            &sides[..]
        } else {
            &sides[..1]
        };
        for &(side, other) in sides {
            let Some(index) = input.names.iter().position(|n| n == side) else {
                continue;
            };
            let mut record = OutageSeen {
                peer: side.clone(),
                remote: other.clone(),
                ..OutageSeen::default()
            };
            for event in input
                .events
                .iter()
                .filter(|e| usize::from(e.peer) == index && e.call == call.call && e.at >= at)
            {
                let slot = match &event.kind {
                    PeerEventKind::IceDisconnected { .. } => &mut record.ice_disconnected_ms,
                    PeerEventKind::IceFailed { .. } => &mut record.ice_failed_ms,
                    PeerEventKind::CallEnded(_) => &mut record.call_ended_ms,
                    _ => continue,
                };
                slot.get_or_insert(signed_ms(event.at, at));
            }
            record.last_frame_ms = call
                .tracks
                .iter()
                .find(|t| &t.receiver == side)
                .and_then(|t| t.video.as_ref())
                .and_then(|v| v.frames.iter().map(|f| f.arrival_ms).reduce(f64::max))
                .map(|arrival| arrival - signed_ms(at, RunTime::ZERO));
            seen.push(record);
        }
    }
    seen
}
