//! Rendering a plan as it is applied, in the four modes of `--progress`: one live line per
//! resource redrawn in place on a terminal (` ✔ Container shop-web-1  Started  0.4s`, as
//! Docker Compose shows it), one plain line per event otherwise, one JSON object per line
//! for machines, or nothing. The events come from the engine through
//! [`crate::apply::Observer`]; nothing here decides anything about the plan.
//!
//! A resource keeps one line however many steps touch it: a container goes Creating,
//! Created, Starting, Started on the same line. The replacement of a recreated container
//! is created under a temporary name (`<id12>_<name>`) and renamed later; it is shown under
//! its final name, "Recreate" and "Recreated" as Docker Compose says it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use super::progress::Mode;
use crate::apply::{Observer, Outcome};
use crate::plan::{Operation, Step};

/// Applies `plan` through `driver` as `--parallel` allows, showing progress on stderr as
/// `--progress` asks, then repeats the failures together (so that none scrolls away
/// unnoticed). The one way `up`, `down`, `start` and `restart` run a plan. Returns whether
/// every step succeeded.
pub fn apply<D: crate::apply::Driver>(
    global: &super::GlobalArgs,
    plan: &crate::plan::Plan,
    driver: D,
) -> anyhow::Result<bool> {
    let mode = Mode::resolve(global.progress, false);
    // `--parallel -1` (unlimited) becomes usize::MAX; the engine caps it.
    let parallel = usize::try_from(global.parallel)
        .unwrap_or(usize::MAX)
        .max(1);
    let report = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(crate::apply::run_observed(
            plan,
            Arc::new(driver),
            parallel,
            Arc::new(ApplyProgress::new(mode, Box::new(io::stderr()))),
        ));
    if mode != Mode::Json {
        for failure in report.failures(plan) {
            eprintln!("error: {failure}");
        }
    }
    Ok(report.succeeded())
}

/// The writer all modes print to, shared with the terminal adapter of the Tty mode.
type Out = Arc<Mutex<Box<dyn Write + Send>>>;

/// An [`Observer`] that renders each step's start and end.
pub struct ApplyProgress {
    mode: Mode,
    out: Out,
    /// Tty mode: the live lines.
    multi: Option<MultiProgress>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// When each step started (by id), for elapsed times.
    started: HashMap<usize, Instant>,
    /// Tty mode: the line of each resource (by its label).
    bars: HashMap<String, ProgressBar>,
}

impl ApplyProgress {
    /// Renders in `mode` to `out` (the CLI passes standard error; tests, a buffer).
    pub fn new(mode: Mode, out: Box<dyn Write + Send>) -> ApplyProgress {
        let out: Out = Arc::new(Mutex::new(out));
        let multi = (mode == Mode::Tty).then(|| {
            MultiProgress::with_draw_target(ProgressDrawTarget::term_like(Box::new(Terminal {
                out: out.clone(),
                width: console::Term::stderr().size().1,
            })))
        });
        ApplyProgress {
            mode,
            out,
            multi,
            state: Mutex::new(State::default()),
        }
    }

    fn line(&self, text: &str) {
        // Progress output is best effort: a closed stderr must not fail the apply.
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
    }

    fn json(&self, step: &Step, status: &str, message: &str, elapsed: Duration) {
        let event = serde_json::json!({
            "id": step.id,
            "resource": step.resource,
            "operation": step.operation,
            "status": status,
            "message": message,
            "elapsed_ms": u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        });
        self.line(&event.to_string());
    }

    /// The Tty line of `label`, made on first use.
    fn bar(&self, state: &mut State, label: &str) -> Option<ProgressBar> {
        let multi = self.multi.as_ref()?;
        let bar = state
            .bars
            .entry(label.to_string())
            .or_insert_with(|| {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_prefix(label.to_string());
                bar
            })
            .clone();
        Some(bar)
    }
}

