//! The Helm chart rendered, linted and installed against the embedded API server.

mod chart;
mod install;
mod rbac_use;
mod stock_chart;
mod support;
