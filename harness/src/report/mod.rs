//! Reports (DESIGN §1): each reads only [`crate::results`].
//!
//! | module | what |
//! |---|---|
//! | `terminal` | the summary table printed after a run |
//! | `junit` | JUnit XML: one test case per threshold, for CI |
//! | `html` | one self-contained page with plots |
//!
//! The JSON report is [`RunReport`] serialized as it is.

mod html;
mod junit;
mod plots;
mod terminal;

use std::path::{Path, PathBuf};

pub use html::html;
pub use junit::junit;
pub use terminal::terminal;

use crate::results::RunReport;

/// Which files a run writes besides the terminal summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Formats {
    pub json: bool,
    pub junit: bool,
    pub html: bool,
}

impl Formats {
    pub const ALL: Formats = Formats {
        json: true,
        junit: true,
        html: true,
    };

    pub fn any(self) -> bool {
        self.json || self.junit || self.html
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("rendering the JUnit XML: {0}")]
    Junit(#[from] quick_junit::SerializeError),
}

/// The full results as JSON.
pub fn json(report: &RunReport) -> String {
    serde_json::to_string_pretty(report).expect("the results model always serializes")
}

/// Writes the chosen formats into `dir` (created if needed); returns the
/// files written.
pub fn write(
    report: &RunReport,
    dir: &Path,
    formats: Formats,
) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = Vec::new();
    let write = |name: &str, text: String| -> Result<PathBuf, ReportError> {
        let path = dir.join(name);
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&path, text))
            .map_err(|source| ReportError::Write {
                path: path.clone(),
                source,
            })?;
        Ok(path)
    };
    if formats.json {
        written.push(write("report.json", json(report))?);
    }
    if formats.junit {
        written.push(write("junit.xml", junit(report)?)?);
    }
    if formats.html {
        written.push(write("report.html", html(report))?);
    }
    Ok(written)
}

/// A number of milliseconds as a report shows it.
pub(crate) fn ms(value: Option<f64>) -> String {
    match value {
        None => "–".to_owned(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
    }
}

/// A measured value: integers plainly, others to three significant places.
pub(crate) fn value(value: Option<f64>) -> String {
    match value {
        None => "no samples".to_owned(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e12 => format!("{v:.0}"),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 1.0 => format!("{v:.2}"),
        Some(v) => format!("{v:.3}"),
    }
}