impl Observer for ApplyProgress {
    fn started(&self, step: &Step) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.started.insert(step.id, Instant::now());
        let label = label(step);
        let (doing, _) = words(step);
        match self.mode {
            Mode::Quiet => {}
            Mode::Plain => self.line(&format!(" {label}  {doing}")),
            Mode::Json => self.json(step, "started", &step.cause, Duration::ZERO),
            Mode::Tty => {
                if let Some(bar) = self.bar(&mut state, &label) {
                    bar.set_style(running_style());
                    bar.reset_elapsed();
                    bar.set_message(doing);
                    bar.enable_steady_tick(Duration::from_millis(100));
                }
            }
        }
    }

    fn finished(&self, step: &Step, outcome: &Outcome) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let elapsed = state
            .started
            .get(&step.id)
            .map(Instant::elapsed)
            .unwrap_or_default();
        let label = label(step);
        let (_, done) = words(step);
        let (status, message) = match outcome {
            Outcome::Done => ("done", done),
            Outcome::Failed(m) => ("failed", format!("Error {m}")),
            Outcome::Skipped { because } => ("skipped", format!("Skipped (#{because} failed)")),
        };
        match self.mode {
            Mode::Quiet => {}
            Mode::Plain => self.line(&format!(" {label}  {message}")),
            Mode::Json => {
                let message = match outcome {
                    Outcome::Done => String::new(),
                    Outcome::Failed(m) => m.clone(),
                    Outcome::Skipped { because } => format!("step #{because} failed"),
                };
                self.json(step, status, &message, elapsed);
            }
            Mode::Tty => {
                if let Some(bar) = self.bar(&mut state, &label) {
                    bar.disable_steady_tick();
                    let mark = match outcome {
                        Outcome::Done => "\x1b[32m✔\x1b[0m",
                        Outcome::Failed(_) => "\x1b[31m✘\x1b[0m",
                        Outcome::Skipped { .. } => "\x1b[33m-\x1b[0m",
                    };
                    // The time is frozen into the message: a finished line is not redrawn
                    // with a clock that keeps running.
                    let time = match outcome {
                        Outcome::Skipped { .. } => String::new(),
                        _ => format!("  {:.1}s", elapsed.as_secs_f64()),
                    };
                    bar.set_style(finished_style(mark));
                    bar.finish_with_message(format!("{message}{time}"));
                }
            }
        }
    }
}

/// `Container shop-web-1`, `Network shop_default`: the kind capitalized, and a
/// replacement container under its final name.
fn label(step: &Step) -> String {
    let (kind, name) = step
        .resource
        .split_once(':')
        .unwrap_or(("", step.resource.as_str()));
    let kind = match kind {
        "container" => "Container",
        "network" => "Network",
        "volume" => "Volume",
        other => other,
    };
    let name = if kind == "Container" {
        final_name(name)
    } else {
        name
    };
    format!("{kind} {name}").trim().to_string()
}

/// `<12 hex digits>_<name>` (the temporary name of a replacement) → `<name>`.
fn final_name(name: &str) -> &str {
    match name.split_once('_') {
        Some((id, rest)) if id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()) => rest,
        _ => name,
    }
}

/// What a step is doing, and what it did: `Starting`, `Started`.
fn words(step: &Step) -> (String, String) {
    let target = step.target.as_deref().unwrap_or("");
    let (doing, done) = match step.operation {
        Operation::CreateContainer
            if step
                .resource
                .strip_prefix("container:")
                .is_some_and(|n| final_name(n) != n) =>
        {
            ("Recreate", "Recreated")
        }
        Operation::CreateNetwork | Operation::CreateVolume | Operation::CreateContainer => {
            ("Creating", "Created")
        }
        Operation::RemoveNetwork | Operation::RemoveVolume | Operation::RemoveContainer => {
            ("Removing", "Removed")
        }
        Operation::StartContainer => ("Starting", "Started"),
        Operation::StopContainer => ("Stopping", "Stopped"),
        Operation::RenameContainer => ("Renaming", "Renamed"),
        Operation::ConnectNetwork => {
            return (
                format!("Connecting to {target}"),
                format!("Connected to {target}"),
            );
        }
        Operation::DisconnectNetwork => {
            return (
                format!("Disconnecting from {target}"),
                format!("Disconnected from {target}"),
            );
        }
    };
    (doing.to_string(), done.to_string())
}

fn running_style() -> ProgressStyle {
    ProgressStyle::with_template(" {spinner:.cyan} {prefix}  {msg}  {secs}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .tick_strings(&["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏", "⠿"])
        .with_key(
            "secs",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.1}s", state.elapsed().as_secs_f64());
            },
        )
}

fn finished_style(mark: &str) -> ProgressStyle {
    // The mark is part of the template; `{` and `}` cannot occur in it.
    ProgressStyle::with_template(&format!(" {mark} {{prefix}}  {{msg}}"))
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// The Tty mode's terminal: indicatif's cursor movements as ANSI sequences on the writer.
struct Terminal {
    out: Out,
    /// Columns of standard error's terminal (80 when it is none). indicatif pads every line
    /// to it and lets the terminal wrap, so it must be the real width.
    width: u16,
}

impl std::fmt::Debug for Terminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Terminal")
    }
}

