//! A container's log: what its supervisor writes and what `wharf logs` reads. One JSON
//! object per line, as Docker's `json-file` driver writes them — `{"log": "text\n",
//! "stream": "stdout", "time": "2026-11-23T17:32:05.123456789Z"}` — so that tools that read
//! Docker's logs read ours. Output is split at newlines; a line longer than
//! [`MAX_LINE`] is written in pieces, as Docker does, so one runaway line cannot hold
//! unbounded memory. Rotation follows `logging.options`: when the file would pass
//! `max-size` it becomes `<log>.1` (older ones shift up to `<log>.<max-file - 1>`, the
//! oldest is dropped). This module owns the format and the files; it does not know where
//! the output comes from (the supervisor's pipes) and never touches anything but the log
//! path it is given and its numbered siblings.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Docker's buffer size for one log entry: longer lines are split.
pub const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

type Result<T> = std::result::Result<T, LogError>;

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LogError + use<> {
    let path = path.to_path_buf();
    move |source| LogError::Io { op, path, source }
}

/// Which of the container's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One log entry, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The text, with its trailing newline when the line was complete.
    pub log: String,
    pub stream: Stream,
    /// RFC 3339 in UTC with nanoseconds.
    pub time: String,
}

/// Rotation settings (`logging.options`); `max_size: None` never rotates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub max_size: Option<u64>,
    /// Files kept in all, the current one included (at least 1).
    pub max_file: u32,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            max_size: None,
            max_file: 1,
        }
    }
}

/// Appends entries to a log file, rotating it as configured.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    rotation: Rotation,
    /// Bytes of an unfinished line, per stream.
    pending: [Vec<u8>; 2],
}

impl LogWriter {
    /// Opens (appending to) the log at `path`.
    pub fn open(path: &Path, rotation: Rotation) -> Result<LogWriter> {
        let mut file = open_append(path)?;
        let mut size = file.metadata().map_err(io_err("inspecting", path))?.len();
        // A supervisor killed mid-write leaves a torn last line: end it, so that the next
        // entry starts on a line of its own (the torn one is skipped when read).
        if size > 0 && !ends_with_newline(path, size)? {
            file.write_all(b"\n").map_err(io_err("writing", path))?;
            size += 1;
        }
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            rotation,
            pending: [Vec::new(), Vec::new()],
        })
    }

    /// Records output of `stream` read at `now`: every complete line becomes an entry,
    /// the rest waits for its newline (or for [`LogWriter::flush_partial`]).
    pub fn write(&mut self, stream: Stream, bytes: &[u8], now: SystemTime) -> Result<()> {
        let index = stream as usize;
        let mut rest = bytes;
        while !rest.is_empty() {
            let pending_len = self.pending[index].len();
            let room = MAX_LINE - pending_len;
            let newline = rest.iter().take(room).position(|&b| b == b'\n');
            let (take, complete) = match newline {
                Some(i) => (i + 1, true),
                None if rest.len() >= room => (room, true),
                None => (rest.len(), false),
            };
            let (chunk, tail) = rest.split_at(take);
            self.pending[index].extend_from_slice(chunk);
            rest = tail;
            if complete {
                let line = std::mem::take(&mut self.pending[index]);
                self.append(stream, &line, now)?;
            }
        }
        Ok(())
    }

    /// Writes what is left of unfinished lines (the process exited mid-line).
    pub fn flush_partial(&mut self, now: SystemTime) -> Result<()> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let line = std::mem::take(&mut self.pending[stream as usize]);
            if !line.is_empty() {
                self.append(stream, &line, now)?;
            }
        }
        Ok(())
    }

    fn append(&mut self, stream: Stream, line: &[u8], now: SystemTime) -> Result<()> {
        let entry = Entry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream,
            time: rfc3339_nanos(now),
        };
        let mut bytes = serde_json::to_vec(&entry).unwrap_or_default();
        bytes.push(b'\n');
        if let Some(max) = self.rotation.max_size
            && self.size > 0
            && self.size + bytes.len() as u64 > max
        {
            self.rotate()?;
        }
        self.file
            .write_all(&bytes)
            .map_err(io_err("writing", &self.path))?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// `log` → `log.1` → … → `log.<max_file - 1>`; with `max_file` 1 the log is emptied.
    fn rotate(&mut self) -> Result<()> {
        let keep = self.rotation.max_file.max(1);
        for n in (1..keep).rev() {
            let from = if n == 1 {
                self.path.clone()
            } else {
                numbered(&self.path, n - 1)
            };
            match fs::rename(&from, numbered(&self.path, n)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(io_err("rotating", &from)(e));
                }
                _ => {}
            }
        }
        if keep == 1 {
            self.file
                .set_len(0)
                .map_err(io_err("truncating", &self.path))?;
        }
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn ends_with_newline(path: &Path, size: u64) -> Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(path).map_err(io_err("opening", path))?;
    file.seek(SeekFrom::Start(size - 1))
        .map_err(io_err("reading", path))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)
        .map_err(io_err("reading", path))?;
    Ok(last[0] == b'\n')
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_err("opening", path))
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Every entry of the log and its rotated files, oldest first. Lines that are not entries
/// (a torn last line after a crash) are skipped.
pub fn read_all(path: &Path, max_file: u32) -> Result<Vec<Entry>> {
    let mut files: Vec<PathBuf> = (1..max_file.max(1))
        .rev()
        .map(|n| numbered(path, n))
        .collect();
    files.push(path.to_path_buf());
    let mut out = Vec::new();
    for file in files {
        let reader = match File::open(&file) {
            Ok(f) => BufReader::new(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err("opening", &file)(e)),
        };
        for line in reader.lines() {
            let line = line.map_err(io_err("reading", &file))?;
            if let Ok(entry) = serde_json::from_str::<Entry>(&line) {
                out.push(entry);
            }
        }
    }
    Ok(out)
}

