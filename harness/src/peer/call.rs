//! One call's life as a plain state machine (the str0m way): inputs with
//! the time they happened, outputs for the peer to act on, and the next
//! deadline. No sockets and no tasks: the synthetic peer and the browser
//! peer both drive it, and each transition is tested on its own.
//!
//! ```text
//!  caller: Offering ──answer──▶ Connecting ──connected──▶ Connected
//!  callee: Answering ─answer sent─┘   │ ICE up / down         │ ICE down, up (a restart)
//!                                     ▼                       ▼
//!                         Ended(why): no answer, ICE timeout, DTLS failed,
//!                         ICE failed, hung up, remote hung up, peer left
//! ```

use std::time::{Duration, Instant};

use super::events::{CallEnd, CallFailure, Role};

/// How long a call may wait for each step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallTimeouts {
    /// A caller with no answer after this long fails.
    pub answer: Duration,
    /// A negotiated call not connected (ICE and DTLS) after this fails.
    pub connect: Duration,
}

/// Where a call is.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum CallState {
    /// Caller: the offer is out, no answer yet.
    Offering {
        answer_by: Instant,
    },
    /// Callee: an offer came; our answer is not out yet.
    Answering,
    /// Negotiated: ICE and DTLS are not both up yet.
    Connecting {
        connect_by: Instant,
        ice_up: bool,
    },
    /// Connected at least once: media flows (ICE may drop and come back).
    Connected {
        ice_up: bool,
        /// The server said the remote has gone; the call is kept until
        /// ICE gives up too, so a report shows when each signal came.
        remote_left: bool,
    },
    Ended(CallEnd),
}

/// What happened to the call.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum CallInput {
    /// Our offer went out (an ICE restart's too).
    OfferSent,
    /// The remote's offer came (a restart, once the call is up).
    OfferReceived,
    /// Our offer was answered by an offer (a WHEP server that makes its
    /// own): we rolled ours back and answer theirs.
    CounterOffered,
    AnswerSent,
    AnswerReceived,
    /// An answer came but could not be applied: the server has a call
    /// now, so the remote is told of the failure.
    AnswerUnusable(CallFailure),
    IceConnected,
    /// ICE is checking again (a restart): the next `IceConnected` is news.
    IceChecking,
    IceDisconnected,
    IceFailed,
    /// ICE and DTLS are both up.
    Connected,
    /// The connection failed (ICE gave up, or DTLS did).
    ConnectionFailed,
    /// The server said the remote's socket closed.
    PeerLeft,
    RemoteHungUp,
    /// We end it: a command, or the peer closing.
    HangUp,
    /// It failed outside this machine: negotiation, signaling, our setup.
    Failed(CallFailure),
    /// Our side crashed or vanished: nobody is told.
    Abandoned,
    /// Whatever runs the call's protocol ended it already, for this
    /// reason (a browser's page ends its own calls and says why).
    EndedBy(CallEnd),
}

