//! svcplane controllers
