//! Deployment: the Kubernetes manifest of a run split across machines
//! (`deploy/kubernetes/job.yaml`), rendered for N shards. The template is
//! the file users read; this fills in its values and checks them.

use std::time::Duration;

const TEMPLATE: &str = include_str!("../../deploy/kubernetes/job.yaml");

/// What a split run on Kubernetes is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JobPlan {
    /// Names every object (`NAME-shards`, `NAME-merge`, `NAME-reports`).
    pub name: String,
    /// The image built from `deploy/Dockerfile`.
    pub image: String,
    pub shards: u32,
    /// RFC 3339, shared by every shard.
    pub start_at: String,
    /// The scenario's path inside the image (relative to /opt/callprobe).
    pub scenario: String,
    /// The signaling server under test; without it each shard spawns its own.
    pub server: Option<String>,
    /// From now to the shards' start, plus the scenario's duration: what
    /// the Jobs' deadlines are derived from.
    pub lasts: Duration,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum PlanError {
    #[error(
        "{0:?}: a name is 1 to 40 lowercase letters, digits and '-', starting with a letter (Kubernetes object names)"
    )]
    Name(String),
    #[error("at least one shard")]
    NoShards,
    #[error("{0:?}: quotes and line breaks cannot go into the manifest")]
    Unquotable(String),
}

/// Time the shards get beyond `lasts` (image pulls, peers starting,
/// teardown, writing reports).
const DEADLINE_MARGIN: Duration = Duration::from_secs(600);

impl JobPlan {
    /// The manifest: a volume for the reports, the Indexed Job of shards,
    /// and the merge Job.
    pub(crate) fn render(&self) -> Result<String, PlanError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 40
            && self.name.starts_with(|c: char| c.is_ascii_lowercase())
            && !self.name.ends_with('-')
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !name_ok {
            return Err(PlanError::Name(self.name.clone()));
        }
        if self.shards == 0 {
            return Err(PlanError::NoShards);
        }
        let quoted = [&self.image, &self.start_at, &self.scenario]
            .into_iter()
            .chain(&self.server);
        for value in quoted {
            if value.contains(['"', '\n', '\\']) || value.is_empty() {
                return Err(PlanError::Unquotable(value.clone()));
            }
        }
        let deadline = self.lasts + DEADLINE_MARGIN;
        // The merge waits for records almost as long as the shards may run.
        let wait = deadline.saturating_sub(Duration::from_secs(60));
        let server_args = self.server.as_ref().map_or(String::new(), |url| {
            format!("\n            - --server\n            - \"{url}\"")
        });
        Ok(TEMPLATE
            .replace("{{name}}", &self.name)
            .replace("{{image}}", &self.image)
            .replace("{{shards}}", &self.shards.to_string())
            .replace("{{start_at}}", &self.start_at)
            .replace("{{scenario}}", &self.scenario)
            .replace("{{server_args}}", &server_args)
            .replace("{{deadline_s}}", &deadline.as_secs().to_string())
            .replace("{{wait_s}}", &wait.as_secs().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> JobPlan {
        JobPlan {
            name: "pairs".into(),
            image: "registry.example/callprobe:1".into(),
            shards: 4,
            start_at: "2026-12-01T12:00:00Z".into(),
            scenario: "scenarios/pairs-20.toml".into(),
            server: Some("wss://signaling.example/ws".into()),
            lasts: Duration::from_secs(125),
        }
    }

    #[test]
    fn every_value_is_filled_in() {
        let yaml = plan().render().unwrap();
        assert!(!yaml.contains("{{"), "{yaml}");
        for expected in [
            "completionMode: Indexed",
            "completions: 4",
            "parallelism: 4",
            "maxFailedIndexes: 4",
            "- --shard-from-env\n            - \"4\"",
            "- \"2026-12-01T12:00:00Z\"",
            "- --server\n            - \"wss://signaling.example/ws\"\n            - \"scenarios/pairs-20.toml\"",
            "subPathExpr: shard-$(JOB_COMPLETION_INDEX)",
            "activeDeadlineSeconds: 725",
            "$(( 4 - 1 ))",
            "callprobe merge /reports/shard-*",
            "claimName: pairs-reports",
        ] {
            assert!(yaml.contains(expected), "{expected:?} not in:\n{yaml}");
        }
        let without_server = JobPlan {
            server: None,
            ..plan()
        };
        let yaml = without_server.render().unwrap();
        assert!(
            yaml.contains("- /reports\n            - \"scenarios/pairs-20.toml\""),
            "{yaml}"
        );
    }

    #[test]
    fn a_plan_kubernetes_would_refuse_is_refused_here() {
        for name in ["", "Pairs", "1pairs", "pairs-", "p_airs"] {
            let plan = JobPlan {
                name: name.into(),
                ..plan()
            };
            assert_eq!(plan.render(), Err(PlanError::Name(name.into())));
        }
        let none = JobPlan {
            shards: 0,
            ..plan()
        };
        assert_eq!(none.render(), Err(PlanError::NoShards));
        let quote = JobPlan {
            image: "a\"b".into(),
            ..plan()
        };
        assert!(matches!(quote.render(), Err(PlanError::Unquotable(_))));
    }
}
