//! Reading a scenario file (TOML or JSON) and pointing at places in it:
//! every problem names the file, the line, the column and the field.
//!
//! Syntax and type errors carry their position from the parser; problems
//! found later, in validation, carry a field path (`calls[1].to`) that is
//! looked up in a spanned parse of the same text.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Where a value sits in the file's structure: `calls[1].to`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    pub fn key(mut self, key: &str) -> Self {
        self.0.push(Seg::Key(key.to_owned()));
        self
    }

    pub fn index(mut self, index: usize) -> Self {
        self.0.push(Seg::Index(index));
        self
    }

    fn from_serde(path: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment;
        FieldPath(
            path.iter()
                .filter_map(|segment| match segment {
                    Segment::Seq { index } => Some(Seg::Index(*index)),
                    Segment::Map { key } => Some(Seg::Key(key.clone())),
                    Segment::Enum { .. } | Segment::Unknown => None,
                })
                .collect(),
        )
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(index) => write!(f, "[{index}]")?,
                Seg::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let bare = !key.is_empty()
                        && key
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if bare {
                        f.write_str(key)?;
                    } else {
                        write!(f, "{key:?}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// One thing wrong with a scenario file, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based; 0 when the place could not be found.
    pub line: usize,
    pub column: usize,
    pub field: FieldPath,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.field.0.is_empty() {
            write!(f, ": field `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Toml,
    Json,
}

impl Format {
    /// By extension: `.json` is JSON, anything else TOML.
    pub fn of(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Toml,
        }
    }
}

/// A scenario file's text, kept to point into.
#[derive(Clone, Debug)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
    pub format: Format,
}

impl Source {
    pub fn new(path: impl Into<PathBuf>, text: String) -> Self {
        let path = path.into();
        let format = Format::of(&path);
        Source { path, text, format }
    }

    /// Deserializes the whole file; a failure becomes a located problem.
    pub(crate) fn deserialize<T: DeserializeOwned>(&self) -> Result<T, Problem> {
        match self.format {
            Format::Toml => self.deserialize_toml(),
            Format::Json => self.deserialize_json(),
        }
    }

    fn deserialize_toml<T: DeserializeOwned>(&self) -> Result<T, Problem> {
        let deserializer = toml::de::Deserializer::parse(&self.text).map_err(|e| {
            self.problem_at(e.span().map(|s| s.start), FieldPath::default(), e.message())
        })?;
        serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let field = FieldPath::from_serde(e.path());
            let offset = e.inner().span().map(|s| s.start);
            let message = e.inner().message().to_owned();
            match offset {
                Some(offset) => self.problem_at(Some(offset), field, &message),
                None => self.problem(field, &message),
            }
        })
    }

    fn deserialize_json<T: DeserializeOwned>(&self) -> Result<T, Problem> {
        let mut deserializer = serde_json::Deserializer::from_str(&self.text);
        let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let field = FieldPath::from_serde(e.path());
            self.json_problem(field, e.inner())
        })?;
        deserializer
            .end()
            .map_err(|e| self.json_problem(FieldPath::default(), &e))?;
        Ok(value)
    }

    fn json_problem(&self, field: FieldPath, error: &serde_json::Error) -> Problem {
        // serde_json appends " at line L column C" to its message.
        let message = error.to_string();
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(m, _)| m)
            .to_owned();
        Problem {
            file: self.path.clone(),
            line: error.line(),
            column: error.column(),
            field,
            message,
        }
    }

    /// A problem with the value at `field`, located in the text.
    pub(crate) fn problem(&self, field: FieldPath, message: &str) -> Problem {
        let offset = self.locate(&field).map(|span| span.start);
        self.problem_at(offset, field, message)
    }

    fn problem_at(&self, offset: Option<usize>, field: FieldPath, message: &str) -> Problem {
        let (line, column) = offset.map_or((0, 0), |o| line_and_column(&self.text, o));
        Problem {
            file: self.path.clone(),
            line,
            column,
            field,
            message: message.to_owned(),
        }
    }

    /// The byte span of the value at `path`, or of the deepest part of the
    /// path that exists (a missing field points at its parent).
    pub(crate) fn locate(&self, path: &FieldPath) -> Option<Range<usize>> {
        match self.format {
            Format::Toml => locate_toml(&self.text, path),
            Format::Json => locate_json(&self.text, path),
        }
    }
}

fn locate_toml(text: &str, path: &FieldPath) -> Option<Range<usize>> {
    let root = toml::de::DeTable::parse(text).ok()?;
    let mut span = root.span();
    let root = toml::de::DeValue::Table(root.into_inner());
    let mut value = &root;
    for seg in &path.0 {
        let next = match seg {
            Seg::Key(key) => value.get(key.as_str()),
            Seg::Index(index) => value.get(*index),
        };
        let Some(next) = next else { break };
        span = next.span();
        value = next.get_ref();
    }
    Some(span)
}

fn locate_json(text: &str, path: &FieldPath) -> Option<Range<usize>> {
    use jsonc_parser::ast::Value;
    use jsonc_parser::common::Ranged;
    let parsed = jsonc_parser::parse_to_ast(text, &Default::default(), &Default::default()).ok()?;
    let mut value = parsed.value.as_ref()?;
    let mut range = value.range();
    for seg in &path.0 {
        let next = match (seg, value) {
            (Seg::Key(key), Value::Object(object)) => object.get(key).map(|p| &p.value),
            (Seg::Index(index), Value::Array(array)) => array.elements.get(*index),
            _ => None,
        };
        let Some(next) = next else { break };
        value = next;
        range = value.range();
    }
    Some(range.start..range.end)
}

/// 1-based line and column (in characters) of a byte offset.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_print_as_a_reader_would_write_them() {
        let path = FieldPath::default().key("calls").index(1).key("to");
        assert_eq!(path.to_string(), "calls[1].to");
        let path = FieldPath::default()
            .key("thresholds")
            .key("setup.first_frame_ms")
            .index(0);
        assert_eq!(path.to_string(), "thresholds.\"setup.first_frame_ms\"[0]");
    }

    #[test]
    fn a_path_is_found_in_toml_and_in_json() {
        let toml = Source::new(
            "a.toml",
            "name = \"x\"\n\n[[calls]]\nfrom = \"a\"\n\n[[calls]]\nfrom = \"b\"\nto = \"c\"\n"
                .to_owned(),
        );
        let path = FieldPath::default().key("calls").index(1).key("to");
        let problem = toml.problem(path.clone(), "nope");
        assert_eq!((problem.line, problem.column), (8, 6));
        let json = Source::new(
            "a.json",
            "{\n  \"calls\": [\n    {\"from\": \"a\"},\n    {\"from\": \"b\", \"to\": \"c\"}\n  ]\n}\n"
                .to_owned(),
        );
        let problem = json.problem(path, "nope");
        assert_eq!((problem.line, problem.column), (4, 25));
        assert!(
            problem
                .to_string()
                .starts_with("a.json:4:25: field `calls[1].to`: nope")
        );
    }

    #[test]
    fn a_missing_field_points_at_its_parent() {
        let toml = Source::new("a.toml", "[[calls]]\nfrom = \"a\"\n".to_owned());
        let problem = toml.problem(FieldPath::default().key("calls").index(0).key("to"), "x");
        assert_eq!(problem.line, 1);
    }

    #[test]
    fn line_and_column_count_characters_not_bytes() {
        assert_eq!(line_and_column("ab\ncé d", 7), (2, 4));
        assert_eq!(line_and_column("", 0), (1, 1));
    }
}
