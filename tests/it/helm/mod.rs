//! The Helm chart rendered, linted and installed against the embedded API server.

mod chart;
mod install;
mod stock_chart;
mod support;
