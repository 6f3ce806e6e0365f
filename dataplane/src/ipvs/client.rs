//! The blocking IPVS client: resolve the family, read the table, apply changes in batches.

use std::net::SocketAddr;

use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::GenlMessage;
use netlink_sys::protocols::NETLINK_GENERIC;
use nix::errno::Errno;

use super::error::{IpvsError, OpCause, OpError};
use super::netlink::{IpvsAttr, IpvsCommand, IpvsMessage, FAMILY_NAME};
use super::types::{service_family, Destination, IpvsInfo, IpvsOp, ServiceKey, VirtualService};
use crate::netlink_batch::{BatchSocket, Nack, NetlinkCounters, TransportError};

/// A blocking client of the kernel's IPVS table over generic netlink.
///
/// Every call blocks on the kernel; run it on a blocking thread (`spawn_blocking`). The client
/// holds one netlink socket, bound to the network namespace of the thread that opened it.
pub struct IpvsClient {
    socket: BatchSocket,
    family_id: u16,
}

impl IpvsClient {
    /// Opens a socket and resolves the "IPVS" generic netlink family. A kernel without IPVS
    /// (module not loaded or not built) gives [`IpvsError::NotAvailable`].
    pub fn open() -> Result<Self, IpvsError> {
        let mut socket = BatchSocket::open(NETLINK_GENERIC)
            .map_err(|e| IpvsError::from_transport("open netlink socket", e))?;
        let family_id = resolve_family(&mut socket)?;
        Ok(Self { socket, family_id })
    }

    /// IPVS version and connection table size (`IPVS_CMD_GET_INFO`).
    pub fn info(&mut self) -> Result<IpvsInfo, IpvsError> {
        const REQUEST: &str = "get info";
        let replies = self.request(REQUEST, IpvsCommand::GetInfo, Vec::new(), false)?;
        let reply = replies.first().ok_or_else(|| IpvsError::Malformed {
            request: REQUEST,
            detail: "no reply to IPVS_CMD_GET_INFO".into(),
        })?;
        info_from_reply(reply).map_err(|detail| IpvsError::Malformed {
            request: REQUEST,
            detail,
        })
    }

    /// Every virtual service of the table (`IPVS_CMD_GET_SERVICE` dump). Firewall-mark services
    /// and protocols other than TCP/UDP/SCTP, which svcplane never creates, are left out.
    pub fn services(&mut self) -> Result<Vec<VirtualService>, IpvsError> {
        const REQUEST: &str = "dump services";
        let replies = self.request(REQUEST, IpvsCommand::GetService, Vec::new(), true)?;
        let mut services = Vec::with_capacity(replies.len());
        let mut skipped = 0usize;
        for reply in replies {
            let attrs = reply.service().ok_or_else(|| IpvsError::Malformed {
                request: REQUEST,
                detail: "a dumped service without IPVS_CMD_ATTR_SERVICE".into(),
            })?;
            match VirtualService::from_attrs(attrs) {
                Ok(Some(service)) => services.push(service),
                Ok(None) => skipped += 1,
                Err(detail) => {
                    return Err(IpvsError::Malformed {
                        request: REQUEST,
                        detail,
                    })
                }
            }
        }
        if skipped > 0 {
            tracing::debug!(
                skipped,
                "IPVS services that are not address-based TCP/UDP/SCTP"
            );
        }
        Ok(services)
    }

    /// The destinations of one service (`IPVS_CMD_GET_DEST` dump); empty if the service does
    /// not exist (the kernel answers an empty dump).
    pub fn destinations(&mut self, service: &ServiceKey) -> Result<Vec<Destination>, IpvsError> {
        const REQUEST: &str = "dump destinations";
        let attrs = vec![IpvsAttr::Service(service.identity_attrs())];
        let replies = self.request(REQUEST, IpvsCommand::GetDest, attrs, true)?;
        replies
            .iter()
            .map(|reply| {
                let attrs = reply.dest().ok_or_else(|| IpvsError::Malformed {
                    request: REQUEST,
                    detail: format!("{service}: a dumped destination without IPVS_CMD_ATTR_DEST"),
                })?;
                Destination::from_attrs(attrs, service_family(service)).map_err(|detail| {
                    IpvsError::Malformed {
                        request: REQUEST,
                        detail: format!("{service}: {detail}"),
                    }
                })
            })
            .collect()
    }

    /// Applies `ops` in order and returns one outcome per operation, in the same order.
    ///
    /// The operations are written many to a send buffer, so a table of 10,000 services takes
    /// a few hundred system calls rather than one request and one acknowledgement each. A failed
    /// operation does not stop the ones after it (a destination added to a service that failed
    /// to be created fails with `ESRCH`). Operations the kernel would refuse for their content
    /// are not sent and fail with [`OpCause::Invalid`].
    ///
    /// An `Err` means the exchange itself failed: the outcome of the operations is then unknown
    /// and the table should be dumped again.
    pub fn apply(&mut self, ops: &[IpvsOp]) -> Result<Vec<Result<(), OpError>>, IpvsError> {
        let mut results: Vec<Result<(), OpError>> = vec![Ok(()); ops.len()];
        let mut sent = Vec::with_capacity(ops.len());
        let family_id = self.family_id;
        let messages = ops
            .iter()
            .enumerate()
            .filter_map(|(index, op)| match encode(op) {
                Ok(message) => {
                    sent.push(index);
                    Some(genl(family_id, message))
                }
                Err(reason) => {
                    results[index] = Err(OpError::new(op, OpCause::Invalid(reason)));
                    None
                }
            });
        let outcomes = self
            .socket
            .execute(messages)
            .map_err(|e| IpvsError::from_transport("apply changes", e))?;
        for (index, outcome) in sent.into_iter().zip(outcomes) {
            if let Err(Nack { errno, message }) = outcome {
                results[index] = Err(OpError::new(
                    &ops[index],
                    OpCause::Kernel { errno, message },
                ));
            }
        }
        Ok(results)
    }

