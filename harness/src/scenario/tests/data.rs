//! Data channels in scenarios: defaults, the thresholds they add, and
//! what is refused.

use super::*;

#[test]
fn a_data_channel_is_planned_with_its_defaults_and_bad_settings_are_pointed_at() {
    let scenario = parse(
        "s.toml",
        "name = \"d\"\nduration = \"3s\"\n[media]\ndata = { ordered = false }\n[[peers]]\nname = \"a\"\n[[peers]]\nname = \"b\"\n[[calls]]\nfrom = \"a\"\nto = \"b\"\n",
    )
    .unwrap();
    let data = scenario.media.data.expect("a data channel");
    assert_eq!(
        (data.ordered, data.max_retransmits, data.interval, data.size),
        (false, None, std::time::Duration::from_millis(100), 1024)
    );
    // Reliable and unordered: losses fail by default, reordering does not.
    let defaults: Vec<&str> = scenario
        .thresholds
        .iter()
        .filter(|t| t.default)
        .map(|t| t.metric.name())
        .collect();
    assert!(defaults.contains(&"data.messages_lost"), "{defaults:?}");
    assert!(
        !defaults.contains(&"data.messages_reordered"),
        "{defaults:?}"
    );

    let problems = problems(
        "name = \"d\"\nduration = \"3s\"\n[media]\ndata = { interval = \"5s\", size = 4 }\n[[peers]]\nname = \"a\"\n[[peers]]\nname = \"b\"\n[[events]]\nat = \"1s\"\nmedia = { peer = \"a\", fault = \"data-stop\" }\n",
    );
    let fields: Vec<String> = problems.iter().map(|p| p.field.to_string()).collect();
    assert!(
        fields.contains(&"media.data.interval".to_owned()),
        "{problems:#?}"
    );
    assert!(
        fields.contains(&"media.data.size".to_owned()),
        "{problems:#?}"
    );
    // With no valid data channel planned, a data fault has nothing to act on.
    assert!(
        fields.contains(&"events[0].media.fault".to_owned()),
        "{problems:#?}"
    );
}
