//! The Helm chart rendered, linted and installed against the embedded API server.

mod chart;
mod stock_chart;
mod support;
