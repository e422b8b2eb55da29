//! Video codecs in scenarios: one or a preference list, per run or per
//! peer, and the calls whose peers have no codec in common.

use super::*;

const CODEC_PEERS: &str = r#"
name = "codecs"
duration = "3s"

[[peers]]
name = "alice"
video = { codec = "vp8" }
[[peers]]
name = "bob"
video = { codec = ["vp9", "h264"] }
"#;

#[test]
fn codecs_are_read_one_or_as_a_preference_list() {
    let scenario = parse("s.toml", CODEC_PEERS).unwrap();
    assert_eq!(
        scenario.media.video.codecs,
        [VideoCodec::H264],
        "the default"
    );
    assert_eq!(scenario.peers[0].video.codecs, [VideoCodec::Vp8]);
    assert_eq!(
        scenario.peers[1].video.codecs,
        [VideoCodec::Vp9, VideoCodec::H264]
    );
}

#[test]
fn a_call_between_peers_with_no_codec_in_common_is_refused_at_its_line() {
    let text = format!("{CODEC_PEERS}\n[[calls]]\nfrom = \"alice\"\nto = \"bob\"\n");
    let problem = only_problem(&text);
    assert_eq!(
        (problem.line, problem.field.to_string().as_str()),
        (12, "calls[0]")
    );
    assert_eq!(
        problem.message,
        "`alice` offers only vp8 and `bob` takes only vp9, h264: no video codec in common; \
         say `expect = \"fail\"` to test that the call is refused"
    );
    // Said to fail, it is a test of the refusal, and valid.
    let expected = format!(
        "{CODEC_PEERS}\n[[events]]\nat = \"1s\"\ncall = {{ from = \"alice\", to = \"bob\", expect = \"fail\" }}\n"
    );
    parse("s.toml", &expected).unwrap();
}

#[test]
fn unknown_repeated_and_shared_mode_codecs_are_refused_with_their_field() {
    let problems = problems(
        r#"
name = "bad codecs"
duration = "3s"

[[peers]]
name = "alice"
video = { codec = ["av1", "h264", "h264"] }
[[peers]]
name = "web"
kind = "browser"
video = { codec = "vp8" }
"#,
    );
    let found: Vec<(String, &str)> = problems
        .iter()
        .map(|p| (p.field.to_string(), p.message.as_str()))
        .collect();
    let has = |field: &str, start: &str| {
        found
            .iter()
            .any(|(f, m)| f == field && m.starts_with(start))
    };
    assert!(
        has(
            "peers[0].video.codec[0]",
            "unknown codec `av1`; known: h264, vp8, vp9"
        ),
        "{found:#?}"
    );
    assert!(
        has("peers[0].video.codec[2]", "h264 is named twice"),
        "{found:#?}"
    );
    assert!(
        has("peers[1].video.codec", "a browser offers its own codecs"),
        "{found:#?}"
    );
}

#[test]
fn shared_media_is_h264_only() {
    let problem = only_problem(
        "name = \"s\"\nduration = \"3s\"\n[media]\nmode = \"shared\"\nvideo = { codec = \"vp8\" }\n[[peers]]\nname = \"a\"\n",
    );
    assert_eq!(problem.field.to_string(), "media.video.codec");
    assert!(
        problem
            .message
            .starts_with("shared media is one H.264 clip"),
        "{problem}"
    );
}

#[cfg(not(feature = "vpx"))]
#[test]
fn without_libvpx_a_vp8_scenario_is_refused_in_one_line() {
    let problem = only_problem(
        "name = \"v\"\nduration = \"3s\"\n[media]\nvideo = { codec = \"vp8\" }\n[[peers]]\nname = \"a\"\n",
    );
    assert_eq!(problem.field.to_string(), "media.video.codec");
    assert!(problem.message.starts_with("vp8 needs libvpx"), "{problem}");
}
