//! How many watches one client may hold open at once. Clients are told apart by source
//! address (the embedded server has no authentication, so there is no identity to go by);
//! a watch beyond [`crate::state::WatchLimits::max_per_client`] is refused with 429
//! TooManyRequests and `Retry-After`, as upstream's priority and fairness answers a client
//! over its share. Each open watch can hold up to its buffer's bytes, so this bounds what one
//! client can make the server hold.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::ApiError;

/// Open watches per source address.
pub struct WatchClients {
    max_per_client: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One open watch of a client; released on drop.
pub struct WatchSlot {
    clients: Arc<WatchClients>,
    ip: IpAddr,
}

impl WatchClients {
    /// A table allowing `max_per_client` open watches per address.
    pub fn new(max_per_client: usize) -> Arc<Self> {
        Arc::new(WatchClients {
            max_per_client,
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a watch slot for `ip`, or 429 when it holds the maximum already.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<WatchSlot, ApiError> {
        let mut counts = self.counts.lock();
        let open = counts.entry(ip).or_default();
        if *open >= self.max_per_client {
            let mut err = ApiError::too_many_requests();
            err.message = format!(
                "too many open watches from {ip}: at most {} at a time; close some or try again later",
                self.max_per_client
            );
            return Err(err);
        }
        *open += 1;
        Ok(WatchSlot {
            clients: self.clone(),
            ip,
        })
    }

    /// Watches `ip` holds open now.
    #[cfg(test)]
    pub fn open(&self, ip: IpAddr) -> usize {
        self.counts.lock().get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for WatchSlot {
    fn drop(&mut self) {
        let mut counts = self.clients.counts.lock();
        if let Some(open) = counts.get_mut(&self.ip) {
            *open -= 1;
            if *open == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_beyond_the_limit_are_refused_until_one_closes() {
        let clients = WatchClients::new(2);
        let a: IpAddr = "127.0.0.1".parse().expect("ip");
        let b: IpAddr = "127.0.0.2".parse().expect("ip");
        let first = clients.admit(a).expect("first");
        let _second = clients.admit(a).expect("second");
        let refused = clients.admit(a).err().expect("third refused");
        assert_eq!(refused.code, 429);
        assert!(clients.admit(b).is_ok(), "other clients are not affected");
        drop(first);
        assert_eq!(clients.open(a), 1);
        assert!(clients.admit(a).is_ok());
    }
}
