//! svcplane allocators
