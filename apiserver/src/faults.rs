//! Fault injection for tests: failing a fraction of requests, adding latency, dropping open
//! watches and expiring watch history. Driven from Rust (`RunningServer::faults`) or, when the
//! server was started with faults enabled (`svcplane dev --faults`), over `POST /debug/faults`.

use std::time::Duration;

use parking_lot::RwLock;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::ApiError;

/// One rule: requests matching `verb` and `resource` (absent = any) fail with `status` with
/// probability `fraction`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// Lower-case verb (`create`, `update`, `patch`, `delete`, `get`, `list`, `watch`), or any.
    #[serde(default)]
    pub verb: Option<String>,
    /// Plural resource (`endpointslices`), or any.
    #[serde(default)]
    pub resource: Option<String>,
    /// Probability in [0, 1].
    pub fraction: f64,
    /// HTTP status to fail with: 500, 429 or 409.
    pub status: u16,
}

/// The fault configuration as a whole (the body of `POST /debug/faults`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultConfig {
    /// Failure rules, checked in order.
    #[serde(default)]
    pub rules: Vec<FaultRule>,
    /// Latency added to every request, in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
}

impl FaultConfig {
    /// Checks the rules are meaningful; the message names the bad field.
    pub fn validate(&self) -> Result<(), String> {
        for (i, r) in self.rules.iter().enumerate() {
            if !(0.0..=1.0).contains(&r.fraction) {
                return Err(format!(
                    "rules[{i}].fraction: must be between 0 and 1, got {}",
                    r.fraction
                ));
            }
            if !matches!(r.status, 409 | 429 | 500) {
                return Err(format!(
                    "rules[{i}].status: must be 409, 429 or 500, got {}",
                    r.status
                ));
            }
        }
        Ok(())
    }
}

/// Live fault state shared by all request handlers.
pub struct Faults {
    config: RwLock<FaultConfig>,
    drop_watches: watch::Sender<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            config: RwLock::new(FaultConfig::default()),
            drop_watches: watch::channel(0).0,
        }
    }
}

impl Faults {
    /// Replaces the configuration.
    pub fn set(&self, config: FaultConfig) -> Result<(), String> {
        config.validate()?;
        *self.config.write() = config;
        Ok(())
    }

    /// Removes all rules and latency.
    pub fn clear(&self) {
        *self.config.write() = FaultConfig::default();
    }

    /// The current configuration.
    pub fn get(&self) -> FaultConfig {
        self.config.read().clone()
    }

    /// Ends every open watch (clients must re-watch, and resume from their last revision).
    pub fn drop_watches(&self) {
        self.drop_watches.send_modify(|n| *n += 1);
    }

    /// A receiver that changes whenever watches are dropped.
    pub fn watch_drops(&self) -> watch::Receiver<u64> {
        self.drop_watches.subscribe()
    }

    /// Added latency, if any.
    pub fn latency(&self) -> Option<Duration> {
        let ms = self.config.read().latency_ms;
        (ms > 0).then(|| Duration::from_millis(ms))
    }

    /// Decides whether this request fails, and how.
    pub fn check(&self, verb: &str, resource: &str, name: &str) -> Result<(), ApiError> {
        let config = self.config.read();
        if config.rules.is_empty() {
            return Ok(());
        }
        let mut rng = rand::rng();
        for rule in &config.rules {
            if rule.verb.as_deref().is_some_and(|v| v != verb)
                || rule.resource.as_deref().is_some_and(|r| r != resource)
            {
                continue;
            }
            if rng.random::<f64>() < rule.fraction {
                return Err(match rule.status {
                    429 => ApiError::too_many_requests(),
                    409 => ApiError::conflict("", resource, name),
                    _ => ApiError::internal("injected fault: internal error"),
                });
            }
        }
        Ok(())
    }
}
