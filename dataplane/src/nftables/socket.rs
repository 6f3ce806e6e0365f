//! The `NETLINK_NETFILTER` socket: one batch per `send` (the kernel applies it as one
//! transaction before `send` returns), requests with one answer, and dumps.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    bind, recv, send, sendmsg, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr,
    SockFlag, SockProtocol, SockType,
};

use super::wire::{self, Message, NLMSG_DONE};

/// Receive buffer for one `recv`: the kernel fills dump messages into skbs of at most 32 KiB.
const RECV_BUFFER: usize = 64 * 1024;
/// Socket receive buffer: room for many error answers of a failed batch.
const SOCKET_RCVBUF: usize = 4 * 1024 * 1024;
/// I/O vectors one `sendmsg` takes (`UIO_MAXIOV`); a batch in more parts is joined first.
const MAX_IOVECS: usize = 1024;
/// The default send buffer is enough for batches up to this size.
const DEFAULT_SNDBUF: usize = 200 * 1024;

/// A kernel answer to one message of a batch: the message's sequence number and the errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    /// Sequence number of the refused message.
    pub seq: u32,
    /// Positive errno.
    pub errno: i32,
}

/// A blocking `nf_tables` netlink socket, bound to the network namespace of the thread that
/// opened it.
#[derive(Debug)]
pub struct NftSocket {
    fd: OwnedFd,
    seq: u32,
    sndbuf: usize,
    buf: Vec<u8>,
}

impl NftSocket {
    /// Opens the socket.
    pub fn open() -> io::Result<NftSocket> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )
        .map_err(io::Error::from)?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(io::Error::from)?;
        // Forcing buffer sizes needs CAP_NET_ADMIN, which programming nf_tables needs too;
        // without it the defaults stay and large batches fail with a clear error.
        let _ = setsockopt(&fd, sockopt::RcvBufForce, &SOCKET_RCVBUF);
        let seq = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(1);
        Ok(NftSocket {
            fd,
            seq,
            sndbuf: DEFAULT_SNDBUF,
            buf: vec![0; RECV_BUFFER],
        })
    }

    /// Reserves `count` consecutive sequence numbers and returns the first.
    pub fn reserve_seq(&mut self, count: u32) -> u32 {
        let first = self.seq.wrapping_add(1);
        self.seq = self.seq.wrapping_add(count);
        first
    }

    /// Sends one batch (`NFNL_MSG_BATCH_BEGIN` … `NFNL_MSG_BATCH_END`) and returns the
    /// messages the kernel refused; an empty list means the transaction was committed.
    /// The batch comes in parts of whole messages, sent as one datagram.
    pub fn send_batch(&mut self, parts: &[Vec<u8>]) -> io::Result<Vec<Rejection>> {
        let len: usize = parts.iter().map(Vec::len).sum();
        // A batch must arrive in one send: the kernel's transaction is one skb (netlink
        // copies every I/O vector of a `sendmsg` into the one skb).
        if len + 4096 > self.sndbuf {
            let want = (len + 64 * 1024).next_power_of_two();
            setsockopt(&self.fd, sockopt::SndBufForce, &want).map_err(|e| {
                io::Error::other(format!(
                    "cannot raise the netlink send buffer to {want} bytes for a {len}-byte batch: {e}"
                ))
            })?;
            self.sndbuf = want;
        }
        let joined;
        let parts = if parts.len() > MAX_IOVECS {
            joined = [parts.concat()];
            &joined[..]
        } else {
            parts
        };
        let iov: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
        let sent = sendmsg::<NetlinkAddr>(self.fd.as_raw_fd(), &iov, &[], MsgFlags::empty(), None)
            .map_err(io::Error::from)?;
        if sent != len {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("netlink sent {sent} of {len} bytes"),
            ));
        }
        // The kernel processed the batch inside send(); its refusals are queued already.
        let mut rejections = Vec::new();
        loop {
            match recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::MSG_DONTWAIT) {
                Ok(0) => break,
                Ok(n) => {
                    for message in wire::messages(&self.buf[..n]) {
                        if let Some((errno, seq)) = message.error() {
                            if errno != 0 {
                                rejections.push(Rejection { seq, errno });
                            }
                        }
                    }
                }
                Err(Errno::EAGAIN) => break,
                Err(Errno::ENOBUFS) => {
                    rejections.push(Rejection {
                        seq: 0,
                        errno: Errno::ENOBUFS as i32,
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(rejections)
    }

    /// Sends one request (sequence `seq`) and calls `each` for every answer until the
    /// kernel is done: `NLMSG_DONE` for a dump, the first answer otherwise. An error answer
    /// becomes the error.
    pub fn request(
        &mut self,
        request: &[u8],
        seq: u32,
        dump: bool,
        mut each: impl FnMut(Message<'_>),
    ) -> io::Result<()> {
        send(self.fd.as_raw_fd(), request, MsgFlags::empty()).map_err(io::Error::from)?;
        loop {
            let n = match recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty()) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "netlink socket closed",
                ));
            }
            for message in wire::messages(&self.buf[..n]) {
                if message.seq != seq {
                    continue; // a late answer to an earlier request
                }
                if let Some((errno, _)) = message.error() {
                    if errno != 0 {
                        return Err(io::Error::from_raw_os_error(errno));
                    }
                    if !dump {
                        return Ok(());
                    }
                    continue;
                }
                if message.kind == NLMSG_DONE {
                    return Ok(());
                }
                each(message);
                if !dump {
                    return Ok(());
                }
            }
        }
    }
}
