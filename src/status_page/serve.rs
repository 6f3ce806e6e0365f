//! The HTTP side: `GET /status` gathers a snapshot and renders it.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::watch;

use super::gather::Page;
use super::render;

/// Where the page is served.
pub const PATH: &str = "/status";

/// A router serving the page at [`PATH`].
pub fn router(page: Page) -> Router {
    Router::new().route(PATH, get(status)).with_state(page)
}

async fn status(State(page): State<Page>) -> Response {
    let snapshot = page.gather().await;
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        render::page(&snapshot),
    )
        .into_response()
}

/// Serves only the page on `listener` until `stop` turns true (for `svcplane dev
/// --no-node-agents`, where no other server runs on that address).
pub async fn serve_alone(
    listener: tokio::net::TcpListener,
    page: Page,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    axum::serve(listener, router(page))
        .with_graceful_shutdown(async move {
            while !*stop.borrow() {
                if stop.changed().await.is_err() {
                    return;
                }
            }
        })
        .await
}
