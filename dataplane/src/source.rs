//! Where the agent's objects come from: watches against an API server, or manifest files.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::agent::{ListKind, SourceEvent};

/// Runs watches of Services and EndpointSlices (all namespaces) and of the Node `node_name`,
/// sending every change to `events`, until `events` closes. Watch failures are retried with
/// kube-runtime's backoff. A (re-)list arrives as [`SourceEvent::ListStarted`], the listed
/// objects one by one, then [`SourceEvent::ListDone`]: no store of typed objects is kept here
/// (the agent's model is the cache).
pub async fn watch_api(client: Client, node_name: String, events: mpsc::Sender<SourceEvent>) {
    let services = watch_kind(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
        ListKind::Services,
        events.clone(),
        |s| SourceEvent::Service(Box::new(s)),
        |s| SourceEvent::ServiceDeleted {
            namespace: s.namespace().unwrap_or_default(),
            name: s.name_any(),
        },
    );
    let slices = watch_kind(
        Api::<EndpointSlice>::all(client.clone()),
        watcher::Config::default(),
        ListKind::Slices,
        events.clone(),
        |s| SourceEvent::Slice(Box::new(s)),
        |s| SourceEvent::SliceDeleted {
            namespace: s.namespace().unwrap_or_default(),
            name: s.name_any(),
        },
    );
    let node = watch_kind(
        Api::<Node>::all(client),
        watcher::Config::default().fields(&format!("metadata.name={node_name}")),
        ListKind::Node,
        events,
        |n| SourceEvent::Node(Box::new(n)),
        // A deleted Node keeps its last addresses: kube-proxy keeps programming until it is
        // stopped, and so do we.
        |n| SourceEvent::Node(Box::new(n)),
    );
    tokio::join!(services, slices, node);
}

async fn watch_kind<K>(
    api: Api<K>,
    config: watcher::Config,
    kind: ListKind,
    events: mpsc::Sender<SourceEvent>,
    applied: impl Fn(K) -> SourceEvent,
    deleted: impl Fn(K) -> SourceEvent,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let stream = watcher::watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    while let Some(item) = stream.next().await {
        let event = match item {
            Ok(Event::Init) => SourceEvent::ListStarted(kind),
            Ok(Event::InitApply(obj) | Event::Apply(obj)) => applied(obj),
            Ok(Event::InitDone) => SourceEvent::ListDone(kind),
            Ok(Event::Delete(obj)) => deleted(obj),
            Err(err) => {
                tracing::warn!(kind = %K::kind(&()), error = %err, "watch failed, retrying");
                continue;
            }
        };
        if events.send(event).await.is_err() {
            return;
        }
    }
}

/// A manifest that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file or directory could not be read.
    #[error("{path}: cannot read")]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A document is not valid YAML/JSON or not a valid object of its kind.
    #[error("{path}: document {index}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based position of the document in the file.
        index: usize,
        /// What is wrong, naming the field where the decoder knows it.
        message: String,
    },
}

/// Reads every Service, EndpointSlice and Node in `path` (a file, or a directory of `.yaml`,
/// `.yml` and `.json` files read in name order; multi-document YAML and `kind: List` are
/// understood; other kinds are skipped) and hands them to `sink` as complete lists of each
/// kind: [`SourceEvent::ListStarted`] for every kind, each object as it is decoded, then
/// [`SourceEvent::ListDone`] for every kind. Objects are not collected here, so a caller that
/// applies them at once never holds the parsed files beside its model; a caller that needs
/// all or nothing collects the events and uses them only when this returns `Ok`.
pub fn read_manifests(
    path: &Path,
    sink: &mut impl FnMut(SourceEvent),
) -> Result<(), ManifestError> {
    let files = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|source| ManifestError::Read {
                path: path.to_path_buf(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml" | "json")
                )
            })
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    const KINDS: [ListKind; 3] = [ListKind::Node, ListKind::Services, ListKind::Slices];
    for kind in KINDS {
        sink(SourceEvent::ListStarted(kind));
    }
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| ManifestError::Read {
            path: file.clone(),
            source,
        })?;
        for (i, document) in serde_yaml::Deserializer::from_str(&text).enumerate() {
            let invalid = |message: String| ManifestError::Invalid {
                path: file.clone(),
                index: i + 1,
                message,
            };
            let value = serde_json::Value::deserialize_yaml(document).map_err(invalid)?;
            // Every Node goes to the model, which keeps only this node's (the files may
            // describe the whole cluster).
            collect(value, sink).map_err(invalid)?;
        }
    }
    for kind in KINDS {
        sink(SourceEvent::ListDone(kind));
    }
    Ok(())
}

trait FromYamlDocument: Sized {
    fn deserialize_yaml(document: serde_yaml::Deserializer<'_>) -> Result<Self, String>;
}

impl FromYamlDocument for serde_json::Value {
    fn deserialize_yaml(document: serde_yaml::Deserializer<'_>) -> Result<Self, String> {
        serde::Deserialize::deserialize(document).map_err(|e| e.to_string())
    }
}

fn collect(value: serde_json::Value, sink: &mut impl FnMut(SourceEvent)) -> Result<(), String> {
    if value.is_null() {
        return Ok(());
    }
    let kind = value
        .get("kind")
        .and_then(|k| k.as_str())
        .ok_or_else(|| "kind: missing".to_string())?
        .to_string();
    match kind.as_str() {
        "List" | "ServiceList" | "EndpointSliceList" | "NodeList" => {
            let items = match value {
                serde_json::Value::Object(mut map) => match map.remove("items") {
                    Some(serde_json::Value::Array(items)) => items,
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            };
            for (i, item) in items.into_iter().enumerate() {
                collect(item, sink).map_err(|e| format!("items[{i}]: {e}"))?;
            }
        }
        "Service" => sink(SourceEvent::Service(Box::new(decode(value)?))),
        "EndpointSlice" => sink(SourceEvent::Slice(Box::new(decode(value)?))),
        "Node" => sink(SourceEvent::Node(Box::new(decode(value)?))),
        _ => {}
    }
    Ok(())
}

fn decode<K: DeserializeOwned>(value: serde_json::Value) -> Result<K, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        }
    })
}
