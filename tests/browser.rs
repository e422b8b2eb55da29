//! Real browsers as peers (DESIGN §8): headless Chromium showing our page,
//! calling and called by synthetic peers through our server, with media
//! verified both ways. Skipped, with one line saying why, where Chromium is
//! not installed; CI installs it.

use std::net::IpAddr;
use std::time::Duration;

use callprobe_harness::browser::{
    BrowserPeerConfig, find_chromium, page_url_for, spawn_browser_peer,
};
use callprobe_harness::media::codec::VideoCodec;
use callprobe_harness::peer::{
    CallEnd, CallFailure, CallReport, CallTimeouts, DataSettings, MediaSource, Misbehaviour,
    PeerCommand, PeerEventKind, spawn_peer,
};
use callprobe_harness::verify::beeps::BEEP_HZ;
use callprobe_server::protocol::PeerId;
use callprobe_testkit::peers::TestRun;

/// How long media flows before a call is judged.
const MEDIA_WINDOW: Duration = Duration::from_secs(4);

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Synthetic,
    Browser,
}

/// Starts peers of the given kinds (index = position) and waits for each id.
async fn start(run: &mut TestRun, kinds: &[Kind]) {
    let chromium = find_chromium().expect("checked by the caller");
    for (index, kind) in kinds.iter().enumerate() {
        let index = index as u16;
        run.sources.push(match kind {
            Kind::Synthetic => MediaSource::Pattern(index),
            Kind::Browser => MediaSource::Browser(index),
        });
        let handle = match kind {
            Kind::Synthetic => spawn_peer(run.config(index), run.outbox.clone()),
            Kind::Browser => spawn_browser_peer(
                BrowserPeerConfig {
                    name: format!("browser{index}"),
                    index,
                    chromium: chromium.clone(),
                    page_url: page_url_for(&run.url),
                    width: 320,
                    height: 240,
                    fps: 30,
                    epoch: run.epoch,
                    launch_timeout: Duration::from_secs(30),
                    sample_interval: Duration::from_millis(500),
                    timeouts: CallTimeouts {
                        answer: run.answer_timeout,
                        connect: Duration::from_secs(10),
                    },
                    data: run.media.data,
                },
                run.outbox.clone(),
            ),
        };
        run.peers.push(handle);
    }
    run.ids = vec![PeerId::random(); kinds.len()];
    for index in 0..kinds.len() as u16 {
        let event = run
            .wait_for(&format!("peer {index} started"), |e| {
                e.peer == index && matches!(e.kind, PeerEventKind::Started { .. })
            })
            .await;
        let PeerEventKind::Started { id } = event.kind else {
            unreachable!()
        };
        run.ids[usize::from(index)] = id;
    }
}

/// Runs a browser test on a runtime whose every thread, server, peer and
/// browser is in a loopback-only network namespace, as `callprobe run`
/// does: Chromium can gather candidates nowhere but 127.0.0.0/8 and ::1.
/// Skipped, with one line, where there is no Chromium or no namespace
/// (not root); `CALLPROBE_REQUIRE_CHROMIUM` makes either a failure.
fn on_loopback_only(test: &str, body: impl Future<Output = ()>) {
    if find_chromium().is_none() {
        assert!(
            std::env::var_os("CALLPROBE_REQUIRE_CHROMIUM").is_none(),
            "{test}: CALLPROBE_REQUIRE_CHROMIUM is set but Chromium was not found"
        );
        eprintln!(
            "skipped {test}: Chromium is not installed (Debian: apt-get install chromium; or set CALLPROBE_CHROMIUM)"
        );
        return;
    }
    callprobe_testkit::run_on_loopback_only(test, body);
}

