//! What a resource handler answers: the response and the warnings to attach to it (shared by
//! the handlers and the subresource modules they dispatch to).

use crate::codec::Body;

/// A successful response and the warnings to attach to it.
pub struct Reply {
    /// The HTTP response.
    pub response: http::Response<Body>,
    /// `Warning` headers.
    pub warnings: Vec<String>,
}

impl Reply {
    /// A reply without warnings.
    pub(crate) fn new(response: http::Response<Body>) -> Self {
        Reply {
            response,
            warnings: Vec::new(),
        }
    }

    /// A reply carrying `warnings` (defaulting, strict decoding and admission warnings of a
    /// write).
    pub(crate) fn with_warnings(response: http::Response<Body>, warnings: Vec<String>) -> Self {
        Reply { response, warnings }
    }
}
