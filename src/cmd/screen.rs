//! How `apply` and `rollback` print their events: a status line that rewrites itself on a
//! terminal, plain lines otherwise.

use std::io::{IsTerminal, Write};

use crate::apply::set::Event;

/// Prints events as they come.
pub struct Screen {
    terminal: bool,
    status_shown: bool,
}

impl Screen {
    /// A screen on stdout.
    pub fn new() -> Self {
        Self {
            terminal: std::io::stdout().is_terminal(),
            status_shown: false,
        }
    }

    /// Prints one event.
    pub fn show(&mut self, event: Event<'_>) {
        match event {
            Event::Status(line) if self.terminal => {
                let mut out = std::io::stdout().lock();
                let _ = write!(out, "\r\x1b[2K{line}");
                let _ = out.flush();
                self.status_shown = true;
            }
            Event::Status(line) | Event::Note(line) => {
                self.clear();
                println!("{line}");
            }
            Event::Outcome(o) => {
                self.clear();
                println!("{o}");
            }
        }
    }

    /// Removes the status line, if one is shown.
    pub fn clear(&mut self) {
        if std::mem::take(&mut self.status_shown) {
            print!("\r\x1b[2K");
            let _ = std::io::stdout().flush();
        }
    }
}
