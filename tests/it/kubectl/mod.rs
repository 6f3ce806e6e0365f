//! The real kubectl against the embedded API server.

mod cli;
mod explain;
mod protobuf;
