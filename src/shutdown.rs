//! When a long-running subcommand must stop: on SIGTERM (what Kubernetes, systemd and
//! `docker stop` send) and on SIGINT (Ctrl-C) alike.
//!
//! Every long-running subcommand (`dev`, `webhook`, `node-agent`) calls [`Shutdown::install`]
//! before it serves anything, so a signal that arrives during start-up is not lost (nor kills
//! the process with the default action), then waits on
//! [`Shutdown::requested`] and stops in order: stop accepting work, finish what is in flight
//! (bounded), persist, then stop its helpers. A second signal ends the process at once, for
//! the impatient operator; the graceful path never needs it.
//!
//! `controller-manager` handles both signals inside `svcplane_controllers::run`.
#![warn(missing_docs)]

use std::fmt;

use tokio::sync::watch;

/// The signal that asked the process to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM.
    Terminate,
    /// SIGINT (Ctrl-C).
    Interrupt,
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Terminate => "SIGTERM",
            Signal::Interrupt => "SIGINT",
        })
    }
}

/// A handle on the installed signal handlers; clones wait on the same signal.
#[derive(Debug, Clone)]
pub struct Shutdown {
    requested: watch::Receiver<Option<Signal>>,
}

impl Shutdown {
    /// Installs the SIGTERM and SIGINT handlers (replacing the default action, which ends the
    /// process without cleanup) and starts listening. Must run inside the tokio runtime.
    pub fn install() -> std::io::Result<Shutdown> {
        let mut signals = Signals::register()?;
        let (tx, rx) = watch::channel(None);
        tokio::spawn(async move {
            let first = signals.next().await;
            tracing::info!(signal = %first, "shutdown requested");
            let _ = tx.send(Some(first));
            let second = signals.next().await;
            eprintln!("svcplane: {second} received again, exiting without waiting");
            std::process::exit(1);
        });
        Ok(Shutdown { requested: rx })
    }

    /// Completes with the signal once one has arrived (at once if it already has).
    pub async fn requested(mut self) -> Signal {
        loop {
            if let Some(signal) = *self.requested.borrow_and_update() {
                return signal;
            }
            if self.requested.changed().await.is_err() {
                // The listener is gone (runtime shutting down): treat as a termination.
                return Signal::Terminate;
            }
        }
    }
}

/// The registered signal streams.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn register() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    #[cfg(not(unix))]
    fn register() -> std::io::Result<Signals> {
        Ok(Signals {})
    }

    #[cfg(unix)]
    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Terminate,
            _ = self.int.recv() => Signal::Interrupt,
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> Signal {
        let _ = tokio::signal::ctrl_c().await;
        Signal::Interrupt
    }
}
