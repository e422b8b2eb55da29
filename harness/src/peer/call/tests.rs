//! Every transition of the call machine, without sockets: the time is an
//! input like any other.

use super::*;

const TIMEOUTS: CallTimeouts = CallTimeouts {
    answer: Duration::from_secs(10),
    connect: Duration::from_secs(5),
};

fn ms(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

fn ended(end: CallEnd, tell_remote: bool) -> Vec<CallOutput> {
    vec![CallOutput::End { end, tell_remote }]
}

/// A caller through to connected, with the outputs of each step.
fn connected_caller(t0: Instant) -> CallMachine {
    let mut call = CallMachine::caller(t0, TIMEOUTS);
    assert_eq!(
        call.poll_timeout(),
        Some(ms(t0, 10_000)),
        "the answer's bound"
    );
    assert!(call.awaits_answer());
    assert_eq!(
        call.handle(CallInput::AnswerReceived, ms(t0, 2)),
        [CallOutput::Negotiated]
    );
    assert_eq!(
        call.poll_timeout(),
        Some(ms(t0, 5_002)),
        "now the connect bound"
    );
    assert_eq!(
        call.handle(CallInput::IceConnected, ms(t0, 4)),
        [CallOutput::IceUp]
    );
    assert!(call.ice_up());
    assert_eq!(
        call.handle(CallInput::Connected, ms(t0, 6)),
        [CallOutput::Up]
    );
    assert!(call.was_connected());
    assert_eq!(call.poll_timeout(), None, "nothing is due once up");
    call
}

#[test]
fn a_caller_negotiates_connects_and_hangs_up_telling_the_remote() {
    let t0 = Instant::now();
    let mut call = connected_caller(t0);
    assert_eq!(call.role(), Role::Caller);
    assert_eq!(
        call.handle(CallInput::HangUp, ms(t0, 3000)),
        ended(CallEnd::HungUp, true)
    );
    assert!(matches!(call.state(), CallState::Ended(_)));
    assert_eq!(call.handle(CallInput::RemoteHungUp, ms(t0, 3001)), []);
}

#[test]
fn a_callee_is_negotiated_when_its_answer_goes_out() {
    let t0 = Instant::now();
    let mut call = CallMachine::callee(TIMEOUTS);
    assert_eq!(call.poll_timeout(), None, "answering is ours to do");
    assert!(!call.awaits_answer());
    assert_eq!(call.handle(CallInput::OfferReceived, t0), []);
    assert_eq!(
        call.handle(CallInput::AnswerSent, ms(t0, 1)),
        [CallOutput::Negotiated]
    );
    assert_eq!(
        call.handle(CallInput::Connected, ms(t0, 5)),
        [CallOutput::IceUp, CallOutput::Up],
        "connected means ICE is up, reported or not"
    );
    assert_eq!(
        call.handle(CallInput::RemoteHungUp, ms(t0, 900)),
        ended(CallEnd::RemoteHungUp, false)
    );
}

#[test]
fn an_offer_countered_by_the_servers_offer_is_answered_and_connects_as_a_callee_would() {
    let t0 = Instant::now();
    let mut call = CallMachine::caller(t0, TIMEOUTS);
    assert_eq!(call.handle(CallInput::CounterOffered, ms(t0, 3)), []);
    assert!(!call.awaits_answer(), "the answer is ours to make now");
    assert_eq!(call.poll_timeout(), None);
    assert_eq!(
        call.handle(CallInput::AnswerReceived, ms(t0, 4)),
        [],
        "an answer to the offer rolled back changes nothing"
    );
    assert_eq!(
        call.handle(CallInput::AnswerSent, ms(t0, 5)),
        [CallOutput::Negotiated]
    );
    assert_eq!(
        call.poll_timeout(),
        Some(ms(t0, 5_005)),
        "the connect bound"
    );
    assert_eq!(
        call.handle(CallInput::Connected, ms(t0, 9)),
        [CallOutput::IceUp, CallOutput::Up]
    );
    assert_eq!(
        call.role(),
        Role::Caller,
        "the call is still the one we placed"
    );
    // Once negotiated, a second counter-offer is out of turn.
    assert_eq!(call.handle(CallInput::CounterOffered, ms(t0, 20)), []);
    assert!(call.was_connected());
}

#[test]
fn an_answer_that_never_comes_fails_the_call_at_its_bound_without_a_hangup() {
    let t0 = Instant::now();
    let mut call = CallMachine::caller(t0, TIMEOUTS);
    assert_eq!(call.handle_timeout(ms(t0, 9_999)), [], "not yet");
    assert_eq!(
        call.handle_timeout(ms(t0, 10_000)),
        ended(
            CallEnd::Failed(CallFailure::NoAnswer(TIMEOUTS.answer)),
            false
        ),
        "the server has no call to relay a hangup in"
    );
    assert_eq!(
        call.handle(CallInput::AnswerReceived, ms(t0, 10_001)),
        [],
        "too late"
    );
}

#[test]
fn a_connection_that_never_comes_fails_saying_which_half_never_came() {
    let t0 = Instant::now();
    let mut no_ice = CallMachine::callee(TIMEOUTS);
    no_ice.handle(CallInput::AnswerSent, t0);
    assert_eq!(
        no_ice.handle_timeout(ms(t0, 5_000)),
        ended(
            CallEnd::Failed(CallFailure::IceTimeout(TIMEOUTS.connect)),
            true
        )
    );

    let mut no_dtls = CallMachine::callee(TIMEOUTS);
    no_dtls.handle(CallInput::AnswerSent, t0);
    no_dtls.handle(CallInput::IceConnected, ms(t0, 3));
    let out = no_dtls.handle_timeout(ms(t0, 5_000));
    assert!(
        matches!(&out[..], [CallOutput::End { end: CallEnd::Failed(CallFailure::DtlsFailed(why)), tell_remote: true }]
            if why.starts_with("not connected 5s after ICE connected")),
        "{out:?}"
    );
}

#[test]
fn a_failed_connection_is_ice_or_dtls_by_what_was_up_and_ice_failure_is_told_once() {
    let t0 = Instant::now();
    let mut ice = CallMachine::caller(t0, TIMEOUTS);
    ice.handle(CallInput::AnswerReceived, t0);
    assert_eq!(
        ice.handle(CallInput::IceFailed, ms(t0, 10)),
        [CallOutput::IceGaveUp]
    );
    assert_eq!(
        ice.handle(CallInput::ConnectionFailed, ms(t0, 11)),
        ended(CallEnd::Failed(CallFailure::IceFailed), true),
        "ICE's failure was told already"
    );

    let mut dtls = CallMachine::caller(t0, TIMEOUTS);
    dtls.handle(CallInput::AnswerReceived, t0);
    dtls.handle(CallInput::IceConnected, ms(t0, 2));
    let out = dtls.handle(CallInput::ConnectionFailed, ms(t0, 40));
    assert_eq!(
        out[0],
        CallOutput::IceGaveUp,
        "the library said nothing of ICE: we do"
    );
    assert!(
        matches!(
            &out[1],
            CallOutput::End {
                end: CallEnd::Failed(CallFailure::DtlsFailed(_)),
                tell_remote: true
            }
        ),
        "{out:?}"
    );
}

#[test]
fn an_ice_restart_mid_call_keeps_the_call_and_reports_ice_down_and_up_again() {
    let t0 = Instant::now();
    let mut call = connected_caller(t0);
    // We move and restart: our restart offer, its answer.
    assert_eq!(call.handle(CallInput::OfferSent, ms(t0, 1000)), []);
    assert_eq!(call.handle(CallInput::IceChecking, ms(t0, 1001)), []);
    assert!(!call.ice_up());
    assert_eq!(
        call.handle(CallInput::AnswerReceived, ms(t0, 1003)),
        [],
        "not negotiated anew"
    );
    assert_eq!(
        call.handle(CallInput::IceConnected, ms(t0, 1010)),
        [CallOutput::IceUp]
    );
    // The remote restarts: its offer, our answer; ICE drops meanwhile.
    assert_eq!(call.handle(CallInput::OfferReceived, ms(t0, 2000)), []);
    assert_eq!(call.handle(CallInput::AnswerSent, ms(t0, 2001)), []);
    assert_eq!(
        call.handle(CallInput::IceDisconnected, ms(t0, 2002)),
        [CallOutput::IceDown]
    );
    assert_eq!(
        call.handle(CallInput::IceConnected, ms(t0, 2020)),
        [CallOutput::IceUp]
    );
    assert_eq!(
        call.handle(CallInput::IceConnected, ms(t0, 2021)),
        [],
        "no news"
    );
    assert!(call.was_connected() && call.poll_timeout().is_none());
}

#[test]
fn a_hangup_crossing_our_offer_ends_the_call_and_the_late_answer_changes_nothing() {
    let t0 = Instant::now();
    // The remote hangs up (the old call) as our offer is in flight.
    let mut call = CallMachine::caller(t0, TIMEOUTS);
    assert_eq!(
        call.handle(CallInput::RemoteHungUp, ms(t0, 1)),
        ended(CallEnd::RemoteHungUp, false)
    );
    assert_eq!(call.handle(CallInput::AnswerReceived, ms(t0, 2)), []);
    assert_eq!(
        call.handle_timeout(ms(t0, 20_000)),
        [],
        "no deadline after the end"
    );

    // Our own hangup while the answer is still owed: the server has no
    // call to relay it in, so nobody is told.
    let mut early = CallMachine::caller(t0, TIMEOUTS);
    assert_eq!(
        early.handle(CallInput::HangUp, ms(t0, 1)),
        ended(CallEnd::HungUp, false)
    );

    // A callee hung up on before its answer went out: no answer goes.
    let mut callee = CallMachine::callee(TIMEOUTS);
    callee.handle(CallInput::OfferReceived, t0);
    assert_eq!(
        callee.handle(CallInput::RemoteHungUp, ms(t0, 1)),
        ended(CallEnd::RemoteHungUp, false)
    );
    assert_eq!(callee.handle(CallInput::AnswerSent, ms(t0, 2)), []);
}

#[test]
fn a_remote_that_leaves_a_live_call_ends_it_when_ice_gives_up_and_at_once_otherwise() {
    let t0 = Instant::now();
    let mut call = connected_caller(t0);
    assert_eq!(
        call.handle(CallInput::PeerLeft, ms(t0, 500)),
        [],
        "media may be in flight"
    );
    assert_eq!(
        call.handle(CallInput::IceDisconnected, ms(t0, 900)),
        [CallOutput::IceDown]
    );
    assert_eq!(
        call.handle(CallInput::ConnectionFailed, ms(t0, 1900)),
        [
            CallOutput::IceGaveUp,
            CallOutput::End {
                end: CallEnd::PeerLeft,
                tell_remote: false
            }
        ]
    );

    let mut connecting = CallMachine::callee(TIMEOUTS);
    connecting.handle(CallInput::AnswerSent, t0);
    assert_eq!(
        connecting.handle(CallInput::PeerLeft, ms(t0, 3)),
        ended(CallEnd::PeerLeft, false)
    );
    // A second peerLeft on a live call ends it too.
    let mut twice = connected_caller(t0);
    twice.handle(CallInput::PeerLeft, ms(t0, 10));
    assert_eq!(
        twice.handle(CallInput::PeerLeft, ms(t0, 11)),
        ended(CallEnd::PeerLeft, false)
    );
}

#[test]
fn failures_from_outside_and_abandonment_end_the_call_as_they_say() {
    let t0 = Instant::now();
    let mut call = connected_caller(t0);
    let lost = CallFailure::SignalingLost("the connection dropped".into());
    assert_eq!(
        call.handle(CallInput::Failed(lost.clone()), ms(t0, 100)),
        ended(CallEnd::Failed(lost), true)
    );
    let mut crashed = connected_caller(t0);
    assert_eq!(
        crashed.handle(CallInput::Abandoned, ms(t0, 100)),
        ended(CallEnd::Abandoned, false)
    );
    assert_eq!(crashed.state(), &CallState::Ended(CallEnd::Abandoned));
}

#[test]
fn an_answer_that_cannot_be_applied_fails_the_call_and_tells_the_remote() {
    let t0 = Instant::now();
    let mut call = CallMachine::caller(t0, TIMEOUTS);
    let bad = CallFailure::Negotiation("applying the answer: no fingerprint".into());
    assert_eq!(
        call.handle(CallInput::AnswerUnusable(bad.clone()), ms(t0, 3)),
        ended(CallEnd::Failed(bad), true),
        "the server has a call once an answer went through it"
    );
}

#[test]
fn an_end_from_the_page_is_taken_as_given_unless_the_call_ended_before() {
    let t0 = Instant::now();
    let mut call = connected_caller(t0);
    assert_eq!(
        call.handle(CallInput::EndedBy(CallEnd::PeerLeft), ms(t0, 50)),
        ended(CallEnd::PeerLeft, false),
        "final, where a peerLeft alone would wait for ICE"
    );
    let mut unanswered = CallMachine::caller(t0, TIMEOUTS);
    unanswered.handle_timeout(ms(t0, 10_000));
    assert_eq!(
        unanswered.handle(CallInput::EndedBy(CallEnd::HungUp), ms(t0, 10_010)),
        [],
        "the page hung up because the bound ended the call"
    );
    assert_eq!(
        unanswered.state(),
        &CallState::Ended(CallEnd::Failed(CallFailure::NoAnswer(TIMEOUTS.answer)))
    );
}
