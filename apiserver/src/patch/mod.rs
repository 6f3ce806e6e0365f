//! Patch types served by the API server: JSON merge patch, JSON patch, strategic merge patch, server-side apply.
