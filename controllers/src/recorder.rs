//! Events on the objects a user looks at (`kubectl describe service`), written as core/v1
//! Events like client-go's `EventRecorder` (reason in CamelCase, short note).

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, PostParams};
use kube::Client;

/// Posts Events without blocking the caller; failures are logged, never propagated.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    component: String,
}

impl Recorder {
    /// A recorder reporting as `component` (e.g. `endpointslice-controller`).
    pub fn new(client: Client, component: impl Into<String>) -> Self {
        Recorder {
            client,
            component: component.into(),
        }
    }

    /// Records a `Warning` event about `object`.
    pub fn warn(&self, object: ObjectReference, reason: &str, message: String) {
        self.publish(object, "Warning", reason, message);
    }

    /// Records a `Normal` event about `object`.
    pub fn normal(&self, object: ObjectReference, reason: &str, message: String) {
        self.publish(object, "Normal", reason, message);
    }

    fn publish(&self, object: ObjectReference, type_: &str, reason: &str, message: String) {
        let ns = object.namespace.clone().unwrap_or_else(|| "default".into());
        let now = Time(Timestamp::now());
        let name = format!(
            "{}.{:016x}",
            object.name.clone().unwrap_or_default(),
            rand::random::<u64>()
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(ns.clone()),
                ..Default::default()
            },
            involved_object: object,
            reason: Some(reason.into()),
            message: Some(message),
            type_: Some(type_.into()),
            count: Some(1),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: None,
            }),
            reporting_component: Some(self.component.clone()),
            ..Default::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let reason = reason.to_string();
        tokio::spawn(async move {
            if let Err(err) = api.create(&PostParams::default(), &event).await {
                tracing::debug!(%reason, error = %err, "could not record event");
            }
        });
    }
}

/// A reference to a Service or Endpoints object for [`Recorder`].
pub fn object_ref(kind: &str, namespace: &str, name: &str, uid: Option<String>) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some(kind.into()),
        namespace: Some(namespace.into()),
        name: Some(name.into()),
        uid,
        ..Default::default()
    }
}
