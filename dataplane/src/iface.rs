//! The dummy interface that holds every virtual address (`svcplane0`, kube-proxy's
//! `kube-ipvs0`), over rtnetlink: ensure it exists and is up, list, add and remove its
//! addresses in bulk, delete it for `--cleanup`.
//!
//! IPVS only sees packets addressed to a local address, so each virtual address is bound to the
//! dummy link as a /32 or /128. Bulk changes keep many requests in flight on one rtnetlink
//! connection, so 10,000 addresses cost about one round trip per [`MAX_IN_FLIGHT`] addresses,
//! not one each.
#![warn(missing_docs)]

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::stream::{self, StreamExt, TryStreamExt};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use nix::errno::Errno;
use rtnetlink::{AddressMessageBuilder, Handle, LinkDummy, LinkUnspec};

/// The dummy link svcplane binds virtual addresses to.
pub const DUMMY_LINK_NAME: &str = "svcplane0";

/// Address requests kept in flight at once by the bulk operations. Each in-flight request has
/// at most one answer queued, so this stays far below the socket's receive queue.
pub const MAX_IN_FLIGHT: usize = 128;

/// A failure of a link or address operation.
#[derive(Debug, thiserror::Error)]
pub enum IfaceError {
    /// No tokio runtime to drive the rtnetlink connection.
    #[error("rtnetlink needs a tokio runtime: create the IfaceClient inside one")]
    NoRuntime,
    /// The rtnetlink socket could not be opened.
    #[error("rtnetlink connection: {0}")]
    Connect(#[source] io::Error),
    /// The kernel cannot create dummy links.
    #[error(
        "the kernel cannot create dummy links: creating {name} failed with {errno}; \
         the `dummy` module is missing (modprobe dummy, or a kernel with CONFIG_DUMMY)"
    )]
    DummyUnsupported {
        /// The link that could not be created.
        name: String,
        /// The kernel's errno (`EOPNOTSUPP`: unknown link kind).
        errno: Errno,
    },
    /// A link of that name exists but is not a dummy link; it is left alone.
    #[error("link {name} exists but is of kind {kind}, not dummy; refusing to use it")]
    NotDummy {
        /// The link name.
        name: String,
        /// Its kind (`veth`, `bridge`, or `none` for a physical device).
        kind: String,
    },
    /// The kernel refused an operation.
    #[error("{action} {target}: {errno}{}", message.as_ref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Kernel {
        /// The operation (`add address`, `create link`...).
        action: &'static str,
        /// What it concerned (a link name, an address).
        target: String,
        /// The kernel's errno.
        errno: Errno,
        /// Details, when rtnetlink gives them.
        message: Option<String>,
    },
    /// rtnetlink failed otherwise (connection closed, unexpected answer).
    #[error("{action} {target}: {detail}")]
    Netlink {
        /// The operation.
        action: &'static str,
        /// What it concerned.
        target: String,
        /// rtnetlink's description.
        detail: String,
    },
}

impl IfaceError {
    fn from_rtnetlink(
        action: &'static str,
        target: impl fmt::Display,
        error: rtnetlink::Error,
    ) -> Self {
        match error {
            rtnetlink::Error::NetlinkError(message) if message.code.is_some() => Self::Kernel {
                action,
                target: target.to_string(),
                errno: Errno::from_raw(message.raw_code().saturating_abs()),
                message: None,
            },
            other => Self::Netlink {
                action,
                target: target.to_string(),
                detail: other.to_string(),
            },
        }
    }

    /// The kernel's errno, when the kernel refused the operation.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Self::Kernel { errno, .. } | Self::DummyUnsupported { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// A network link: index and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
}

/// An address on a link, with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InterfaceAddress {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
}

impl InterfaceAddress {
    /// A host address: /32 for IPv4, /128 for IPv6 (how virtual addresses are bound).
    pub fn host(addr: IpAddr) -> Self {
        let prefix_len = if addr.is_ipv4() { 32 } else { 128 };
        Self { addr, prefix_len }
    }
}

impl fmt::Display for InterfaceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// What a bulk address change did.
#[derive(Debug, Default)]
pub struct BulkOutcome {
    /// Addresses added or removed.
    pub changed: usize,
    /// Addresses already in the wanted state (added: already present, `EEXIST`; removed:
    /// already absent, `EADDRNOTAVAIL`).
    pub unchanged: usize,
    /// Addresses the kernel refused, with why.
    pub failed: Vec<(InterfaceAddress, IfaceError)>,
}

