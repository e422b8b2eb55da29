//! Scenario files against arbitrary damage: validation never panics, and
//! every problem it reports points at a line of the file and says
//! something.

use proptest::prelude::*;

use super::*;

const VALID: &str = include_str!("../../../scenarios/basic-call.toml");

fn check(name: &str, text: &str) -> Result<(), TestCaseError> {
    match Scenario::parse(&Source::new(name, text.to_owned())) {
        Ok(_) => Ok(()),
        Err(ScenarioError::Invalid { problems }) => {
            prop_assert!(!problems.is_empty());
            let lines = text.lines().count().max(1);
            for problem in &problems {
                prop_assert!(problem.line >= 1 && problem.line <= lines + 1, "{problem}");
                prop_assert!(problem.message.len() >= 8, "{problem}");
            }
            Ok(())
        }
        Err(other) => Err(TestCaseError::fail(format!("{other}"))),
    }
}

proptest! {
    #![proptest_config(crate::proptest_seed::config(256))]

    #[test]
    fn any_text_validates_or_is_refused_at_a_line(text in "\\PC{0,300}") {
        check("s.toml", &text)?;
        check("s.json", &text)?;
    }

    /// A real scenario with one line replaced, dropped or repeated.
    #[test]
    fn a_damaged_scenario_is_refused_at_a_line_or_still_valid(
        line in 0usize..40,
        action in 0u8..3,
        replacement in "[a-z_.\"=\\[\\]{} 0-9,]{0,40}",
    ) {
        let mut lines: Vec<&str> = VALID.lines().collect();
        let at = line % lines.len();
        match action {
            0 => lines[at] = &replacement,
            1 => {
                lines.remove(at);
            }
            _ => lines.insert(at, lines[at]),
        }
        check("s.toml", &lines.join("\n"))?;
    }
}