/// Reads a log as it grows (`wharf logs -f`): [`Follower::open`] returns what the log
/// holds now and a follower that continues exactly where that reading stopped, across
/// rotation (the file renamed away and a new one begun: the old one is read to its end
/// first) and truncation (`max-file` 1: read again from the start). A line still being
/// written is held back until its newline arrives.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    max_file: u32,
    file: Option<(File, u64)>,
    offset: u64,
    partial: Vec<u8>,
    /// The first line of the current file, to notice it was truncated and written again.
    head: Vec<u8>,
}

impl Follower {
    /// Every entry of the log and its rotated files, oldest first (as [`read_all`]), and a
    /// follower positioned after them. A log that does not exist yet is empty.
    pub fn open(path: &Path, max_file: u32) -> Result<(Vec<Entry>, Follower)> {
        use std::os::unix::fs::MetadataExt;
        // The current file first, so that a rotation while the older ones are read is
        // caught by the inode check rather than losing lines.
        let file = match File::open(path) {
            Ok(f) => {
                let ino = f.metadata().map_err(io_err("inspecting", path))?.ino();
                Some((f, ino))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err("opening", path)(e)),
        };
        let older: Vec<PathBuf> = (1..max_file.max(1))
            .rev()
            .map(|n| numbered(path, n))
            .collect();
        let mut out = Vec::new();
        for p in &older {
            match fs::read(p) {
                Ok(bytes) => out.extend(parse_lines(&bytes)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("reading", p)(e)),
            }
        }
        let mut follower = Follower {
            path: path.to_path_buf(),
            max_file: max_file.max(1),
            file,
            offset: 0,
            partial: Vec::new(),
            head: Vec::new(),
        };
        out.extend(follower.read_new()?);
        Ok((out, follower))
    }

