//! JUnit XML for CI: a test suite per scenario, a test case per threshold.
//! A failed threshold is a `failure` carrying the measured value; a scenario
//! that could not run is an `error`; a skipped one is `skipped`.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::ReportError;
use crate::results::{RunReport, ScenarioResult, Status};

pub fn junit(report: &RunReport) -> Result<String, ReportError> {
    let mut junit = Report::new("callprobe");
    for scenario in &report.scenarios {
        junit.add_test_suite(suite(scenario));
    }
    Ok(junit.to_string()?)
}

fn suite(scenario: &ScenarioResult) -> TestSuite {
    let mut suite = TestSuite::new(format!("{} ({})", scenario.name, scenario.file));
    suite.set_time(std::time::Duration::from_secs_f64(
        scenario.ran_ms.max(0.0) / 1e3,
    ));
    let reason = scenario.reason.clone().unwrap_or_default();
    match scenario.status {
        Status::Skipped => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(reason);
            suite.add_test_case(case(scenario, "scenario", status));
            return suite;
        }
        Status::Error | Status::Interrupted | Status::Invalid => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_message(format!("{}: {reason}", scenario.status));
            suite.add_test_case(case(scenario, "scenario", status));
        }
        Status::Passed | Status::Failed => {}
    }
    for threshold in &scenario.thresholds {
        let measured = super::value(threshold.measured);
        let status = if threshold.passed {
            TestCaseStatus::success()
        } else {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status
                .set_message(format!("measured {measured}"))
                .set_type("threshold")
                .set_description(format!(
                    "{} {}: measured {measured}{}",
                    threshold.metric,
                    threshold.expression,
                    if threshold.default {
                        " (a default check)"
                    } else {
                        ""
                    }
                ));
            status
        };
        let name = format!("{} {}", threshold.metric, threshold.expression);
        let mut test_case = case(scenario, &name, status);
        test_case.set_system_out(format!("measured {measured}"));
        suite.add_test_case(test_case);
    }
    suite
}

fn case(scenario: &ScenarioResult, name: &str, status: TestCaseStatus) -> TestCase {
    let mut case = TestCase::new(name, status);
    case.set_classname(scenario.name.clone());
    case
}
