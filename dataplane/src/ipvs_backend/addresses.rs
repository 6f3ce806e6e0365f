//! The dummy link and its addresses, for a backend whose calls block: [`IfaceClient`] is
//! asynchronous (rtnetlink), so this drives it on a small runtime of its own, one call at a
//! time, from whatever thread the backend runs on.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::iface::{BulkOutcome, IfaceClient, IfaceError, InterfaceAddress, Link};

/// Blocking access to one dummy link's addresses.
pub struct DummyAddresses {
    client: IfaceClient,
    runtime: Option<tokio::runtime::Runtime>,
    name: String,
}

impl Drop for DummyAddresses {
    fn drop(&mut self) {
        // The backend may be dropped inside the agent's async runtime, where a runtime must
        // not be shut down by blocking.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl DummyAddresses {
    /// Opens an rtnetlink connection for the link `name` (which may not exist yet).
    pub fn open(name: &str) -> Result<DummyAddresses, IfaceError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(IfaceError::Connect)?;
        let client = {
            let _context = runtime.enter();
            IfaceClient::new()?
        };
        Ok(DummyAddresses {
            client,
            runtime: Some(runtime),
            name: name.to_string(),
        })
    }

    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the value")
            .block_on(future)
    }

    /// The link's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The link, if it exists.
    pub fn link(&self) -> Result<Option<Link>, IfaceError> {
        self.block_on(self.client.link(&self.name))
    }

    /// Creates the link if needed and sets it up.
    pub fn ensure_link(&self) -> Result<Link, IfaceError> {
        self.block_on(self.client.ensure_dummy(&self.name))
    }

    /// The addresses on link `index`.
    pub fn addresses(&self, index: u32) -> Result<BTreeSet<IpAddr>, IfaceError> {
        Ok(self
            .block_on(self.client.addresses(index))?
            .into_iter()
            .map(|a| a.addr)
            .collect())
    }

    /// Addresses held by links other than `index` (the node's own addresses).
    pub fn addresses_elsewhere(&self, index: Option<u32>) -> Result<BTreeSet<IpAddr>, IfaceError> {
        Ok(self
            .block_on(self.client.all_addresses())?
            .into_iter()
            .filter(|(link, _)| Some(*link) != index)
            .map(|(_, a)| a.addr)
            .collect())
    }

    /// Binds `addresses` (as /32 or /128) to link `index`.
    pub fn add(&self, index: u32, addresses: &[IpAddr]) -> BulkOutcome {
        let hosts: Vec<InterfaceAddress> = addresses
            .iter()
            .map(|a| InterfaceAddress::host(*a))
            .collect();
        self.block_on(self.client.add_addresses(index, &hosts))
    }

    /// Unbinds `addresses` from link `index`.
    pub fn remove(&self, index: u32, addresses: &[IpAddr]) -> BulkOutcome {
        let hosts: Vec<InterfaceAddress> = addresses
            .iter()
            .map(|a| InterfaceAddress::host(*a))
            .collect();
        self.block_on(self.client.remove_addresses(index, &hosts))
    }

    /// Deletes the link; `false` when there was none.
    pub fn delete_link(&self) -> Result<bool, IfaceError> {
        self.block_on(self.client.delete_link(&self.name))
    }
}
