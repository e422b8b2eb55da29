//! `events.jsonl`: a run's record, one JSON object per line, each with its
//! `type`. The first line names the format's version and the callprobe
//! that wrote it; then, per scenario, a `scenario` line (the file as run),
//! its `action`, `event`, `link` and `load` lines, and an `end` line.
//! Times are microseconds on the run's clock.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ActionDone, CutShort, ScenarioAsRun, ScenarioRecord};
use crate::clock::RunTime;
use crate::peer::PeerEvent;
use crate::results::{LinkSnapshot, LoadObserved};

/// The version of the format this callprobe writes and reads.
pub(crate) const RECORD_VERSION: u32 = 1;

/// A whole run's record: what `events.jsonl` holds.
#[derive(Clone, Debug, PartialEq)]
pub struct RunLog {
    pub callprobe_version: String,
    /// Wall-clock start, RFC 3339.
    pub started_at: String,
    pub scenarios: Vec<ScenarioRecord>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {source}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
    #[error("{}:{line}: {what}", path.display())]
    Structure {
        path: PathBuf,
        line: usize,
        what: String,
    },
    #[error(
        "{}: a version {found} record; this callprobe reads version {RECORD_VERSION}",
        path.display()
    )]
    Version { path: PathBuf, found: u32 },
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line<'a> {
    Run {
        version: u32,
        callprobe: Cow<'a, str>,
        started_at: Cow<'a, str>,
    },
    Scenario(Cow<'a, ScenarioAsRun>),
    Action(ActionDone),
    Event(Cow<'a, PeerEvent>),
    Link {
        peer: usize,
        #[serde(flatten)]
        link: Cow<'a, LinkSnapshot>,
    },
    Load(Cow<'a, LoadObserved>),
    End {
        server: Cow<'a, str>,
        ran: bool,
        started: RunTime,
        ended: RunTime,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cut_short: Option<Cow<'a, CutShort>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_offset_ms: Option<f64>,
    },
}

/// Writes `log` to `path`, line by line; the file appears whole or not at
/// all (it is written beside and renamed), so a merge waiting for it never
/// reads half a record.
pub fn write_log(path: &Path, log: &RunLog) -> Result<(), LogError> {
    let io = |source| LogError::Io {
        path: path.to_owned(),
        source,
    };
    let partial = path.with_extension("jsonl.partial");
    write_lines(&partial, log).map_err(io)?;
    std::fs::rename(&partial, path).map_err(io)
}

fn write_lines(path: &Path, log: &RunLog) -> std::io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    let mut line = |line: Line<'_>| -> std::io::Result<()> {
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")
    };
    line(Line::Run {
        version: RECORD_VERSION,
        callprobe: Cow::Borrowed(&log.callprobe_version),
        started_at: Cow::Borrowed(&log.started_at),
    })?;
    for record in &log.scenarios {
        line(Line::Scenario(Cow::Borrowed(&record.scenario)))?;
        for action in &record.actions {
            line(Line::Action(*action))?;
        }
        for event in &record.events {
            line(Line::Event(Cow::Borrowed(event)))?;
        }
        for (peer, link) in record.links.iter().enumerate() {
            line(Line::Link {
                peer,
                link: Cow::Borrowed(link),
            })?;
        }
        if let Some(load) = &record.load {
            line(Line::Load(Cow::Borrowed(load)))?;
        }
        line(Line::End {
            server: Cow::Borrowed(&record.server),
            ran: record.ran,
            started: record.started,
            ended: record.ended,
            cut_short: record.cut_short.as_ref().map(Cow::Borrowed),
            start_offset_ms: record.start_offset_ms,
        })?;
    }
    out.flush()
}

