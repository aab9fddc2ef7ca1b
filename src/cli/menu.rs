//! The keyboard shortcuts of attached `up --menu` (Docker Compose's navigation menu, also
//! switched on by `COMPOSE_MENU`): a line naming them, and a thread reading keys from the
//! terminal in cbreak mode — no line buffering and no echo, while Ctrl-C stays a signal and
//! output is unchanged (raw mode would turn every log line's newline into a bare line
//! feed). It owns the terminal's mode while `up` is attached and restores it when dropped;
//! it decides nothing about containers: it only says what was asked.

use std::io::{IsTerminal, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::termios::{
    LocalFlags, SetArg, SpecialCharacterIndices, Termios, tcgetattr, tcsetattr,
};

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Stop showing the logs and return, leaving the containers running.
    Detach,
}

/// The shortcuts, as the menu line shows them.
const SHORTCUTS: &[(char, Action, &str)] = &[('d', Action::Detach, "Detach")];

/// The action of a key (either case), if it has one.
pub fn action(key: u8) -> Option<Action> {
    SHORTCUTS
        .iter()
        .find(|(k, ..)| k.eq_ignore_ascii_case(&char::from(key)))
        .map(|(_, a, _)| *a)
}

/// The menu line: `d Detach`.
pub fn line() -> String {
    SHORTCUTS
        .iter()
        .map(|(k, _, what)| format!("{k} {what}"))
        .collect::<Vec<_>>()
        .join("   ")
}

/// The menu while it is shown: the terminal in cbreak mode until dropped.
pub struct Menu {
    saved: Termios,
}

impl Menu {
    /// Shows the menu and starts reading keys; `detach` is set when `d` is pressed.
    /// `None` (and nothing changed) unless both stdin and stdout are terminals.
    pub fn start(detach: Arc<AtomicBool>) -> Option<Menu> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() || !std::io::stdout().is_terminal() {
            return None;
        }
        let saved = tcgetattr(&stdin).ok()?;
        let mut cbreak = saved.clone();
        cbreak
            .local_flags
            .remove(LocalFlags::ICANON | LocalFlags::ECHO);
        cbreak.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
        cbreak.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
        tcsetattr(&stdin, SetArg::TCSANOW, &cbreak).ok()?;
        eprintln!("{}", line());
        // Blocked in `read` for the rest of `up`: it ends with the process.
        std::thread::spawn(move || {
            let mut key = [0u8; 1];
            while let Ok(1) = std::io::stdin().lock().read(&mut key) {
                if action(key[0]) == Some(Action::Detach) {
                    detach.store(true, Ordering::SeqCst);
                    return;
                }
            }
        });
        Some(Menu { saved })
    }
}

impl Drop for Menu {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_the_menu_line() {
        assert_eq!(action(b'd'), Some(Action::Detach));
        assert_eq!(action(b'D'), Some(Action::Detach));
        assert_eq!(action(b'x'), None);
        assert_eq!(action(b'\n'), None);
        assert_eq!(line(), "d Detach");
    }
}