/// An rtnetlink client for the dummy link and its addresses. Its connection runs as a task on
/// the tokio runtime it was created in, in that thread's network namespace.
pub struct IfaceClient {
    handle: Handle,
    connection: tokio::task::JoinHandle<()>,
}

impl Drop for IfaceClient {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl IfaceClient {
    /// Opens an rtnetlink connection and spawns its driver on the current tokio runtime.
    pub fn new() -> Result<Self, IfaceError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| IfaceError::NoRuntime)?;
        let (connection, handle, _) = rtnetlink::new_connection().map_err(IfaceError::Connect)?;
        let connection = runtime.spawn(connection);
        Ok(Self { handle, connection })
    }

    /// The link called `name`, if there is one.
    pub async fn link(&self, name: &str) -> Result<Option<Link>, IfaceError> {
        Ok(self.link_message(name).await?.map(|message| Link {
            index: message.header.index,
            name: name.to_string(),
        }))
    }

    async fn link_message(&self, name: &str) -> Result<Option<LinkMessage>, IfaceError> {
        let mut replies = self.handle.link().get().match_name(name).execute();
        match replies.try_next().await {
            Ok(message) => Ok(message),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -(Errno::ENODEV as i32) => {
                Ok(None)
            }
            Err(e) => Err(IfaceError::from_rtnetlink("get link", name, e)),
        }
    }

    /// Makes sure a dummy link `name` exists and is up, creating it if absent. A link of that
    /// name of another kind is refused ([`IfaceError::NotDummy`]); a kernel without dummy links
    /// gives [`IfaceError::DummyUnsupported`].
    pub async fn ensure_dummy(&self, name: &str) -> Result<Link, IfaceError> {
        if let Some(message) = self.link_message(name).await? {
            return self.use_dummy(name, message).await;
        }
        let created = self
            .handle
            .link()
            .add(LinkDummy::new(name).up().build())
            .execute()
            .await;
        match created.map_err(|e| IfaceError::from_rtnetlink("create link", name, e)) {
            Ok(()) => tracing::info!(link = name, "created dummy link"),
            // Created by someone else meanwhile: check it like an existing one.
            Err(e) if e.errno() == Some(Errno::EEXIST) => {}
            Err(e) if e.errno() == Some(Errno::EOPNOTSUPP) => {
                return Err(IfaceError::DummyUnsupported {
                    name: name.to_string(),
                    errno: Errno::EOPNOTSUPP,
                })
            }
            Err(e) => return Err(e),
        }
        let message = self
            .link_message(name)
            .await?
            .ok_or_else(|| IfaceError::Netlink {
                action: "create link",
                target: name.to_string(),
                detail: "the link is absent right after its creation".into(),
            })?;
        self.use_dummy(name, message).await
    }

    /// Checks that an existing link is a dummy one and sets it up.
    async fn use_dummy(&self, name: &str, message: LinkMessage) -> Result<Link, IfaceError> {
        let kind = link_kind(&message);
        if kind != Some(InfoKind::Dummy) {
            return Err(IfaceError::NotDummy {
                name: name.to_string(),
                kind: kind.map_or_else(|| "none".to_string(), |k| k.to_string()),
            });
        }
        let index = message.header.index;
        if !message.header.flags.contains(LinkFlags::Up) {
            self.handle
                .link()
                .set(LinkUnspec::new_with_index(index).up().build())
                .execute()
                .await
                .map_err(|e| IfaceError::from_rtnetlink("set link up", name, e))?;
        }
        Ok(Link {
            index,
            name: name.to_string(),
        })
    }

    /// Deletes the link `name` (`--cleanup`); `false` if there was none.
    pub async fn delete_link(&self, name: &str) -> Result<bool, IfaceError> {
        let Some(link) = self.link(name).await? else {
            return Ok(false);
        };
        match self.handle.link().del(link.index).execute().await {
            Ok(()) => Ok(true),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -(Errno::ENODEV as i32) => {
                Ok(false)
            }
            Err(e) => Err(IfaceError::from_rtnetlink("delete link", name, e)),
        }
    }

    /// The addresses of link `index`, IPv4 and IPv6, without IPv6 link-local addresses (the
    /// kernel's own `fe80::/64`, never a virtual address).
    pub async fn addresses(&self, index: u32) -> Result<Vec<InterfaceAddress>, IfaceError> {
        let messages: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(|e| IfaceError::from_rtnetlink("list addresses of link", index, e))?;
        let mut addresses: Vec<InterfaceAddress> = messages
            .iter()
            .filter_map(|message| {
                Some(InterfaceAddress {
                    addr: message_address(message)?,
                    prefix_len: message.header.prefix_len,
                })
            })
            .filter(|a| !matches!(a.addr, IpAddr::V6(v6) if v6.is_unicast_link_local()))
            .collect();
        addresses.sort();
        Ok(addresses)
    }

    /// Every address of every link, with the link's index (IPv6 link-local addresses left
    /// out, as in [`IfaceClient::addresses`]).
    pub async fn all_addresses(&self) -> Result<Vec<(u32, InterfaceAddress)>, IfaceError> {
        let messages: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| IfaceError::from_rtnetlink("list addresses", "of every link", e))?;
        let mut addresses: Vec<(u32, InterfaceAddress)> = messages
            .iter()
            .filter_map(|message| {
                message_address(message).map(|addr| {
                    (
                        message.header.index,
                        InterfaceAddress {
                            addr,
                            prefix_len: message.header.prefix_len,
                        },
                    )
                })
            })
            .filter(|(_, a)| !matches!(a.addr, IpAddr::V6(v6) if v6.is_unicast_link_local()))
            .collect();
        addresses.sort();
        Ok(addresses)
    }

    /// Adds `addresses` to link `index`, [`MAX_IN_FLIGHT`] requests at a time.
    pub async fn add_addresses(&self, index: u32, addresses: &[InterfaceAddress]) -> BulkOutcome {
        self.bulk(addresses, Errno::EEXIST, |handle, address| async move {
            handle
                .address()
                .add(index, address.addr, address.prefix_len)
                .execute()
                .await
                .map_err(|e| IfaceError::from_rtnetlink("add address", address, e))
        })
        .await
    }

    /// Removes `addresses` from link `index`, [`MAX_IN_FLIGHT`] requests at a time.
    pub async fn remove_addresses(
        &self,
        index: u32,
        addresses: &[InterfaceAddress],
    ) -> BulkOutcome {
        self.bulk(
            addresses,
            Errno::EADDRNOTAVAIL,
            |handle, address| async move {
                handle
                    .address()
                    .del(address_message(index, address))
                    .execute()
                    .await
                    .map_err(|e| IfaceError::from_rtnetlink("remove address", address, e))
            },
        )
        .await
    }

    async fn bulk<F, Fut>(
        &self,
        addresses: &[InterfaceAddress],
        unchanged_errno: Errno,
        request: F,
    ) -> BulkOutcome
    where
        F: Fn(Handle, InterfaceAddress) -> Fut,
        Fut: std::future::Future<Output = Result<(), IfaceError>>,
    {
        let results: Vec<(InterfaceAddress, Result<(), IfaceError>)> =
            stream::iter(addresses.iter().copied())
                .map(|address| {
                    let outcome = request(self.handle.clone(), address);
                    async move { (address, outcome.await) }
                })
                .buffer_unordered(MAX_IN_FLIGHT)
                .collect()
                .await;
        let mut outcome = BulkOutcome::default();
        for (address, result) in results {
            match result {
                Ok(()) => outcome.changed += 1,
                Err(e) if e.errno() == Some(unchanged_errno) => outcome.unchanged += 1,
                Err(e) => outcome.failed.push((address, e)),
            }
        }
        outcome
    }
}