/// Every candidate the browser gathered, and both ends of the pair its
/// media took, are loopback addresses.
fn assert_on_loopback(report: &CallReport, what: &str) {
    let stats = &report.browser.as_ref().expect("a browser's report").stats;
    let ip = |endpoint: &str| -> IpAddr {
        let address = endpoint.split(' ').next().unwrap_or_default();
        let (ip, _port) = address.rsplit_once(':').expect("address:port");
        ip.trim_matches(['[', ']'])
            .parse()
            .unwrap_or_else(|e| panic!("{what}: {endpoint:?}: {e}"))
    };
    assert!(
        !stats.local_candidates.is_empty(),
        "{what}: no local candidates: {stats:?}"
    );
    for candidate in &stats.local_candidates {
        assert!(ip(candidate).is_loopback(), "{what}: gathered {candidate}");
    }
    let pair = stats.pair.as_ref().expect("a selected candidate pair");
    for end in [&pair.local, &pair.remote] {
        let end = end.as_deref().expect("both ends of the pair");
        assert!(
            ip(end).is_loopback(),
            "{what}: the media pair uses {end} ({pair:?})"
        );
    }
}

/// A call from `caller` to `callee`, media for a while, then the caller
/// hangs up: both sides' reports.
async fn call_and_hang_up(run: &mut TestRun, caller: u16, callee: u16) -> (CallReport, CallReport) {
    run.call_pairs(&[(caller, callee)]);
    run.wait_for_media(&[(caller, callee)], false).await;
    run.log_for(MEDIA_WINDOW).await;
    run.hang_up_pairs(&[(caller, callee)]);
    let at_caller = run.call_report(caller, callee).await;
    let at_callee = run.call_report(callee, caller).await;
    (at_caller, at_callee)
}

/// What a browser received from a synthetic peer: decoded at the size and
/// rate sent, our pattern on screen (colour bars, stamps from the right
/// sender advancing), and the sender's tone.
fn assert_browser_saw_our_media(report: &CallReport, what: &str) {
    assert_browser_saw_our_media_in(report, "video/H264", what);
}

/// The same, in the codec named by its MIME type.
fn assert_browser_saw_our_media_in(report: &CallReport, mime_type: &str, what: &str) {
    let video = report
        .video
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no video"));
    let browser = report.browser.as_ref().expect("a browser's report");
    let inbound = browser
        .stats
        .received
        .video
        .as_ref()
        .expect("inbound video stats");
    assert_eq!(
        (inbound.frame_width, inbound.frame_height),
        (Some(320), Some(240)),
        "{what}: {inbound:?}"
    );
    assert!(video.fps >= 20.0, "{what}: fps {} ({video:?})", video.fps);
    assert!(browser.grabs >= 4, "{what}: only {} grabs", browser.grabs);
    assert_eq!(
        browser.grabs_with_bars, browser.grabs,
        "{what}: colour bars missing in {:?}",
        browser.grabs_missing_bars
    );
    assert_eq!(
        (video.corrupted, video.wrong_sender),
        (0, 0),
        "{what}: {video:?}"
    );
    let numbers: Vec<u32> = video.frames.iter().map(|f| f.number).collect();
    assert!(
        numbers.windows(2).all(|pair| pair[1] > pair[0]),
        "{what}: stamps do not advance: {numbers:?}"
    );
    assert!(
        numbers.last().unwrap() - numbers[0] >= 60,
        "{what}: {numbers:?}"
    );
    let codec = inbound.codec.as_ref().expect("a codec");
    assert_eq!(codec.mime_type, mime_type, "{what}");
    let audio = report
        .audio
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no audio"));
    assert!(audio.tone_matches(), "{what}: {audio:?}");
}

