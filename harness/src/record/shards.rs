//! Which records `callprobe merge` may put together: N shards of the same
//! scenarios, seed and callprobe, each shard exactly once.

use std::path::PathBuf;

use super::{RunLog, ScenarioRecord};
use crate::scenario::shard::Shard;

/// Why records cannot be merged; each names the directory or the shard.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum MergeError {
    #[error("{}: written by callprobe {found}; the others by {expected}", dir.display())]
    Version {
        dir: PathBuf,
        found: String,
        expected: String,
    },
    #[error(
        "{}: a record of other scenarios (or another seed) than {}",
        dir.display(),
        first.display()
    )]
    OtherRun { dir: PathBuf, first: PathBuf },
    #[error("{}: not a shard's record (run it with --shard I/N)", dir.display())]
    NotSharded { dir: PathBuf },
    #[error("{}: shard {shard} is of {} shards; the others of {expected}", dir.display(), shard.count)]
    Count {
        dir: PathBuf,
        shard: Shard,
        expected: u32,
    },
    #[error("shard {shard} is there twice: {} and {}", first.display(), second.display())]
    Duplicate {
        shard: Shard,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("shard {shard} is missing")]
    Missing { shard: Shard },
    #[error("nothing to merge")]
    Empty,
}

/// Per scenario of the run, its shards' records in shard order; or why
/// these records are not the shards of one run.
pub(crate) fn shards_of(
    logs: &[(PathBuf, RunLog)],
) -> Result<Vec<Vec<&ScenarioRecord>>, MergeError> {
    let (first_dir, first) = logs.first().ok_or(MergeError::Empty)?;
    let shard_of = |dir: &PathBuf, log: &RunLog| -> Result<Shard, MergeError> {
        let shards: Vec<Option<Shard>> = log.scenarios.iter().map(|r| r.scenario.shard).collect();
        match shards.first() {
            Some(Some(shard)) if shards.iter().all(|s| *s == Some(*shard)) => Ok(*shard),
            _ => Err(MergeError::NotSharded { dir: dir.clone() }),
        }
    };
    let expected = shard_of(first_dir, first)?.count;
    let mut by_index: Vec<Option<(&PathBuf, &RunLog)>> = vec![None; expected as usize];
    for (dir, log) in logs {
        if log.callprobe_version != first.callprobe_version {
            return Err(MergeError::Version {
                dir: dir.clone(),
                found: log.callprobe_version.clone(),
                expected: first.callprobe_version.clone(),
            });
        }
        let same = log.scenarios.len() == first.scenarios.len()
            && log
                .scenarios
                .iter()
                .zip(&first.scenarios)
                .all(|(a, b)| a.scenario.same_run_as(&b.scenario));
        if !same {
            return Err(MergeError::OtherRun {
                dir: dir.clone(),
                first: first_dir.clone(),
            });
        }
        let shard = shard_of(dir, log)?;
        if shard.count != expected {
            return Err(MergeError::Count {
                dir: dir.clone(),
                shard,
                expected,
            });
        }
        let slot = &mut by_index[shard.index as usize];
        if let Some((seen, _)) = slot {
            return Err(MergeError::Duplicate {
                shard,
                first: (*seen).clone(),
                second: dir.clone(),
            });
        }
        *slot = Some((dir, log));
    }
    let mut ordered = Vec::new();
    for (index, slot) in by_index.into_iter().enumerate() {
        match slot {
            Some((_, log)) => ordered.push(log),
            None => {
                return Err(MergeError::Missing {
                    shard: Shard {
                        index: index as u32,
                        count: expected,
                    },
                });
            }
        }
    }
    Ok((0..first.scenarios.len())
        .map(|k| ordered.iter().map(|log| &log.scenarios[k]).collect())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ScenarioAsRun;
    use crate::results::Status;

    fn log(shard: Option<(u32, u32)>, seed: u64, version: &str) -> RunLog {
        let scenario = ScenarioAsRun {
            file: "pairs.toml".into(),
            text: "name = \"x\"".into(),
            seed,
            server: None,
            shard: shard.map(|(index, count)| Shard { index, count }),
        };
        RunLog {
            callprobe_version: version.into(),
            started_at: String::new(),
            scenarios: vec![ScenarioRecord::not_run(
                scenario,
                Status::Skipped,
                String::new(),
            )],
        }
    }

    fn dirs(logs: Vec<RunLog>) -> Vec<(PathBuf, RunLog)> {
        logs.into_iter()
            .enumerate()
            .map(|(i, log)| (PathBuf::from(format!("shard-{i}")), log))
            .collect()
    }

    #[test]
    fn the_shards_of_one_run_merge_in_shard_order() {
        let logs = dirs(vec![
            log(Some((2, 3)), 1, "1"),
            log(Some((0, 3)), 1, "1"),
            log(Some((1, 3)), 1, "1"),
        ]);
        let merged = shards_of(&logs).unwrap();
        let order: Vec<u32> = merged[0]
            .iter()
            .map(|r| r.scenario.shard.unwrap().index)
            .collect();
        assert_eq!(order, [0, 1, 2]);
    }

    #[test]
    fn a_missing_duplicated_or_foreign_shard_is_named() {
        let missing = dirs(vec![log(Some((0, 3)), 1, "1"), log(Some((2, 3)), 1, "1")]);
        assert_eq!(
            shards_of(&missing).unwrap_err().to_string(),
            "shard 2/3 is missing"
        );
        let twice = dirs(vec![log(Some((0, 2)), 1, "1"), log(Some((0, 2)), 1, "1")]);
        assert_eq!(
            shards_of(&twice).unwrap_err().to_string(),
            "shard 1/2 is there twice: shard-0 and shard-1"
        );
        let seed = dirs(vec![log(Some((0, 2)), 1, "1"), log(Some((1, 2)), 2, "1")]);
        assert!(
            matches!(shards_of(&seed), Err(MergeError::OtherRun { dir, .. }) if dir.as_path() == std::path::Path::new("shard-1"))
        );
        let version = dirs(vec![log(Some((0, 2)), 1, "1"), log(Some((1, 2)), 1, "2")]);
        assert!(matches!(
            shards_of(&version),
            Err(MergeError::Version { .. })
        ));
        let count = dirs(vec![log(Some((0, 2)), 1, "1"), log(Some((1, 3)), 1, "1")]);
        assert!(matches!(shards_of(&count), Err(MergeError::Count { .. })));
        let whole = dirs(vec![log(None, 1, "1")]);
        assert!(matches!(
            shards_of(&whole),
            Err(MergeError::NotSharded { .. })
        ));
    }
}
