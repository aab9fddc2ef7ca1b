//! Diagnostics for Compose input: the files the loader read, and errors that point into them.
//!
//! Every user-caused error in the `compose` module ends up as a [`ComposeError`]: one message,
//! the file, line and column of the offending key, and (through `miette`) the source line with
//! a caret under it. This module owns the registry of loaded sources ([`Sources`]) so that a
//! [`Loc`] — a file id plus a position — can be turned into something a person can read. It
//! does no I/O; the loader hands it text it has already read.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{LabeledSpan, NamedSource, SourceSpan};

use super::yaml::{FileId, Loc};

/// One source the loader read: a Compose file, an env file, or standard input.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: Arc<str>,
}

/// All sources read while loading one project, indexed by [`FileId`].
#[derive(Debug, Clone, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

impl Sources {
    pub fn add(&mut self, path: &Path, text: &str) -> FileId {
        self.files.push(SourceFile {
            path: path.to_path_buf(),
            text: Arc::from(text),
        });
        (self.files.len() - 1) as FileId
    }

    pub fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id as usize)
    }

    pub fn path(&self, id: FileId) -> Option<&Path> {
        self.get(id).map(|f| f.path.as_path())
    }

    /// An error located at `loc`, with the source attached for rendering.
    pub fn error_at(&self, loc: Loc, message: impl Into<String>) -> ComposeError {
        let mut e = ComposeError::new(message);
        if let Some(file) = self.get(loc.file) {
            e.location = Some(Box::new(Location {
                path: file.path.clone(),
                line: loc.line,
                col: loc.col,
            }));
            let offset = (loc.offset as usize).min(file.text.len());
            e.source = Some(Box::new((
                file.path.display().to_string(),
                file.text.clone(),
                offset,
            )));
        }
        e
    }
}

/// A file position as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.col)
    }
}

/// An error in the user's Compose input (or in what it refers to: env files, extended files).
#[derive(Debug, Clone)]
pub struct ComposeError {
    pub message: String,
    /// Boxed, like the snippet below, to keep `Result<_, ComposeError>` small.
    pub location: Option<Box<Location>>,
    pub help: Option<String>,
    /// (name, text, byte offset) for miette's snippet rendering.
    source: Option<Box<(String, Arc<str>, usize)>>,
}

impl ComposeError {
    pub fn new(message: impl Into<String>) -> Self {
        ComposeError {
            message: message.into(),
            location: None,
            help: None,
            source: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// An error about a file as a whole (it could not be read, it is not a mapping...).
    pub fn in_file(path: &Path, message: impl Into<String>) -> Self {
        let mut e = ComposeError::new(message);
        e.location = Some(Box::new(Location {
            path: path.to_path_buf(),
            line: 0,
            col: 0,
        }));
        e
    }
}

impl fmt::Display for ComposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(l) if l.line > 0 => write!(f, "{l}: {}", self.message),
            Some(l) => write!(f, "{}: {}", l.path.display(), self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ComposeError {}

impl miette::Diagnostic for ComposeError {
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        None
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h.as_str()) as Box<dyn fmt::Display>)
    }
}

impl ComposeError {
    /// Render for a terminal: the message, then the source line with a caret (miette's
    /// graphical handler without colours, so that snapshots and logs stay plain text).
    pub fn render(&self) -> String {
        let Some((name, text, offset)) = self.source.as_deref() else {
            return match &self.help {
                Some(h) => format!("error: {self}\n  help: {h}\n"),
                None => format!("error: {self}\n"),
            };
        };
        let report = Snippet {
            message: self.to_string(),
            help: self.help.clone(),
            src: NamedSource::new(name.clone(), text.to_string()),
            span: SourceSpan::from((*offset, 0)),
        };
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                .with_context_lines(1)
                .with_width(100)
                // No wrapping: the header holds a path, and output must not depend on its length.
                .with_wrap_lines(false);
        let mut out = String::new();
        if handler.render_report(&mut out, &report).is_err() {
            return format!("error: {self}\n");
        }
        out
    }
}

/// The miette view of a located error.
#[derive(Debug)]
struct Snippet {
    message: String,
    help: Option<String>,
    src: NamedSource<String>,
    span: SourceSpan,
}

impl fmt::Display for Snippet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Snippet {}

impl miette::Diagnostic for Snippet {
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.src)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            Some("here".to_string()),
            self.span,
        ))))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h.as_str()) as Box<dyn fmt::Display>)
    }
}