/// What a synthetic peer received from a browser: live H.264 frames that
/// keep changing at the camera's rate, and Chrome's beeps twice a second.
fn assert_we_saw_the_browsers_media(report: &CallReport, what: &str) {
    let video = report
        .video
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no video"));
    assert!(video.verified >= 60, "{what}: {video:?}");
    assert!(video.fps >= 20.0, "{what}: fps {} ({video:?})", video.fps);
    assert!(
        video.lost * 20 <= video.verified,
        "{what}: more than 5 % lost: {video:?}"
    );
    assert!(
        video.latency.count == 0,
        "live video has no latency: {video:?}"
    );
    let audio = report
        .audio
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no audio"));
    let beeps = audio.beeps.as_ref().expect("heard as beeps");
    assert!(beeps.beeps >= 5, "{what}: {beeps:?}");
    assert!(
        (beeps.per_second - 2.0).abs() <= 0.35,
        "{what}: {} beeps a second: {beeps:?}",
        beeps.per_second
    );
    assert!(
        (beeps.hz.unwrap_or(0.0) - BEEP_HZ).abs() <= 40.0,
        "{what}: {beeps:?}"
    );
    assert!(audio.tone_matches(), "{what}: beeps off cadence: {audio:?}");
}

fn print_setup(run: &TestRun, caller: u16, callee: u16, what: &str) {
    let setup = run.timeline(caller, callee);
    eprintln!("{what}: {setup:?}");
    assert!(setup.ice_connected_ms.is_some(), "{what}: {setup:?}");
    assert!(setup.dtls_connected_ms.is_some(), "{what}: {setup:?}");
    assert!(setup.first_frame_ms.is_some(), "{what}: {setup:?}");
}

/// A data channel's every message verified, both ways, across the two
/// stacks: `report` is `what` received.
fn assert_data_verified(report: &CallReport, what: &str) {
    let data = report
        .data
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no data channel"));
    assert!(data.opened_us.is_some(), "{what}: never opened: {data:?}");
    assert!(data.received >= 20 && data.sent >= 20, "{what}: {data:?}");
    assert_eq!(
        (
            data.gaps,
            data.duplicated,
            data.reordered,
            data.corrupt,
            data.wrong_sender,
            data.foreign
        ),
        (0, 0, 0, 0, 0, 0),
        "{what}: {data:?}"
    );
    assert!(!data.rtt_ms.is_empty(), "{what}: no echo came back");
}

/// The data channel across both stacks: a synthetic peer calls the browser
/// (ours opens the channel, the page is given it) and the browser calls
/// another synthetic peer (the page opens it); each side of each call
/// verifies the other's messages and times its own by their echoes.
#[test]
fn a_data_channel_between_a_browser_and_synthetic_peers_is_verified_both_ways() {
    on_loopback_only(
        "a_data_channel_between_a_browser_and_synthetic_peers",
        async {
            let mut run = TestRun::with_our_server().await;
            run.media.data = Some(DataSettings {
                ordered: true,
                max_retransmits: None,
                interval: Duration::from_millis(100),
                size: 1024,
            });
            start(&mut run, &[Kind::Synthetic, Kind::Browser, Kind::Synthetic]).await;
            run.call_pairs(&[(0, 1), (1, 2)]);
            run.wait_for_media(&[(0, 1), (1, 2)], false).await;
            run.log_for(MEDIA_WINDOW).await;
            run.hang_up_pairs(&[(0, 1), (1, 2)]);
            for (receiver, sender, what) in [
                (1, 0, "the browser from the synthetic caller"),
                (0, 1, "the synthetic caller from the browser"),
                (2, 1, "the synthetic callee from the browser"),
                (1, 2, "the browser from the synthetic callee"),
            ] {
                let report = run.call_report(receiver, sender).await;
                assert_data_verified(&report, what);
                let data = report.data.as_ref().unwrap();
                let mut rtt = data.rtt_ms.clone();
                rtt.sort_by(f64::total_cmp);
                eprintln!(
                    "{what}: {} received, {} sent, rtt p50 {:.1} ms",
                    data.received,
                    data.sent,
                    rtt[rtt.len() / 2]
                );
            }
            for (caller, callee) in [(0, 1), (1, 2)] {
                let setup = run.timeline(caller, callee);
                assert!(setup.data_open_ms.is_some(), "{setup:?}");
                eprintln!(
                    "{caller} -> {callee}: data open at {:?} ms",
                    setup.data_open_ms
                );
            }
            assert!(run.errors().is_empty(), "{:?}", run.errors());
            run.finish().await;
        },
    );
}

