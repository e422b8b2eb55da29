//! The run's directory: every started peer by the id the server gave it
//! (so a receiver knows whose stamps and tone to expect), and every call
//! the runner has commanded, by (caller, callee), so a callee files its
//! events under the call the caller was told to make.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use callprobe_server::protocol::PeerId;

use super::events::{CallId, MediaSource};

/// Every peer of a run, by id (whose stamps and tone a receiver expects),
/// and the id of every call the runner has commanded, by (caller, callee),
/// so a callee files its events under the call the caller was told to make.
pub type Directory = Arc<RwLock<Roster>>;

#[derive(Debug, Default)]
pub struct Roster {
    sources: HashMap<PeerId, MediaSource>,
    calls: HashMap<(PeerId, PeerId), CallId>,
}

/// Enters a started peer in the run's directory.
pub(crate) fn register(directory: &Directory, id: PeerId, source: MediaSource) {
    directory
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .sources
        .insert(id, source);
}

/// What media from `id` should carry, if it is a peer of the run.
pub(crate) fn source_of(directory: &Directory, id: PeerId) -> Option<MediaSource> {
    directory
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .sources
        .get(&id)
        .copied()
}

/// Files the call the runner is about to command (before it does).
pub fn book_call(directory: &Directory, caller: PeerId, callee: PeerId, call: CallId) {
    directory
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .calls
        .insert((caller, callee), call);
}

/// The latest call `caller` was told to make to `callee`.
pub(crate) fn booked_call(directory: &Directory, caller: PeerId, callee: PeerId) -> Option<CallId> {
    directory
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .calls
        .get(&(caller, callee))
        .copied()
}
