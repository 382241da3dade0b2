//! The real terminal: raw mode and the alternate screen on the way in, and
//! the way out restored whatever happens (quit, Ctrl-C, SIGINT, SIGTERM,
//! SIGHUP, an error, a panic).
//!
//! Restoring happens in [`TerminalGuard`]'s `Drop` and in a panic hook that
//! runs before the panic message is printed, so the message lands on a sane
//! screen. Both go through [`restore`], which only acts once per entry.
//! Signals never restore from a handler: the run loop receives them as
//! events and returns, dropping the guard. (SIGKILL cannot be caught; `reset`
//! is the remedy.)

use std::io::{self, Stdout, stdout};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use crossterm::cursor::{Hide, Show};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

/// Whether the terminal is in our mode and needs restoring.
static ACTIVE: AtomicBool = AtomicBool::new(false);
static PANIC_HOOK: Once = Once::new();

pub type Screen = Terminal<CrosstermBackend<Stdout>>;

/// The terminal in raw mode on the alternate screen, until dropped.
#[derive(Debug)]
pub struct TerminalGuard {
    terminal: Screen,
}

impl TerminalGuard {
    pub fn enter() -> io::Result<Self> {
        PANIC_HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                previous(info);
            }));
        });
        enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        let entered = execute!(stdout(), EnterAlternateScreen, Hide)
            .and_then(|()| Terminal::new(CrosstermBackend::new(stdout())));
        match entered {
            Ok(terminal) => Ok(Self { terminal }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }

    pub fn terminal(&mut self) -> &mut Screen {
        &mut self.terminal
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Leaves raw mode and the alternate screen and shows the cursor, if we
/// entered them; otherwise does nothing. Best effort: errors are ignored,
/// there is nowhere left to report them.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = disable_raw_mode();
        let _ = execute!(stdout(), LeaveAlternateScreen, Show);
    }
}
