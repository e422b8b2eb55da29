//! k6-style thresholds: a metric's samples, a statistic of them, a
//! comparison: `"p95 < 20"`, `"max == 0"`, `"count >= 10"`.
//!
//! A threshold over a metric that has no samples fails: in CI, "nothing was
//! measured" must not read as a pass.

use std::fmt;
use std::str::FromStr;

/// Which statistic of the samples a threshold compares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Stat {
    Count,
    Min,
    Max,
    Avg,
    /// The median, `med` (same as `p50`).
    Med,
    /// `pNN`: the NN-th percentile, 0 to 100 (nearest rank).
    Percentile(f64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    const ALL: [(&'static str, Op); 6] = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];

    fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Op::Lt => left < right,
            Op::Le => left <= right,
            Op::Gt => left > right,
            Op::Ge => left >= right,
            Op::Eq => left == right,
            Op::Ne => left != right,
        }
    }

    fn as_str(self) -> &'static str {
        Op::ALL
            .iter()
            .find(|(_, op)| *op == self)
            .map(|(text, _)| *text)
            .expect("ALL lists every operator")
    }
}

/// One parsed threshold expression.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Threshold {
    pub stat: Stat,
    pub op: Op,
    pub value: f64,
}

/// Why an expression is not a threshold; the message says what was
/// expected, for the scenario error that wraps it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("threshold {expression:?}: {reason}")]
pub(crate) struct ThresholdError {
    pub expression: String,
    pub reason: String,
}

impl FromStr for Threshold {
    type Err = ThresholdError;

    fn from_str(expression: &str) -> Result<Self, Self::Err> {
        let error = |reason: String| ThresholdError {
            expression: expression.to_owned(),
            reason,
        };
        let text = expression.trim();
        let Some((at, op_text, op)) = Op::ALL
            .iter()
            .filter_map(|(op_text, op)| text.find(op_text).map(|at| (at, *op_text, *op)))
            .min_by_key(|(at, op_text, _)| (*at, std::cmp::Reverse(op_text.len())))
        else {
            return Err(error(
                "no comparison; write it as `<stat> <op> <number>`, e.g. `p95 < 20`".into(),
            ));
        };
        let stat_text = text[..at].trim();
        let value_text = text[at + op_text.len()..].trim();
        let stat = parse_stat(stat_text).map_err(error)?;
        let value: f64 = value_text
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| error(format!("{value_text:?} is not a number")))?;
        Ok(Threshold { stat, op, value })
    }
}

fn parse_stat(text: &str) -> Result<Stat, String> {
    let stat = match text {
        "count" => Stat::Count,
        "min" => Stat::Min,
        "max" => Stat::Max,
        "avg" | "mean" => Stat::Avg,
        "med" | "median" => Stat::Med,
        _ => {
            let percentile = text
                .strip_prefix('p')
                .and_then(|n| n.parse::<f64>().ok())
                .filter(|n| (0.0..=100.0).contains(n));
            match percentile {
                Some(n) => Stat::Percentile(n),
                None => {
                    return Err(format!(
                        "unknown statistic {text:?}; expected count, min, max, avg, med or pNN (0 to 100)"
                    ));
                }
            }
        }
    };
    Ok(stat)
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stat = match self.stat {
            Stat::Count => "count".to_owned(),
            Stat::Min => "min".to_owned(),
            Stat::Max => "max".to_owned(),
            Stat::Avg => "avg".to_owned(),
            Stat::Med => "med".to_owned(),
            Stat::Percentile(p) => format!("p{p}"),
        };
        write!(f, "{stat} {} {}", self.op.as_str(), self.value)
    }
}

/// The outcome of one threshold over one metric's samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Evaluation {
    pub passed: bool,
    /// The statistic as measured; `None` when there were no samples.
    pub measured: Option<f64>,
}

impl Threshold {
    pub(crate) fn evaluate(&self, samples: &[f64]) -> Evaluation {
        let measured = statistic(self.stat, samples);
        Evaluation {
            passed: measured.is_some_and(|m| self.op.holds(m, self.value)),
            measured,
        }
    }
}

/// A statistic of `samples`; `None` for no samples (except `count`, 0).
pub(crate) fn statistic(stat: Stat, samples: &[f64]) -> Option<f64> {
    if stat == Stat::Count {
        return Some(samples.len() as f64);
    }
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(match stat {
        Stat::Count => unreachable!("handled above"),
        Stat::Min => sorted[0],
        Stat::Max => sorted[sorted.len() - 1],
        Stat::Avg => sorted.iter().sum::<f64>() / sorted.len() as f64,
        Stat::Med => percentile(&sorted, 50.0),
        Stat::Percentile(p) => percentile(&sorted, p),
    })
}

/// Nearest-rank percentile of already sorted samples (not empty).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Threshold {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_k6_forms_parse() {
        assert_eq!(
            parse("p95 < 20"),
            Threshold {
                stat: Stat::Percentile(95.0),
                op: Op::Lt,
                value: 20.0
            }
        );
        assert_eq!(
            parse("max==0"),
            Threshold {
                stat: Stat::Max,
                op: Op::Eq,
                value: 0.0
            }
        );
        assert_eq!(parse(" p99.9 <= 1.5 ").stat, Stat::Percentile(99.9));
        assert_eq!(parse("count >= 10").op, Op::Ge);
        assert_eq!(parse("med != -1").value, -1.0);
        assert_eq!(parse("avg > 2").to_string(), "avg > 2");
    }

    #[test]
    fn malformed_expressions_say_what_is_wrong() {
        let reason = |text: &str| text.parse::<Threshold>().unwrap_err().reason;
        assert!(reason("p95 20").contains("no comparison"));
        assert!(reason("p101 < 20").contains("unknown statistic \"p101\""));
        assert!(reason("average < 20").contains("unknown statistic"));
        assert!(reason("p95 < twenty").contains("\"twenty\" is not a number"));
        assert!(reason("p95 < NaN").contains("not a number"));
        let error = "max = 0".parse::<Threshold>().unwrap_err();
        assert!(
            error.to_string().starts_with("threshold \"max = 0\""),
            "{error}"
        );
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(statistic(Stat::Percentile(95.0), &samples), Some(95.0));
        assert_eq!(statistic(Stat::Med, &samples), Some(50.0));
        assert_eq!(statistic(Stat::Percentile(100.0), &samples), Some(100.0));
        assert_eq!(statistic(Stat::Percentile(0.0), &samples), Some(1.0));
        assert_eq!(statistic(Stat::Avg, &[1.0, 2.0, 6.0]), Some(3.0));
    }

    #[test]
    fn thresholds_pass_and_fail_with_the_measured_value() {
        let samples = [8.0, 9.0, 10.0, 30.0];
        let passed = parse("p50 < 10").evaluate(&samples);
        assert_eq!(
            passed,
            Evaluation {
                passed: true,
                measured: Some(9.0)
            }
        );
        let failed = parse("max < 20").evaluate(&samples);
        assert_eq!(
            failed,
            Evaluation {
                passed: false,
                measured: Some(30.0)
            }
        );
    }

    #[test]
    fn no_samples_fail_except_a_count_that_allows_zero() {
        assert_eq!(
            parse("p95 < 20").evaluate(&[]),
            Evaluation {
                passed: false,
                measured: None
            }
        );
        assert!(parse("count == 0").evaluate(&[]).passed);
        assert!(!parse("count > 0").evaluate(&[]).passed);
    }
}
