//! Rendering pull progress on stderr, in the four modes of `--progress`: per-layer bars
//! (`indicatif`) when stderr is a terminal, one plain line per layer otherwise, one JSON
//! object per line for machines, or nothing. The events come from
//! [`crate::image::registry::Observer`]; nothing here decides anything about a pull.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Progress;
use crate::image::registry::{Event, LayerStatus, Observer};

/// How progress is shown, after `auto` is resolved against the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Tty,
    Plain,
    Json,
    Quiet,
}

impl Mode {
    /// `--progress`, `auto` (the default) meaning bars on a terminal and plain lines
    /// otherwise; `quiet` (from `--quiet`) wins over everything.
    pub fn resolve(flag: Option<Progress>, quiet: bool) -> Mode {
        if quiet {
            return Mode::Quiet;
        }
        match flag.unwrap_or(Progress::Auto) {
            Progress::Auto if std::io::stderr().is_terminal() => Mode::Tty,
            Progress::Auto | Progress::Plain => Mode::Plain,
            Progress::Tty => Mode::Tty,
            Progress::Json => Mode::Json,
            Progress::Quiet => Mode::Quiet,
        }
    }
}

/// The first 12 hex digits, as Docker shows layer ids.
fn short(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex.get(..12).unwrap_or(hex)
}

/// Sizes as Docker prints them (decimal units).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        let number = format!("{value:.3}");
        let number = number.trim_end_matches('0').trim_end_matches('.');
        format!("{number}{}", UNITS.get(unit).copied().unwrap_or("B"))
    }
}

/// Renders pull events for one command run (several images may pull at once).
pub struct PullProgress {
    mode: Mode,
    /// Whether layers are unpacked, i.e. which status is a layer's last.
    unpack: bool,
    multi: MultiProgress,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    bars: HashMap<(String, String), ProgressBar>,
    /// Layers already in the store before this pull (plain mode says so at the end).
    cached: HashMap<(String, String), bool>,
    /// When each layer last printed a JSON `downloading` line.
    last_json: HashMap<(String, String), Instant>,
}

impl PullProgress {
    pub fn new(mode: Mode, unpack: bool) -> PullProgress {
        let multi = match mode {
            Mode::Tty => MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            _ => MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
        };
        PullProgress {
            mode,
            unpack,
            multi,
            state: Mutex::new(State::default()),
        }
    }

    /// A line for the user that is not an event (a failure, a skipped service): above the
    /// bars on a terminal, plain otherwise, a JSON object in JSON mode.
    pub fn message(&self, image: &str, text: &str) {
        match self.mode {
            Mode::Tty => {
                let _ = self.multi.println(format!("{image}: {text}"));
            }
            Mode::Plain => eprintln!("{image}: {text}"),
            Mode::Json => {
                let line = serde_json::json!({"event": "message", "image": image, "message": text});
                eprintln!("{line}");
            }
            Mode::Quiet => {}
        }
    }

    fn plain(&self, event: &Event<'_>, state: &mut State) {
        match *event {
            Event::Resolved {
                image, manifest, ..
            } => {
                eprintln!("{image}: resolved {manifest}");
            }
            Event::Layer {
                image,
                layer,
                status,
                total,
                ..
            } => {
                let key = (image.to_string(), layer.to_string());
                let cached = status == LayerStatus::AlreadyExists;
                if matches!(status, LayerStatus::AlreadyExists | LayerStatus::Downloaded) {
                    state.cached.insert(key.clone(), cached);
                }
                let last = if self.unpack {
                    status == LayerStatus::Unpacked
                } else {
                    matches!(status, LayerStatus::AlreadyExists | LayerStatus::Downloaded)
                };
                if last {
                    let how = if state.cached.remove(&key).unwrap_or(false) {
                        "already exists"
                    } else {
                        "pull complete"
                    };
                    eprintln!("{image}: {} {how} ({})", short(layer), human_size(total));
                }
            }
            Event::Pulled {
                image,
                manifest,
                downloaded,
            } => eprintln!(
                "{image}: pulled {manifest} ({} downloaded)",
                human_size(downloaded)
            ),
        }
    }

    fn json(&self, event: &Event<'_>, state: &mut State) {
        // Downloading progress at most 5 times a second per layer: enough for a UI, few
        // enough lines for a CI log.
        if let Event::Layer {
            image,
            layer,
            status: LayerStatus::Downloading,
            current,
            total,
        } = *event
            && current != 0
            && current != total
        {
            let key = (image.to_string(), layer.to_string());
            let now = Instant::now();
            match state.last_json.get(&key) {
                Some(last) if now.duration_since(*last) < Duration::from_millis(200) => return,
                _ => {
                    state.last_json.insert(key, now);
                }
            }
        }
        if let Ok(line) = serde_json::to_string(event) {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{line}");
        }
    }

    fn tty(&self, event: &Event<'_>, state: &mut State) {
        let style = ProgressStyle::with_template(
            "{prefix:.bold} {msg:<16} [{bar:30.cyan/blue}] {bytes:>10}/{total_bytes:<10}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        match *event {
            Event::Resolved {
                image, ref layers, ..
            } => {
                for &(layer, size) in layers {
                    let bar = self.multi.add(ProgressBar::new(size));
                    bar.set_style(style.clone());
                    bar.set_prefix(format!("{image} {}", short(layer)));
                    bar.set_message("waiting");
                    state
                        .bars
                        .insert((image.to_string(), layer.to_string()), bar);
                }
            }
            Event::Layer {
                image,
                layer,
                status,
                current,
                total,
            } => {
                let Some(bar) = state.bars.get(&(image.to_string(), layer.to_string())) else {
                    return;
                };
                bar.set_length(total);
                bar.set_position(current);
                let message = match status {
                    LayerStatus::AlreadyExists => "already exists",
                    LayerStatus::Downloading => "downloading",
                    LayerStatus::Downloaded => "downloaded",
                    LayerStatus::Unpacking => "unpacking",
                    LayerStatus::Unpacked => "pull complete",
                };
                bar.set_message(message);
                let last = if self.unpack {
                    status == LayerStatus::Unpacked
                } else {
                    matches!(status, LayerStatus::AlreadyExists | LayerStatus::Downloaded)
                };
                if last {
                    bar.finish();
                }
            }
            Event::Pulled {
                image, manifest, ..
            } => {
                let _ = self.multi.println(format!("{image}: pulled {manifest}"));
            }
        }
    }
}

impl Observer for PullProgress {
    fn event(&self, event: &Event<'_>) {
        if self.mode == Mode::Quiet {
            return;
        }
        let mut state = match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        match self.mode {
            Mode::Tty => self.tty(event, &mut state),
            Mode::Plain => self.plain(event, &mut state),
            Mode::Json => self.json(event, &mut state),
            Mode::Quiet => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ids_read_like_docker() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(1_234_567), "1.235MB");
        assert_eq!(human_size(1_200_000), "1.2MB");
        assert_eq!(short("sha256:0123456789abcdef"), "0123456789ab");
    }
}
