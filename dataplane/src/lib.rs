//! svcplane dataplane