#[test]
fn a_synthetic_peer_calls_a_browser_and_both_verify_media() {
    on_loopback_only("a_synthetic_peer_calls_a_browser", async {
        let mut run = TestRun::with_our_server().await;
        start(&mut run, &[Kind::Synthetic, Kind::Browser]).await;
        let (ours, browsers) = call_and_hang_up(&mut run, 0, 1).await;
        print_setup(&run, 0, 1, "synthetic -> browser");
        assert_we_saw_the_browsers_media(&ours, "synthetic from browser");
        assert_browser_saw_our_media(&browsers, "browser from synthetic");
        assert_on_loopback(&browsers, "the called browser");
        assert!(run.errors().is_empty(), "{:?}", run.errors());
        run.finish().await;
    });
}

#[test]
fn a_browser_calls_a_synthetic_peer_and_both_verify_media() {
    on_loopback_only("a_browser_calls_a_synthetic_peer", async {
        let mut run = TestRun::with_our_server().await;
        start(&mut run, &[Kind::Browser, Kind::Synthetic]).await;
        let (browsers, ours) = call_and_hang_up(&mut run, 0, 1).await;
        print_setup(&run, 0, 1, "browser -> synthetic");
        assert_browser_saw_our_media(&browsers, "browser from synthetic");
        assert_we_saw_the_browsers_media(&ours, "synthetic from browser");
        assert_on_loopback(&browsers, "the calling browser");
        assert!(run.errors().is_empty(), "{:?}", run.errors());
        run.finish().await;
    });
}

/// The browser offers its own codecs in its own order (Chromium: VP8
/// first); a synthetic peer that takes all of ours, H.264 first, answers
/// with the offer's first it takes. Both directions are VP8, and every
/// frame is verified both ways: by stamp on the browser's screen, by
/// decoding and change on ours.
#[test]
fn a_browser_calls_in_its_own_codec_order_and_vp8_is_verified_both_ways() {
    if let Some(why) = VideoCodec::Vp8.unavailable() {
        return eprintln!("skipped: vp8 {why}");
    }
    on_loopback_only("a_browser_calls_in_its_own_codec_order", async {
        let mut run = TestRun::with_our_server().await;
        // Peer 0 is the browser, which offers its own; peer 1 takes all of ours.
        run.codecs = vec![vec![VideoCodec::H264], VideoCodec::ALL.to_vec()];
        start(&mut run, &[Kind::Browser, Kind::Synthetic]).await;
        let (browsers, ours) = call_and_hang_up(&mut run, 0, 1).await;
        print_setup(&run, 0, 1, "browser -> synthetic, VP8");
        assert_eq!(
            ours.video_codec,
            Some(VideoCodec::Vp8),
            "the browser's order decided"
        );
        assert_browser_saw_our_media_in(&browsers, "video/VP8", "browser from synthetic, VP8");
        assert_we_saw_the_browsers_media(&ours, "synthetic from browser, VP8");
        let sent = browsers
            .browser
            .as_ref()
            .and_then(|b| b.stats.sent.video.as_ref());
        let sent_codec = sent
            .and_then(|s| s.codec.as_ref())
            .map(|c| c.mime_type.as_str());
        assert_eq!(sent_codec, Some("video/VP8"), "what the browser sent");
        assert!(run.errors().is_empty(), "{:?}", run.errors());
        run.finish().await;
    });
}