/// What the peer does about it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum CallOutput {
    /// Negotiated (once per call): get media ready to go.
    Negotiated,
    /// ICE is up (again): report it.
    IceUp,
    IceDown,
    /// ICE gave up (reported once per call).
    IceGaveUp,
    /// Connected for the first time: media goes.
    Up,
    /// The call is over: close it, and tell the remote if `tell_remote`.
    End {
        end: CallEnd,
        tell_remote: bool,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct CallMachine {
    role: Role,
    state: CallState,
    timeouts: CallTimeouts,
    ice_failure_told: bool,
}

impl CallMachine {
    /// A call we made: our offer has just gone out.
    pub(crate) fn caller(now: Instant, timeouts: CallTimeouts) -> Self {
        CallMachine::starting(
            Role::Caller,
            CallState::Offering {
                answer_by: now + timeouts.answer,
            },
            timeouts,
        )
    }

    /// A call offered to us.
    pub(crate) fn callee(timeouts: CallTimeouts) -> Self {
        CallMachine::starting(Role::Callee, CallState::Answering, timeouts)
    }

    fn starting(role: Role, state: CallState, timeouts: CallTimeouts) -> Self {
        CallMachine {
            role,
            state,
            timeouts,
            ice_failure_told: false,
        }
    }

    pub(crate) fn role(&self) -> Role {
        self.role
    }

    pub(crate) fn state(&self) -> &CallState {
        &self.state
    }

    /// A caller still waiting for its answer (a server that names no
    /// sender leaves the answer's call to be guessed by this).
    pub(crate) fn awaits_answer(&self) -> bool {
        matches!(self.state, CallState::Offering { .. })
    }

    /// ICE is up now.
    pub(crate) fn ice_up(&self) -> bool {
        matches!(
            self.state,
            CallState::Connecting { ice_up: true, .. } | CallState::Connected { ice_up: true, .. }
        )
    }

    /// Connected, now or before.
    pub(crate) fn was_connected(&self) -> bool {
        matches!(self.state, CallState::Connected { .. })
    }

    /// When [`CallMachine::handle_timeout`] has something to do.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            CallState::Offering { answer_by } => Some(answer_by),
            CallState::Connecting { connect_by, .. } => Some(connect_by),
            CallState::Answering | CallState::Connected { .. } | CallState::Ended(_) => None,
        }
    }

    /// The time has come to `now`: an overdue answer or connection fails
    /// the call.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Vec<CallOutput> {
        let failure = match self.state {
            CallState::Offering { answer_by } if now >= answer_by => {
                CallFailure::NoAnswer(self.timeouts.answer)
            }
            CallState::Connecting {
                connect_by,
                ice_up: true,
            } if now >= connect_by => CallFailure::DtlsFailed(format!(
                "not connected {} after ICE connected (the handshake, or the certificate \
                 fingerprint check, failed)",
                humantime::format_duration(self.timeouts.connect)
            )),
            CallState::Connecting {
                connect_by,
                ice_up: false,
            } if now >= connect_by => CallFailure::IceTimeout(self.timeouts.connect),
            _ => return Vec::new(),
        };
        self.end(CallEnd::Failed(failure))
    }

    /// Takes one input at `now`; what the peer must do about it.
    pub(crate) fn handle(&mut self, input: CallInput, now: Instant) -> Vec<CallOutput> {
        use CallInput as In;
        use CallState as S;
        let connecting = |timeouts: &CallTimeouts| S::Connecting {
            connect_by: now + timeouts.connect,
            ice_up: false,
        };
        match (&mut self.state, input) {
            // Over is over: late news changes nothing.
            (S::Ended(_), _) => Vec::new(),

            (S::Offering { .. }, In::CounterOffered) => {
                self.state = S::Answering;
                Vec::new()
            }
            (S::Offering { .. }, In::AnswerReceived) | (S::Answering, In::AnswerSent) => {
                self.state = connecting(&self.timeouts);
                vec![CallOutput::Negotiated]
            }

            (S::Connecting { ice_up, .. }, In::IceConnected)
            | (S::Connected { ice_up, .. }, In::IceConnected) => {
                let again = *ice_up;
                *ice_up = true;
                if again {
                    Vec::new()
                } else {
                    vec![CallOutput::IceUp]
                }
            }
            (S::Connecting { ice_up, .. }, In::IceDisconnected)
            | (S::Connected { ice_up, .. }, In::IceDisconnected) => {
                *ice_up = false;
                vec![CallOutput::IceDown]
            }
            (S::Connecting { ice_up, .. }, In::IceChecking)
            | (S::Connected { ice_up, .. }, In::IceChecking) => {
                *ice_up = false;
                Vec::new()
            }
            (S::Connecting { .. } | S::Connected { .. }, In::IceFailed) => self.ice_gave_up(),

            (S::Connecting { ice_up, .. }, In::Connected) => {
                // Connected means ICE is up, whether or not it said so.
                let ice_news = !*ice_up;
                self.state = S::Connected {
                    ice_up: true,
                    remote_left: false,
                };
                if ice_news {
                    vec![CallOutput::IceUp, CallOutput::Up]
                } else {
                    vec![CallOutput::Up]
                }
            }

            (S::Connecting { ice_up, .. }, In::ConnectionFailed) => {
                // ICE was up and DTLS never was: the handshake failed.
                let failure = if *ice_up {
                    CallFailure::DtlsFailed(
                        "the handshake or the certificate fingerprint check failed after ICE \
                         connected"
                            .into(),
                    )
                } else {
                    CallFailure::IceFailed
                };
                let mut out = self.ice_gave_up();
                out.extend(self.end(CallEnd::Failed(failure)));
                out
            }
            (S::Connected { remote_left, .. }, In::ConnectionFailed) => {
                let end = if *remote_left {
                    CallEnd::PeerLeft
                } else {
                    CallEnd::Failed(CallFailure::IceFailed)
                };
                let mut out = self.ice_gave_up();
                out.extend(self.end(end));
                out
            }

            // Media may still be in flight: ICE will say when it stops.
            (S::Connected { remote_left, .. }, In::PeerLeft) if !*remote_left => {
                *remote_left = true;
                Vec::new()
            }
            (_, In::PeerLeft) => self.end(CallEnd::PeerLeft),
            (_, In::RemoteHungUp) => self.end(CallEnd::RemoteHungUp),
            (_, In::HangUp) => self.end(CallEnd::HungUp),
            (_, In::Failed(failure)) => self.end(CallEnd::Failed(failure)),
            // The server relayed an answer, so it has a call to say so in.
            (_, In::AnswerUnusable(failure)) => self.end_telling(CallEnd::Failed(failure), true),
            (_, In::Abandoned) => self.end(CallEnd::Abandoned),
            (_, In::EndedBy(end)) => self.end_telling(end, false),

            // A renegotiation (an ICE restart) of a call that is up, an
            // offer we sent again, and anything else out of turn: the
            // call's state stays as it is.
            (
                S::Offering { .. } | S::Answering | S::Connecting { .. } | S::Connected { .. },
                In::OfferSent
                | In::OfferReceived
                | In::CounterOffered
                | In::AnswerSent
                | In::AnswerReceived
                | In::IceConnected
                | In::IceChecking
                | In::IceDisconnected
                | In::IceFailed
                | In::Connected
                | In::ConnectionFailed,
            ) => Vec::new(),
        }
    }

    fn ice_gave_up(&mut self) -> Vec<CallOutput> {
        if std::mem::replace(&mut self.ice_failure_told, true) {
            Vec::new()
        } else {
            vec![CallOutput::IceGaveUp]
        }
    }

    /// Ends the call. The remote is told when we end it (hung up, or a
    /// failure on our side), unless the server has no call to relay a
    /// hangup in yet (we are still waiting for the answer) or the end came
    /// from the remote's side.
    fn end(&mut self, end: CallEnd) -> Vec<CallOutput> {
        let ours = matches!(end, CallEnd::HungUp | CallEnd::Failed(_));
        let tell_remote = ours && !self.awaits_answer();
        self.end_telling(end, tell_remote)
    }

    fn end_telling(&mut self, end: CallEnd, tell_remote: bool) -> Vec<CallOutput> {
        self.state = CallState::Ended(end.clone());
        vec![CallOutput::End { end, tell_remote }]
    }
}

#[cfg(test)]
mod tests;