/// The local address of an address message (`IFA_LOCAL`, else `IFA_ADDRESS`).
fn message_address(message: &AddressMessage) -> Option<IpAddr> {
    let local = message.attributes.iter().find_map(|attr| match attr {
        AddressAttribute::Local(addr) => Some(*addr),
        _ => None,
    });
    local.or_else(|| {
        message.attributes.iter().find_map(|attr| match attr {
            AddressAttribute::Address(addr) => Some(*addr),
            _ => None,
        })
    })
}

fn link_kind(message: &LinkMessage) -> Option<InfoKind> {
    message.attributes.iter().find_map(|attr| match attr {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|info| match info {
            LinkInfo::Kind(kind) => Some(kind.clone()),
            _ => None,
        }),
        _ => None,
    })
}

/// The `RTM_DELADDR` request for one address: the kernel matches address and prefix length.
fn address_message(index: u32, address: InterfaceAddress) -> AddressMessage {
    match address.addr {
        IpAddr::V4(v4) => AddressMessageBuilder::<Ipv4Addr>::new()
            .index(index)
            .address(v4, address.prefix_len)
            .build(),
        IpAddr::V6(v6) => AddressMessageBuilder::<Ipv6Addr>::new()
            .index(index)
            .address(v6, address.prefix_len)
            .build(),
    }
}