/// Reads a record written by [`write_log`]; every error names the line.
pub(crate) fn read_log(path: &Path) -> Result<RunLog, LogError> {
    let file = File::open(path).map_err(|source| LogError::Io {
        path: path.to_owned(),
        source,
    })?;
    let structure = |line: usize, what: &str| LogError::Structure {
        path: path.to_owned(),
        line,
        what: what.to_owned(),
    };
    let mut log: Option<RunLog> = None;
    let mut open: Option<ScenarioRecord> = None;
    let mut number = 0;
    for text in BufReader::new(file).lines() {
        number += 1;
        let text = text.map_err(|source| LogError::Io {
            path: path.to_owned(),
            source,
        })?;
        if text.trim().is_empty() {
            continue;
        }
        // The version first, so a newer record fails on its version, not
        // on a line this callprobe does not know.
        if log.is_none() {
            #[derive(Deserialize)]
            struct Version {
                version: u32,
            }
            if let Ok(Version { version }) = serde_json::from_str(&text)
                && version != RECORD_VERSION
            {
                return Err(LogError::Version {
                    path: path.to_owned(),
                    found: version,
                });
            }
        }
        let line: Line<'static> =
            serde_json::from_str(&text).map_err(|source| LogError::Parse {
                path: path.to_owned(),
                line: number,
                source,
            })?;
        match (line, &mut log, &mut open) {
            (
                Line::Run {
                    callprobe,
                    started_at,
                    ..
                },
                None,
                _,
            ) => {
                log = Some(RunLog {
                    callprobe_version: callprobe.into_owned(),
                    started_at: started_at.into_owned(),
                    scenarios: Vec::new(),
                });
            }
            (_, None, _) => return Err(structure(number, "the first line must be the run's")),
            (Line::Run { .. }, Some(_), _) => return Err(structure(number, "a second run line")),
            (Line::Scenario(scenario), Some(_), open @ None) => {
                *open = Some(ScenarioRecord::not_run(
                    scenario.into_owned(),
                    crate::results::Status::Error,
                    "the record ends before this scenario's end".into(),
                ));
            }
            (Line::Scenario(_), Some(_), Some(_)) => {
                return Err(structure(number, "a scenario before the last one ended"));
            }
            (_, Some(_), None) => return Err(structure(number, "a line outside any scenario")),
            (Line::Action(action), _, Some(record)) => record.actions.push(action),
            (Line::Event(event), _, Some(record)) => record.events.push(event.into_owned()),
            (Line::Link { peer, link }, _, Some(record)) => {
                if record.links.len() != peer {
                    return Err(structure(number, "links out of order"));
                }
                record.links.push(link.into_owned());
            }
            (Line::Load(load), _, Some(record)) => record.load = Some(load.into_owned()),
            (
                Line::End {
                    server,
                    ran,
                    started,
                    ended,
                    cut_short,
                    start_offset_ms,
                },
                Some(log),
                open @ Some(_),
            ) => {
                let mut record = open.take().expect("matched Some");
                record.server = server.into_owned();
                record.ran = ran;
                record.started = started;
                record.ended = ended;
                record.cut_short = cut_short.map(Cow::into_owned);
                record.start_offset_ms = start_offset_ms;
                log.scenarios.push(record);
            }
        }
    }
    if open.is_some() {
        return Err(structure(number, "the last scenario has no end line"));
    }
    log.ok_or_else(|| structure(0, "an empty record"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::{CallEnd, CallId, CallReport, PeerEventKind, Role};
    use crate::results::Status;
    use crate::verify::video::{FrameTime, VideoVerdict};
    use callprobe_server::protocol::PeerId;

    fn record() -> ScenarioRecord {
        let remote = PeerId::random();
        let mut report = CallReport::new(remote, Role::Caller, CallEnd::HungUp);
        report.video = Some(VideoVerdict {
            verified: 2,
            // A browser's frames have no latency: NaN must come back NaN.
            frames: vec![
                FrameTime {
                    number: 0,
                    arrival_ms: 1.0 / 3.0,
                    latency_ms: f64::NAN,
                },
                FrameTime {
                    number: 1,
                    arrival_ms: 1e9 + 0.1,
                    latency_ms: 4.25,
                },
            ],
            ..VideoVerdict::default()
        });
        let scenario = ScenarioAsRun {
            file: "s.toml".into(),
            text: "name = \"x\"\n".into(),
            seed: 7,
            server: None,
            shard: None,
        };
        ScenarioRecord {
            server: "ws://127.0.0.1:1/".into(),
            started: RunTime::from_micros(10),
            ended: RunTime::from_micros(4_000_010),
            cut_short: None,
            ran: true,
            actions: vec![ActionDone {
                at: RunTime::from_micros(20),
                index: 0,
                call: Some(CallId(0)),
            }],
            events: vec![crate::peer::PeerEvent {
                peer: 0,
                at: RunTime::from_micros(30),
                call: Some(CallId(0)),
                kind: PeerEventKind::CallEnded(Box::new(report)),
            }],
            links: vec![LinkSnapshot {
                losses: std::collections::BTreeMap::from([(
                    "in".to_owned(),
                    std::collections::BTreeMap::from([(
                        102,
                        crate::net::FlowLosses {
                            originals: 10,
                            lost: vec![3],
                        },
                    )]),
                )]),
                ..LinkSnapshot::default()
            }],
            load: Some(LoadObserved::default()),
            ..ScenarioRecord::not_run(scenario, Status::Error, String::new())
        }
    }

    /// What goes in comes out: the same lines written again (NaN is not
    /// equal to itself, so the comparison is of the text).
    #[test]
    fn a_record_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let log = RunLog {
            callprobe_version: "0.1.0".into(),
            started_at: "2026-12-01T00:00:00Z".into(),
            scenarios: vec![record(), {
                let mut skipped = record();
                skipped.ran = false;
                skipped.cut_short = Some(CutShort {
                    status: Status::Skipped,
                    reason: "no server".into(),
                });
                skipped
            }],
        };
        write_log(&path, &log).unwrap();
        let first = std::fs::read_to_string(&path).unwrap();
        let read = read_log(&path).unwrap();
        assert_eq!(read.scenarios.len(), 2);
        let PeerEventKind::CallEnded(report) = &read.scenarios[0].events[0].kind else {
            panic!("a call's end")
        };
        let frames = &report.video.as_ref().unwrap().frames;
        assert!(frames[0].latency_ms.is_nan());
        assert_eq!(frames[0].arrival_ms, 1.0 / 3.0, "floats round-trip exactly");
        assert_eq!(frames[1].arrival_ms, 1e9 + 0.1);
        assert_eq!(read.scenarios[0].links, log.scenarios[0].links);
        write_log(&path, &read).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
    }

    #[test]
    fn a_broken_record_is_refused_naming_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let run = r#"{"type":"run","version":1,"callprobe":"0.1.0","started_at":"x"}"#;
        let cases = [
            (format!("{run}\n{{\"type\":\"event\"}}\n"), ":2: "),
            (format!("{run}\n{run}\n"), "a second run line"),
            ("{\"type\":\"end\"}\n".to_owned(), ":1: "),
            (
                r#"{"type":"run","version":99,"callprobe":"9","started_at":"x"}"#.to_owned(),
                "a version 99 record",
            ),
            (
                format!(
                    "{run}\n{}\n",
                    r#"{"type":"scenario","file":"a","text":"","seed":1}"#
                ),
                "no end line",
            ),
        ];
        for (text, expected) in cases {
            std::fs::write(&path, &text).unwrap();
            let error = read_log(&path).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
