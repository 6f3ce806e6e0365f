//! The buffer between a watch and its client: encoded events wait here until the response body
//! hands them to the connection. It is bounded in bytes, not in events, so a client that stops
//! reading holds at most [`crate::state::WatchLimits::buffer_bytes`] of them (plus one event
//! larger than that), and a watch that cannot queue its next event within
//! [`crate::state::WatchLimits::slow_client_timeout`] is ended: upstream's watch cache likewise
//! terminates a watcher whose buffer stays full (`cacheWatcher.add`, metric
//! `apiserver_terminated_watchers_total`); the client starts a new watch from its last revision.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::watch_clients::WatchSlot;

/// Why an event could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The client has not made room within the allowed time.
    Full,
    /// The response body is gone (the client disconnected).
    Closed,
}

/// A byte-bounded buffer: the watch writes into the [`WatchSender`], the response body reads
/// the [`WatchBody`]. `slot` (the client's watch count) is released when the body is dropped,
/// which is when the connection no longer holds any of it.
pub fn channel(buffer_bytes: usize, slot: Option<WatchSlot>) -> (WatchSender, WatchBody) {
    let limit = buffer_bytes.clamp(1, u32::MAX as usize);
    let (tx, rx) = mpsc::unbounded_channel();
    let (abort_tx, abort_rx) = oneshot::channel();
    (
        WatchSender {
            tx,
            room: Arc::new(Semaphore::new(limit)),
            limit,
            abort: Some(abort_tx),
        },
        WatchBody {
            rx,
            abort: Some(abort_rx),
            _slot: slot,
        },
    )
}

/// The watch's end of the buffer.
pub struct WatchSender {
    tx: mpsc::UnboundedSender<(Bytes, OwnedSemaphorePermit)>,
    room: Arc<Semaphore>,
    limit: usize,
    abort: Option<oneshot::Sender<()>>,
}

impl WatchSender {
    /// Queues `chunk` once the buffer has room for it, waiting at most `wait`. A chunk larger
    /// than the whole buffer waits until the buffer is empty.
    pub async fn send(&self, chunk: Bytes, wait: Duration) -> Result<(), SendError> {
        let needed = chunk.len().clamp(1, self.limit) as u32;
        let permit = tokio::select! {
            p = tokio::time::timeout(wait, self.room.clone().acquire_many_owned(needed)) => match p {
                Ok(Ok(p)) => p,
                Ok(Err(_)) => return Err(SendError::Closed),
                Err(_) => return Err(SendError::Full),
            },
            _ = self.tx.closed() => return Err(SendError::Closed),
        };
        self.tx.send((chunk, permit)).map_err(|_| SendError::Closed)
    }

    /// Resolves when the response body has been dropped.
    pub async fn closed(&self) {
        self.tx.closed().await
    }

    /// Makes the response body fail at its next poll instead of delivering what is queued, so
    /// the connection drops the buffered events.
    pub fn abort(mut self) {
        if let Some(abort) = self.abort.take() {
            let _ = abort.send(());
        }
    }
}

/// The response body's end: yields queued chunks, releasing their room as it goes.
pub struct WatchBody {
    rx: mpsc::UnboundedReceiver<(Bytes, OwnedSemaphorePermit)>,
    abort: Option<oneshot::Receiver<()>>,
    _slot: Option<WatchSlot>,
}

impl Stream for WatchBody {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(abort) = self.abort.as_mut() {
            match Pin::new(abort).poll(cx) {
                Poll::Ready(Ok(())) => {
                    self.abort = None;
                    self.rx.close();
                    return Poll::Ready(Some(Err(std::io::Error::other(
                        "watch ended: the client did not read its events",
                    ))));
                }
                // The watch ended normally: deliver what is queued.
                Poll::Ready(Err(_)) => self.abort = None,
                Poll::Pending => {}
            }
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some((chunk, permit))) => {
                drop(permit);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn a_full_buffer_refuses_after_the_wait_and_reading_makes_room() {
        let (tx, mut body) = channel(10, None);
        let wait = Duration::from_millis(20);
        tx.send(Bytes::from_static(b"123456"), wait)
            .await
            .expect("fits");
        assert_eq!(
            tx.send(Bytes::from_static(b"123456"), wait).await,
            Err(SendError::Full)
        );
        assert_eq!(body.next().await.expect("chunk").expect("ok"), "123456");
        tx.send(Bytes::from_static(b"123456"), wait)
            .await
            .expect("room again");
    }

    #[tokio::test]
    async fn a_chunk_larger_than_the_buffer_waits_for_an_empty_buffer() {
        let (tx, mut body) = channel(4, None);
        let wait = Duration::from_millis(20);
        tx.send(Bytes::from_static(b"ab"), wait)
            .await
            .expect("fits");
        assert_eq!(
            tx.send(Bytes::from(vec![b'x'; 100]), wait).await,
            Err(SendError::Full)
        );
        body.next().await.expect("chunk").expect("ok");
        tx.send(Bytes::from(vec![b'x'; 100]), wait)
            .await
            .expect("empty buffer takes it");
    }

    #[tokio::test]
    async fn abort_fails_the_body_before_queued_chunks() {
        let (tx, mut body) = channel(100, None);
        tx.send(Bytes::from_static(b"queued"), Duration::from_millis(20))
            .await
            .expect("fits");
        tx.abort();
        assert!(body.next().await.expect("an item").is_err());
    }

    #[tokio::test]
    async fn a_normal_end_delivers_what_is_queued() {
        let (tx, mut body) = channel(100, None);
        tx.send(Bytes::from_static(b"last"), Duration::from_millis(20))
            .await
            .expect("fits");
        drop(tx);
        assert_eq!(body.next().await.expect("chunk").expect("ok"), "last");
        assert!(body.next().await.is_none());
    }

    #[tokio::test]
    async fn sending_to_a_dropped_body_reports_closed() {
        let (tx, body) = channel(100, None);
        drop(body);
        assert_eq!(
            tx.send(Bytes::from_static(b"x"), Duration::from_millis(20))
                .await,
            Err(SendError::Closed)
        );
    }
}