impl Terminal {
    fn write(&self, s: &str) -> io::Result<()> {
        let mut out = self
            .out
            .lock()
            .map_err(|_| io::Error::other("progress writer poisoned"))?;
        out.write_all(s.as_bytes())
    }
}

impl TermLike for Terminal {
    fn width(&self) -> u16 {
        self.width
    }

    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.write(&format!("\x1b[{n}A"))
    }

    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.write(&format!("\x1b[{n}B"))
    }

    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.write(&format!("\x1b[{n}C"))
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.write(&format!("\x1b[{n}D"))
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        let mut line = String::with_capacity(s.len() + 1);
        let _ = writeln!(line, "{s}");
        self.write(&line)
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        self.write(s)
    }

    fn clear_line(&self) -> io::Result<()> {
        self.write("\r\x1b[2K")
    }

    fn flush(&self) -> io::Result<()> {
        self.out
            .lock()
            .map_err(|_| io::Error::other("progress writer poisoned"))?
            .flush()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::apply::{Driver, run_observed};
    use crate::plan::Plan;

    /// A writer the test keeps a handle on.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    /// Fails the steps it is told to (by id), does the rest.
    struct Fake(BTreeSet<usize>);

    impl Driver for Fake {
        fn execute(&self, step: &Step) -> Result<(), String> {
            if self.0.contains(&step.id) {
                return Err(format!("{} refused", step.resource));
            }
            Ok(())
        }
    }

    /// A chain (each step waits for the one before), so that the events come in one order:
    /// a network, a volume, a container made and started, another recreated whose start
    /// fails, and a reconnect skipped because of it.
    fn plan() -> Plan {
        let step = |id: usize, resource: &str, operation, target: Option<&str>| Step {
            id,
            resource: resource.into(),
            operation,
            cause: "test".into(),
            deps: if id > 1 { vec![id - 1] } else { vec![] },
            target: target.map(str::to_string),
        };
        use Operation::*;
        Plan {
            steps: vec![
                step(1, "network:shop_back", CreateNetwork, None),
                step(2, "volume:shop_data", CreateVolume, None),
                step(3, "container:shop-db-1", CreateContainer, None),
                step(4, "container:shop-db-1", StartContainer, None),
                step(
                    5,
                    "container:0123456789ab_shop-api-1",
                    CreateContainer,
                    None,
                ),
                step(6, "container:shop-api-1", StopContainer, None),
                step(7, "container:shop-api-1", RemoveContainer, None),
                step(
                    8,
                    "container:0123456789ab_shop-api-1",
                    RenameContainer,
                    Some("shop-api-1"),
                ),
                step(9, "container:shop-api-1", StartContainer, None),
                step(10, "container:shop-web-1", ConnectNetwork, Some("back")),
            ],
            warnings: vec![],
        }
    }

    fn render(mode: Mode) -> String {
        let buffer = Buffer::default();
        let progress = Arc::new(ApplyProgress::new(mode, Box::new(buffer.clone())));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let report = runtime.block_on(run_observed(
            &plan(),
            Arc::new(Fake([9].into())),
            1,
            progress,
        ));
        assert!(!report.succeeded());
        buffer.text()
    }

    #[test]
    fn plain_prints_one_line_per_event() {
        insta::assert_snapshot!(render(Mode::Plain), @r"
         Network shop_back  Creating
         Network shop_back  Created
         Volume shop_data  Creating
         Volume shop_data  Created
         Container shop-db-1  Creating
         Container shop-db-1  Created
         Container shop-db-1  Starting
         Container shop-db-1  Started
         Container shop-api-1  Recreate
         Container shop-api-1  Recreated
         Container shop-api-1  Stopping
         Container shop-api-1  Stopped
         Container shop-api-1  Removing
         Container shop-api-1  Removed
         Container shop-api-1  Renaming
         Container shop-api-1  Renamed
         Container shop-api-1  Starting
         Container shop-api-1  Error container:shop-api-1 refused
         Container shop-web-1  Skipped (#9 failed)
        ");
    }

    #[test]
    fn json_prints_one_object_per_event() {
        let text = render(Mode::Json);
        for line in text.lines() {
            let _: serde_json::Value = serde_json::from_str(line).unwrap();
        }
        insta::with_settings!({filters => vec![(r#""elapsed_ms":\d+"#, r#""elapsed_ms":"[ms]""#)]}, {
            insta::assert_snapshot!(text, @r#"
            {"id":1,"resource":"network:shop_back","operation":"CreateNetwork","status":"started","message":"test","elapsed_ms":"[ms]"}
            {"id":1,"resource":"network:shop_back","operation":"CreateNetwork","status":"done","message":"","elapsed_ms":"[ms]"}
            {"id":2,"resource":"volume:shop_data","operation":"CreateVolume","status":"started","message":"test","elapsed_ms":"[ms]"}
            {"id":2,"resource":"volume:shop_data","operation":"CreateVolume","status":"done","message":"","elapsed_ms":"[ms]"}
            {"id":3,"resource":"container:shop-db-1","operation":"CreateContainer","status":"started","message":"test","elapsed_ms":"[ms]"}
            {"id":3,"resource":"container:shop-db-1","operation":"CreateContainer","status":"done","message":"","elapsed_ms":"[ms]"}
            {"id":4,"resource":"container:shop-db-1","operation":"StartContainer","status":"started","message":"test","elapsed_ms":"[ms]"}
            {"id":4,"resource":"container:shop-db-1","operation":"StartContainer","status":"done","message":"","elapsed_ms":"[ms]"}
            {"id":5,"resource":"container:0123456789ab_shop-api-1","operation":"CreateContainer","status":"started","message":"test","elapsed_ms":"[ms]"}
            {"id":5,"resource":"container:0123456789ab_shop-api-1","operation":"CreateContainer","status":"done","message":"","elapsed_ms":"[ms]"}
            {"id":6,"resource":"container:shop-api-1","operation":"StopContainer","status":"started","message":"test","elapsed_ms":"[ms]"}
            {"id":6,"resource":"container:shop-api-1","operation":"StopContainer","status":"done","message":"","elapsed_ms":"[ms]"}
            {"id":7,"resource":"container:shop-api-1","operation":"RemoveContainer","status":"started","message":"test","elapsed_ms":"[ms]"}
            {"id":7,"resource":"container:shop-api-1","operation":"RemoveContainer","status":"done","message":"","elapsed_ms":"[ms]"}
            {"id":8,"resource":"container:0123456789ab_shop-api-1","operation":"RenameContainer","status":"started","message":"test","elapsed_ms":"[ms]"}
            {"id":8,"resource":"container:0123456789ab_shop-api-1","operation":"RenameContainer","status":"done","message":"","elapsed_ms":"[ms]"}
            {"id":9,"resource":"container:shop-api-1","operation":"StartContainer","status":"started","message":"test","elapsed_ms":"[ms]"}
            {"id":9,"resource":"container:shop-api-1","operation":"StartContainer","status":"failed","message":"container:shop-api-1 refused","elapsed_ms":"[ms]"}
            {"id":10,"resource":"container:shop-web-1","operation":"ConnectNetwork","status":"skipped","message":"step #9 failed","elapsed_ms":"[ms]"}
            "#);
        });
    }

    #[test]
    fn quiet_prints_nothing() {
        assert_eq!(render(Mode::Quiet), "");
    }

    #[test]
    fn tty_draws_one_line_per_resource() {
        let text = render(Mode::Tty);
        for expected in [
            "✔\x1b[0m Network shop_back  Created",
            "✔\x1b[0m Container shop-db-1  Started",
            "✘\x1b[0m Container shop-api-1  Error container:shop-api-1 refused",
            "-\x1b[0m Container shop-web-1  Skipped (#9 failed)",
        ] {
            assert!(text.contains(expected), "{expected:?} not in {text:?}");
        }
    }

    #[test]
    fn labels_and_words() {
        let step = |resource: &str, operation, target: Option<&str>| Step {
            id: 1,
            resource: resource.into(),
            operation,
            cause: String::new(),
            deps: vec![],
            target: target.map(str::to_string),
        };
        let s = step(
            "container:0123456789ab_shop-web-1",
            Operation::CreateContainer,
            None,
        );
        assert_eq!(label(&s), "Container shop-web-1");
        assert_eq!(words(&s).0, "Recreate");
        // A name with an underscore that is no temporary prefix stays as it is.
        let s = step("container:my_app", Operation::CreateContainer, None);
        assert_eq!(
            (label(&s).as_str(), words(&s).1.as_str()),
            ("Container my_app", "Created")
        );
        let s = step(
            "container:shop-db-1",
            Operation::DisconnectNetwork,
            Some("back"),
        );
        assert_eq!(words(&s).1, "Disconnected from back");
        assert_eq!(label(&step("odd", Operation::StopContainer, None)), "odd");
    }
}