    /// The entries written since the last call (or since [`Follower::open`]).
    pub fn read_new(&mut self) -> Result<Vec<Entry>> {
        use std::io::{Seek, SeekFrom};
        use std::os::unix::fs::MetadataExt;
        let mut out = Vec::new();
        loop {
            let now = match fs::metadata(&self.path) {
                Ok(m) => Some((m.ino(), m.len())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(io_err("inspecting", &self.path)(e)),
            };
            match (&self.file, now) {
                (Some((file, ino)), Some((now_ino, len))) if *ino == now_ino => {
                    // Truncated in place (and perhaps written again): shorter than what
                    // was read, or no longer starting with the line it started with.
                    if len < self.offset || !self.starts_with_head(file) {
                        let mut file = file;
                        file.seek(SeekFrom::Start(0))
                            .map_err(io_err("reading", &self.path))?;
                        self.offset = 0;
                        self.partial.clear();
                        self.head.clear();
                    }
                    self.drain(&mut out)?;
                    return Ok(out);
                }
                // Rotated (or created): the old file is read to its end, the files
                // rotated after it (when it rotated more than once since the last call)
                // in full, and the new one from its start.
                (old, Some(_)) => {
                    let old_ino = old.as_ref().map(|(_, ino)| *ino);
                    self.drain(&mut out)?;
                    if let Some(ino) = old_ino {
                        out.extend(rotated_after(&self.path, self.max_file, ino)?);
                    }
                    let file = match File::open(&self.path) {
                        Ok(f) => f,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
                        Err(e) => return Err(io_err("opening", &self.path)(e)),
                    };
                    let ino = file
                        .metadata()
                        .map_err(io_err("inspecting", &self.path))?
                        .ino();
                    self.file = Some((file, ino));
                    self.offset = 0;
                    self.partial.clear();
                    self.head.clear();
                }
                (_, None) => {
                    self.drain(&mut out)?;
                    return Ok(out);
                }
            }
        }
    }

    /// Reads the current file to its end; complete lines become entries.
    fn drain(&mut self, out: &mut Vec<Entry>) -> Result<()> {
        use std::io::Read;
        let Some((file, _)) = &mut self.file else {
            return Ok(());
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(io_err("reading", &self.path))?;
        let partial_start = self.offset - self.partial.len() as u64;
        self.offset += bytes.len() as u64;
        self.partial.extend_from_slice(&bytes);
        if self.head.is_empty()
            && partial_start == 0
            && let Some(first) = self.partial.iter().position(|&b| b == b'\n')
        {
            self.head = self.partial[..=first].to_vec();
        }
        if let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') {
            let rest = self.partial.split_off(end + 1);
            out.extend(parse_lines(&self.partial));
            self.partial = rest;
        }
        Ok(())
    }

    /// Whether `file` still begins with the first line read from it.
    fn starts_with_head(&self, file: &File) -> bool {
        use std::os::unix::fs::FileExt;
        if self.head.is_empty() {
            return true;
        }
        let mut buf = vec![0; self.head.len()];
        file.read_exact_at(&mut buf, 0).is_ok() && buf == self.head
    }
}

/// The entries of `path`'s rotated files newer than the one with inode `ino`.
fn rotated_after(path: &Path, max_file: u32, ino: u64) -> Result<Vec<Entry>> {
    use std::os::unix::fs::MetadataExt;
    let at = (1..max_file).find(|&n| fs::metadata(numbered(path, n)).is_ok_and(|m| m.ino() == ino));
    let mut out = Vec::new();
    for n in (1..at.unwrap_or(1)).rev() {
        let p = numbered(path, n);
        match fs::read(&p) {
            Ok(bytes) => out.extend(parse_lines(&bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("reading", &p)(e)),
        }
    }
    Ok(out)
}

/// The entries among `bytes`' lines; lines that are not entries are skipped.
fn parse_lines(bytes: &[u8]) -> impl Iterator<Item = Entry> + '_ {
    bytes
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice::<Entry>(line).ok())
}

