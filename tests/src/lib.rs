//! Shared fixtures for svcplane integration tests.
