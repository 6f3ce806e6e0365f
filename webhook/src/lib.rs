//! svcplane webhook