/// `2026-11-23T17:32:05.123456789Z`.
pub fn rfc3339_nanos(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Days since 1970-01-01 → (year, month, day), Howard Hinnant's `civil_from_days`.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn times_are_rfc3339_utc_with_nanoseconds() {
        assert_eq!(rfc3339_nanos(at(0, 0)), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_nanos(at(1_795_455_125, 123_456_789)),
            "2026-11-23T17:32:05.123456789Z"
        );
        // A leap day.
        assert_eq!(
            rfc3339_nanos(at(951_782_400, 1)),
            "2000-02-29T00:00:00.000000001Z"
        );
    }

    #[test]
    fn lines_are_split_at_newlines_and_streams_keep_their_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.log");
        let mut w = LogWriter::open(&path, Rotation::default()).expect("open");
        w.write(Stream::Stdout, b"one\ntw", at(1, 0)).expect("w");
        w.write(Stream::Stderr, b"err\n", at(2, 0)).expect("w");
        w.write(Stream::Stdout, b"o\nthree", at(3, 0)).expect("w");
        w.flush_partial(at(4, 0)).expect("flush");
        let entries = read_all(&path, 1).expect("read");
        let got: Vec<(&str, Stream)> = entries.iter().map(|e| (e.log.as_str(), e.stream)).collect();
        assert_eq!(
            got,
            [
                ("one\n", Stream::Stdout),
                ("err\n", Stream::Stderr),
                ("two\n", Stream::Stdout),
                ("three", Stream::Stdout),
            ]
        );
        // Docker's json-file shape, field for field.
        let first = fs::read_to_string(&path).expect("read");
        assert_eq!(
            first.lines().next(),
            Some(r#"{"log":"one\n","stream":"stdout","time":"1970-01-01T00:00:01.000000000Z"}"#)
        );
    }

    #[test]
    fn a_runaway_line_is_written_in_pieces() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.log");
        let mut w = LogWriter::open(&path, Rotation::default()).expect("open");
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        w.write(Stream::Stdout, &long, at(1, 0)).expect("w");
        w.write(Stream::Stdout, b"\n", at(1, 0)).expect("w");
        let entries = read_all(&path, 1).expect("read");
        let lens: Vec<usize> = entries.iter().map(|e| e.log.len()).collect();
        assert_eq!(lens, [MAX_LINE, MAX_LINE, 11]);
    }

    #[test]
    fn rotation_keeps_max_file_files_of_at_most_max_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.log");
        let rotation = Rotation {
            max_size: Some(300),
            max_file: 3,
        };
        let mut w = LogWriter::open(&path, rotation).expect("open");
        for i in 0..40 {
            w.write(
                Stream::Stdout,
                format!("line {i:02}\n").as_bytes(),
                at(i, 0),
            )
            .expect("w");
        }
        for p in [&path, &numbered(&path, 1), &numbered(&path, 2)] {
            let len = fs::metadata(p).expect("exists").len();
            assert!(len <= 300, "{p:?} is {len} bytes");
        }
        assert!(!numbered(&path, 3).exists(), "only max-file files are kept");
        let entries = read_all(&path, 3).expect("read");
        let last = entries.last().expect("entries");
        assert_eq!(last.log, "line 39\n");
        // Oldest first and contiguous: the kept lines are the newest ones, in order.
        let numbers: Vec<u32> = entries
            .iter()
            .filter_map(|e| e.log.trim().strip_prefix("line ")?.parse().ok())
            .collect();
        assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
        assert!(numbers.len() < 40, "old lines were dropped");

        // max-file 1: the log is emptied in place.
        let single = dir.path().join("s.log");
        let mut w = LogWriter::open(
            &single,
            Rotation {
                max_size: Some(200),
                max_file: 1,
            },
        )
        .expect("open");
        for i in 0..20 {
            w.write(Stream::Stderr, b"0123456789\n", at(i, 0))
                .expect("w");
        }
        assert!(fs::metadata(&single).expect("exists").len() <= 200);
        assert!(!numbered(&single, 1).exists());
    }

    #[test]
    fn a_follower_continues_across_appends_rotation_and_truncation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.log");
        let logs = |v: Vec<Entry>| -> Vec<String> { v.into_iter().map(|e| e.log).collect() };
        let (before, mut f) = Follower::open(&path, 3).expect("open");
        assert!(before.is_empty(), "no log yet");
        let rotation = Rotation {
            max_size: Some(200),
            max_file: 3,
        };
        let mut w = LogWriter::open(&path, rotation).expect("open");
        w.write(Stream::Stdout, b"a\nb\n", at(1, 0)).expect("w");
        assert_eq!(logs(f.read_new().expect("read")), ["a\n", "b\n"]);
        assert!(f.read_new().expect("read").is_empty(), "nothing twice");
        // Enough lines to rotate twice between two reads: nothing is lost or repeated
        // as long as the follower's file is still among the kept ones.
        for i in 0..4 {
            w.write(Stream::Stdout, format!("r{i}\n").as_bytes(), at(2, 0))
                .expect("w");
        }
        assert_eq!(
            logs(f.read_new().expect("read")),
            ["r0\n", "r1\n", "r2\n", "r3\n"]
        );
        // A half-written line waits for its newline.
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(br#"{"log":"half"#))
            .expect("append");
        assert!(f.read_new().expect("read").is_empty());
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(b"\\n\",\"stream\":\"stdout\",\"time\":\"t\"}\n"))
            .expect("append");
        assert_eq!(logs(f.read_new().expect("read")), ["half\n"]);
        // A reopened follower sees the whole history, rotated files included.
        let (all, _) = Follower::open(&path, 3).expect("open");
        assert_eq!(logs(all).last().map(String::as_str), Some("half\n"));

        // max-file 1: truncated in place, read again from the start.
        let single = dir.path().join("s.log");
        let mut w = LogWriter::open(
            &single,
            Rotation {
                max_size: Some(100),
                max_file: 1,
            },
        )
        .expect("open");
        let (_, mut f) = Follower::open(&single, 1).expect("open");
        w.write(Stream::Stdout, b"one\n", at(1, 0)).expect("w");
        assert_eq!(logs(f.read_new().expect("read")), ["one\n"]);
        w.write(Stream::Stdout, b"second\n", at(1, 0)).expect("w");
        assert!(fs::metadata(&single).expect("log").len() < 100, "truncated");
        assert_eq!(
            logs(f.read_new().expect("read")),
            ["second\n"],
            "rotated by truncation"
        );
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_appending_continues() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.log");
        fs::write(
            &path,
            "{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"t\"}\n{\"log\":",
        )
        .expect("w");
        let mut w = LogWriter::open(&path, Rotation::default()).expect("open");
        w.write(Stream::Stdout, b"b\n", at(1, 0)).expect("w");
        let logs: Vec<String> = read_all(&path, 1)
            .expect("read")
            .into_iter()
            .map(|e| e.log)
            .collect();
        assert_eq!(
            logs,
            ["a\n", "b\n"],
            "the torn line is skipped, the next one kept"
        );
    }
}
