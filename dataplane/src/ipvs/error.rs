//! Errors of the IPVS client: of the exchange as a whole ([`IpvsError`]) and of one operation
//! of a batch ([`OpError`]).

use std::fmt;
use std::io;
use std::net::SocketAddr;

use nix::errno::Errno;

use super::types::{IpvsOp, ServiceKey};
use crate::netlink_batch::{Nack, TransportError};

/// A failure of the IPVS client as a whole.
#[derive(Debug, thiserror::Error)]
pub enum IpvsError {
    /// The kernel has no IPVS: the generic netlink family "IPVS" is not registered.
    #[error(
        "IPVS is not available in this kernel ({reason}); load the ip_vs module, \
         or run the node agent with --backend nftables"
    )]
    NotAvailable {
        /// What the kernel answered.
        reason: String,
    },
    /// A netlink socket call failed.
    #[error("IPVS {request}: {source}")]
    Socket {
        /// The request being made (`dump services`...).
        request: &'static str,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// The kernel refused a request that is not a table change (a dump, `GET_INFO`), e.g.
    /// `EPERM` without `CAP_NET_ADMIN`.
    #[error("IPVS {request}: {errno}{}", message.as_ref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Refused {
        /// The request.
        request: &'static str,
        /// The kernel's errno.
        errno: Errno,
        /// The kernel's extended-ACK message, if any.
        message: Option<String>,
    },
    /// The kernel's answer could not be understood.
    #[error("IPVS {request}: unexpected answer from the kernel: {detail}")]
    Malformed {
        /// The request.
        request: &'static str,
        /// What was wrong, naming the attribute and the service it belongs to.
        detail: String,
    },
    /// Answers to a batch were lost (receive queue overrun): the outcome of some operations is
    /// unknown. Dump the table again before the next change.
    #[error("IPVS {request}: some kernel answers were lost (receive queue overrun); re-read the IPVS table")]
    AnswersLost {
        /// The request.
        request: &'static str,
    },
}

impl IpvsError {
    pub(crate) fn from_transport(request: &'static str, error: TransportError) -> Self {
        match error {
            TransportError::Io { source, .. } => Self::Socket { request, source },
            TransportError::Malformed(detail) => Self::Malformed { request, detail },
            TransportError::Refused(Nack { errno, message }) => Self::Refused {
                request,
                errno,
                message,
            },
            TransportError::AnswersLost => Self::AnswersLost { request },
            interrupted @ TransportError::DumpInterrupted => Self::Malformed {
                request,
                detail: interrupted.to_string(),
            },
        }
    }
}

/// Why one operation of a batch failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpCause {
    /// The kernel refused it with this errno: `EEXIST` (already there), `ESRCH` (no such
    /// service), `ENOENT` (no such destination; for an added service, no such scheduler
    /// module), `EINVAL` (attributes refused, e.g. a destination address that is not unicast).
    Kernel {
        /// The errno.
        errno: Errno,
        /// The kernel's extended-ACK message, if any.
        message: Option<String>,
    },
    /// Refused before sending: the kernel would reject it (the reason names the field).
    Invalid(String),
}

/// One operation of a batch that failed, naming the service and destination it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct OpError {
    /// What the operation does (`add service`, `delete destination`...).
    pub action: &'static str,
    /// The service it concerns.
    pub service: ServiceKey,
    /// The destination it concerns, for destination operations.
    pub dest: Option<SocketAddr>,
    /// Why it failed.
    pub cause: OpCause,
}

impl OpError {
    pub(crate) fn new(op: &IpvsOp, cause: OpCause) -> Self {
        Self {
            action: op.action(),
            service: op.service(),
            dest: op.dest(),
            cause,
        }
    }

    /// The kernel's errno, if the kernel refused the operation.
    pub fn errno(&self) -> Option<Errno> {
        match &self.cause {
            OpCause::Kernel { errno, .. } => Some(*errno),
            OpCause::Invalid(_) => None,
        }
    }

    /// The service or destination to add already exists (`EEXIST`).
    pub fn already_exists(&self) -> bool {
        self.errno() == Some(Errno::EEXIST)
    }

    /// The service (`ESRCH`) or destination (`ENOENT`) to change or delete does not exist.
    pub fn not_found(&self) -> bool {
        match self.errno() {
            Some(Errno::ESRCH) => true,
            Some(Errno::ENOENT) => self.dest.is_some(),
            _ => false,
        }
    }
}

impl fmt::Display for OpError {
    /// `add destination 10.244.1.5:8080 to TCP 10.96.0.10:80: EEXIST: File exists`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.dest {
            Some(dest) => write!(f, "{} {dest} of {}: ", self.action, self.service)?,
            None => write!(f, "{} {}: ", self.action, self.service)?,
        }
        match &self.cause {
            OpCause::Kernel { errno, message } => {
                write!(f, "{errno}")?;
                if let Some(message) = message {
                    write!(f, " ({message})")?;
                }
                Ok(())
            }
            OpCause::Invalid(reason) => write!(f, "invalid {reason}"),
        }
    }
}