/// The browser's calls are held to the same call machine as ours: a
/// browser whose offer goes unanswered fails the call at the answer bound,
/// saying so, and the page hangs up.
#[test]
fn a_browser_whose_offer_goes_unanswered_fails_at_the_answer_bound() {
    on_loopback_only("a_browser_whose_offer_goes_unanswered", async {
        let mut run = TestRun::with_our_server().await;
        run.answer_timeout = Duration::from_millis(1500);
        run.misbehave = vec![
            Misbehaviour::default(),
            Misbehaviour {
                ignores_offers: true,
                ..Misbehaviour::default()
            },
        ];
        start(&mut run, &[Kind::Browser, Kind::Synthetic]).await;
        let commanded = std::time::Instant::now();
        run.call_pairs(&[(0, 1)]);
        let report = run.call_report(0, 1).await;
        let after = commanded.elapsed();
        assert_eq!(
            report.end,
            CallEnd::Failed(CallFailure::NoAnswer(Duration::from_millis(1500))),
            "{report:?}"
        );
        assert!(
            after >= Duration::from_millis(1500) && after < Duration::from_secs(5),
            "ended {after:?} after the call"
        );
        run.finish().await;
    });
}

#[test]
fn two_browsers_call_each_other_through_our_server() {
    on_loopback_only("two_browsers_call_each_other", async {
        let mut run = TestRun::with_our_server().await;
        start(&mut run, &[Kind::Browser, Kind::Browser]).await;
        let (at_caller, at_callee) = call_and_hang_up(&mut run, 0, 1).await;
        print_setup(&run, 0, 1, "browser -> browser");
        for (report, what) in [(&at_caller, "caller"), (&at_callee, "callee")] {
            let video = report
                .video
                .as_ref()
                .unwrap_or_else(|| panic!("{what}: no video: {report:?}"));
            let browser = report.browser.as_ref().expect("a browser's report");
            assert_on_loopback(report, what);
            // Verified: grabs that showed a new picture; decoded: what
            // the browser's decoder says it decoded.
            assert!(
                video.verified >= 4
                    && video.frames_decoded.is_some_and(|n| n >= 60)
                    && video.fps >= 15.0,
                "{what}: {video:?}"
            );
            // Chrome's fake camera moves: no two grabs show the same picture.
            assert!(browser.grabs >= 4, "{what}: {browser:?}");
            assert_eq!(video.duplicated, 0, "{what}: a grab repeated: {video:?}");
            let audio = report
                .audio
                .as_ref()
                .unwrap_or_else(|| panic!("{what}: no audio"));
            assert!(audio.packets > 100, "{what}: {audio:?}");
            eprintln!(
                "browser -> browser, {what} received {:?}",
                browser
                    .stats
                    .received
                    .video
                    .as_ref()
                    .and_then(|v| v.codec.clone())
            );
        }
        assert!(run.errors().is_empty(), "{:?}", run.errors());
        run.finish().await;
    });
}

#[test]
fn a_browser_that_crashes_mid_call_is_reported_gone_to_the_synthetic_side() {
    on_loopback_only("a_browser_that_crashes_mid_call", async {
        let mut run = TestRun::with_our_server().await;
        // Once the server says the browser left, the call ends when ICE gives
        // up on it: soon, with these timers.
        run.connection.ice_disconnected_timeout = Duration::from_millis(500);
        run.connection.ice_failed_timeout = Duration::from_secs(1);
        start(&mut run, &[Kind::Synthetic, Kind::Browser]).await;
        run.call_pairs(&[(0, 1)]);
        run.wait_for_media(&[(0, 1)], false).await;
        run.command(1, PeerCommand::Crash);
        let crashed = run
            .wait_for("the browser crashed", |e| {
                e.peer == 1 && e.kind == PeerEventKind::Crashed
            })
            .await;
        let browser = run.ids[1];
        let left = run
            .wait_for("peerLeft at the synthetic side", |e| {
                e.peer == 0 && e.kind == PeerEventKind::PeerLeft { remote: browser }
            })
            .await;
        let detected = left.at.saturating_duration_since(crashed.at);
        eprintln!("browser crash -> peerLeft in {detected:?}");
        assert!(detected < Duration::from_secs(3), "{detected:?}");
        let report = run.call_report(0, 1).await;
        assert_eq!(report.end, callprobe_harness::peer::CallEnd::PeerLeft);
        run.finish().await;
    });
}
