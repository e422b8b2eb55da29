//! What a peer knows of the others: only what it is told, by message,
//! before it needs it. A caller learns its callee with the `Call` command;
//! a callee learns each caller from an introduction the runner sends
//! before it commands the caller. The introduction is therefore in the
//! callee's inbox before the caller's offer can reach it (sent, then the
//! command, then the offer over the server), so there is no shared map,
//! no lock and no race between them.

use std::collections::HashMap;

use callprobe_server::protocol::PeerId;
use tokio::sync::mpsc;

use super::events::{CallId, MediaSource};

/// A call a peer is about to be offered: who calls, under which id the
/// run files it, and what the caller's media carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Introduction {
    pub caller: PeerId,
    pub call: CallId,
    pub source: MediaSource,
}

/// A peer's introductions, read when an offer opens a call.
#[derive(Debug)]
pub(crate) struct Introductions {
    inbox: mpsc::UnboundedReceiver<Introduction>,
    /// Read from the inbox, not yet taken by an offer: the latest per caller.
    known: HashMap<PeerId, Introduction>,
}

impl Introductions {
    pub(crate) fn channel() -> (mpsc::UnboundedSender<Introduction>, Self) {
        let (sender, inbox) = mpsc::unbounded_channel();
        let introductions = Introductions {
            inbox,
            known: HashMap::new(),
        };
        (sender, introductions)
    }

    /// A call the peer asked for itself (a subscription, whose offer the
    /// media server sends).
    pub(crate) fn expect(&mut self, introduction: Introduction) {
        self.known.insert(introduction.caller, introduction);
    }

    /// The call `caller` was introduced for, taken once its offer arrives;
    /// none for a caller nobody introduced (not a peer of the run).
    pub(crate) fn take(&mut self, caller: PeerId) -> Option<Introduction> {
        while let Ok(introduction) = self.inbox.try_recv() {
            self.known.insert(introduction.caller, introduction);
        }
        self.known.remove(&caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn introduction(caller: PeerId, call: u32) -> Introduction {
        Introduction {
            caller,
            call: CallId(call),
            source: MediaSource::Pattern(7),
        }
    }

    #[test]
    fn an_offer_takes_the_latest_introduction_of_its_caller_once() {
        let (sender, mut introductions) = Introductions::channel();
        let (alice, bob) = (PeerId::random(), PeerId::random());
        sender.send(introduction(alice, 0)).unwrap();
        sender.send(introduction(bob, 1)).unwrap();
        // Alice's first call never reached us; her second did.
        sender.send(introduction(alice, 2)).unwrap();
        assert_eq!(introductions.take(alice), Some(introduction(alice, 2)));
        assert_eq!(introductions.take(alice), None, "taken once");
        assert_eq!(introductions.take(bob), Some(introduction(bob, 1)));
        assert_eq!(introductions.take(PeerId::random()), None);
    }
}