    /// Netlink traffic of this client so far (messages, send and receive calls).
    pub fn counters(&self) -> NetlinkCounters {
        self.socket.counters()
    }

    fn request(
        &mut self,
        request: &'static str,
        cmd: IpvsCommand,
        attrs: Vec<IpvsAttr>,
        dump: bool,
    ) -> Result<Vec<IpvsMessage>, IpvsError> {
        let message = genl(self.family_id, IpvsMessage { cmd, attrs });
        let replies = self
            .socket
            .request(message, dump)
            .map_err(|e| IpvsError::from_transport(request, e))?;
        replies
            .into_iter()
            .map(|reply| {
                reply
                    .map(|genl| genl.payload)
                    .map_err(|detail| IpvsError::Malformed { request, detail })
            })
            .collect()
    }
}

/// Reads the `IPVS_CMD_SET_INFO` reply to `GET_INFO`.
pub(crate) fn info_from_reply(reply: &IpvsMessage) -> Result<IpvsInfo, String> {
    let mut version = None;
    let mut conn_table_size = None;
    for attr in &reply.attrs {
        match attr {
            IpvsAttr::InfoVersion(v) => version = Some(*v),
            IpvsAttr::InfoConnTabSize(v) => conn_table_size = Some(*v),
            _ => {}
        }
    }
    let version = version.ok_or("IPVS_INFO_ATTR_VERSION missing")?;
    let [_, major, minor, patch] = version.to_be_bytes();
    Ok(IpvsInfo {
        version: (major, minor, patch),
        conn_table_size: conn_table_size.ok_or("IPVS_INFO_ATTR_CONN_TAB_SIZE missing")?,
    })
}

pub(crate) fn genl(family_id: u16, message: IpvsMessage) -> GenlMessage<IpvsMessage> {
    let mut genl = GenlMessage::from_payload(message);
    genl.set_resolved_family_id(family_id);
    genl
}

/// The message for one operation, or why the kernel would refuse it.
pub(crate) fn encode(op: &IpvsOp) -> Result<IpvsMessage, String> {
    let (cmd, attrs) = match op {
        IpvsOp::AddService(svc) | IpvsOp::EditService(svc) => {
            svc.validate()?;
            let cmd = if matches!(op, IpvsOp::AddService(_)) {
                IpvsCommand::NewService
            } else {
                IpvsCommand::SetService
            };
            (cmd, vec![IpvsAttr::Service(svc.full_attrs())])
        }
        IpvsOp::DelService(key) => (
            IpvsCommand::DelService,
            vec![IpvsAttr::Service(key.identity_attrs())],
        ),
        IpvsOp::AddDest { service, dest } | IpvsOp::EditDest { service, dest } => {
            dest.validate(service)?;
            let cmd = if matches!(op, IpvsOp::AddDest { .. }) {
                IpvsCommand::NewDest
            } else {
                IpvsCommand::SetDest
            };
            (
                cmd,
                vec![
                    IpvsAttr::Service(service.identity_attrs()),
                    IpvsAttr::Dest(dest.full_attrs()),
                ],
            )
        }
        IpvsOp::DelDest { service, dest } => {
            check_family(service, dest)?;
            (
                IpvsCommand::DelDest,
                vec![
                    IpvsAttr::Service(service.identity_attrs()),
                    IpvsAttr::Dest(Destination::identity_attrs(*dest)),
                ],
            )
        }
    };
    Ok(IpvsMessage { cmd, attrs })
}

fn check_family(service: &ServiceKey, dest: &SocketAddr) -> Result<(), String> {
    if service.addr.is_ipv4() != dest.is_ipv4() {
        return Err(format!(
            "address {}: family differs from the service's",
            dest.ip()
        ));
    }
    Ok(())
}

/// The id the kernel assigned to the "IPVS" family (`CTRL_CMD_GETFAMILY`).
fn resolve_family(socket: &mut BatchSocket) -> Result<u16, IpvsError> {
    const REQUEST: &str = "resolve the IPVS generic netlink family";
    let request = GenlMessage::from_payload(GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName(FAMILY_NAME.to_string())],
    });
    let replies = match socket.request(request, false) {
        Ok(replies) => replies,
        Err(TransportError::Refused(Nack {
            errno: Errno::ENOENT,
            ..
        })) => {
            return Err(IpvsError::NotAvailable {
                reason: format!("no generic netlink family {FAMILY_NAME:?}"),
            })
        }
        Err(e) => return Err(IpvsError::from_transport(REQUEST, e)),
    };
    replies
        .into_iter()
        .filter_map(Result::ok)
        .flat_map(|reply| reply.payload.nlas)
        .find_map(|attr| match attr {
            GenlCtrlAttrs::FamilyId(id) => Some(id),
            _ => None,
        })
        .ok_or_else(|| IpvsError::Malformed {
            request: REQUEST,
            detail: "CTRL_ATTR_FAMILY_ID missing".into(),
        })
}
