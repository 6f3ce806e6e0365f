//! The write pipeline: every create, update and delete, whoever makes it (the REST handlers,
//! the garbage collector, bootstrap, the repair task, `svcplane dev`), runs the same stages
//! as kube-apiserver's generic registry store (`staging/src/k8s.io/apiserver/pkg/registry/
//! generic/registry/store.go`):
//!
//! prepare (metadata, the strategy's `PrepareForCreate` / `PrepareForUpdate`, managedFields)
//! → allocate (the strategy's `BeginCreate` / `BeginUpdate`: a reservation that rolls back when
//! dropped) → validate (the strategy's `Validate`) → admit (validating admission webhooks) →
//! commit (the store) → after-commit (the strategy's hooks, GC and persister wake-ups).
//!
//! Its inputs are explicit ([`Pipeline`]): the store, the resource registry (whose entries
//! carry each resource's [`Strategy`](crate::strategy::Strategy)), admission, the Service
//! allocators and the two wake-ups. It knows nothing of HTTP: requests are decoded and checked
//! against their URL by [`crate::handlers`] before they get here.

// `ApiError` is the crate's error type; its size is a crate-wide question (clippy's
// `result_large_err`), not this module's.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::admission::{self, Admission};
use crate::error::ApiError;
use crate::metadata;
use crate::resources::{Registry, ResourceInfo};
use crate::services::ServiceAllocations;
use crate::store::{Store, StoreError, StoredObject, Write};
use crate::strategy::{self, Deletion, RegistryChange};

/// How many times a delete is retried when the object changes underneath it.
const MAX_DELETE_RETRIES: usize = 16;

/// How many names a create with `generateName` tries before giving up (upstream retries a
/// generated name that collides).
const GENERATE_NAME_ATTEMPTS: usize = 8;

/// The inputs of the write pipeline.
#[derive(Clone, Copy)]
pub struct Pipeline<'a> {
    /// Objects.
    pub store: &'a Store,
    /// Served resources; CRD writes (un)register theirs.
    pub registry: &'a Registry,
    /// Validating admission webhooks.
    pub admission: Admission<'a>,
    /// ClusterIP and NodePort allocation (used by the Service strategy).
    pub allocations: &'a ServiceAllocations,
    /// Wakes the garbage collector (deletes, deletion marks).
    pub gc_wakeup: &'a Notify,
    /// Wakes the persister (every write).
    pub persist_wakeup: &'a Notify,
    /// OwnerReferencesPermissionEnforcement, when enabled.
    pub owner_references: Option<crate::owner_references::Enforcement<'a>>,
}

/// The field manager of the server's background writes (GC, namespace cleanup, repair
/// Events), as upstream's controllers in `kube-controller-manager` record.
pub const CONTROLLER_MANAGER: &str = "kube-controller-manager";

/// The field manager of the status writes of `svcplane dev`'s built-in components (bootstrap
/// statuses, a PodDisruptionBudget's `status.disruptedPods`).
pub const DEV_COMPONENTS: &str = "svcplane-dev";

/// Options of a create or update.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// The write is a server-side apply (managedFields already computed).
    pub applied: bool,
    /// `dryRun=All`: every stage runs, nothing is stored or kept allocated.
    pub dry_run: bool,
    /// The field manager recorded in managedFields.
    pub field_manager: String,
    /// Who writes; None for the server's own writes.
    pub user: Option<crate::rbac::UserInfo>,
}

impl WriteOptions {
    /// A write made by the server itself under `field_manager`.
    pub fn internal(field_manager: &str) -> Self {
        WriteOptions {
            applied: false,
            dry_run: false,
            field_manager: field_manager.to_string(),
            user: None,
        }
    }
}

/// `DeleteOptions` from the body and query.
#[derive(Debug, Default, Clone)]
pub struct DeleteOptions {
    /// `propagationPolicy`: Orphan, Background or Foreground.
    pub propagation: Option<String>,
    /// `gracePeriodSeconds`.
    pub grace_period: Option<i64>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
    /// `dryRun: [All]`.
    pub dry_run: bool,
}

/// A written object: its JSON and the warnings for the client.
pub type Written = (String, Vec<String>);

/// The answer for a write the store refused for a reason of its own: an object nesting too
/// deep to be read back is the client's error (400 naming where); anything else is ours.
pub fn store_failure(e: StoreError) -> ApiError {
    match e {
        StoreError::TooDeep(message) => ApiError::bad_request(message),
        e => ApiError::internal(e.to_string()),
    }
}

impl Pipeline<'_> {
    /// Creates an object (already type- and namespace-checked): names it, fills metadata,
    /// runs the stages and commits. Returns the created object's JSON and the warnings.
    pub async fn create(
        &self,
        info: &Arc<ResourceInfo>,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let strategy = &*info.strategy;
        let kind = info.object_kind();
        let generate = obj["metadata"]["generateName"]
            .as_str()
            .filter(|_| metadata::name(&obj).is_empty())
            .map(str::to_string);
        if metadata::name(&obj).is_empty() && generate.is_none() {
            return Err(ApiError::invalid(
                &info.group,
                &info.kind,
                "",
                format!("{} \"\" is invalid: metadata.name: Required value: name or generateName is required", info.kind),
                vec![crate::error::Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value: name or generateName is required".into(),
                    field: "metadata.name".into(),
                }],
            ));
        }
        // Prepare.
        metadata::prepare_create(&mut obj, strategy.tracks_generation());
        let defaulting_warnings = strategy.prepare_for_create(&mut obj);
        if !opts.applied {
            crate::managed_fields::record(
                None,
                &mut obj,
                &opts.field_manager,
                &info.api_version(),
                None,
            );
        }
        for _attempt in 0..GENERATE_NAME_ATTEMPTS {
            if let Some(prefix) = &generate {
                obj["metadata"]["name"] = json!(metadata::generate_name(prefix));
            }
            // Allocate before validation, as upstream's `BeginCreate` hook runs before
            // `BeforeCreate` (so an out-of-range nodePort reports the allocator's message).
            // Every early return below drops the reservation, which rolls it back.
            let reservation = strategy.begin_create(self.allocations, &mut obj, opts.dry_run)?;
            // Validate.
            let mut warnings = defaulting_warnings.clone();
            warnings.extend(strategy.validate(&kind, &obj, None)?);
            // Admit.
            self.enforce_owner_references(info, None, &obj, None, opts)?;
            warnings.extend(
                self.admit(admission::Attributes {
                    info,
                    subresource: None,
                    operation: "CREATE",
                    obj: &obj,
                    old: None,
                    dry_run: opts.dry_run,
                })
                .await?,
            );
            if opts.dry_run {
                let mut preview = obj.clone();
                preview["metadata"]["resourceVersion"] = json!("");
                return Ok((preview.to_string(), warnings));
            }
            // Commit.
            let name = metadata::name(&obj).to_string();
            let ns = obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            // Only a generated name may need the object again (to retry with another name).
            let value = if generate.is_some() {
                obj.clone()
            } else {
                std::mem::take(&mut obj)
            };
            match self.commit_fitting(info, &ns, &name, Write::Create(value)) {
                Ok(stored) => {
                    reservation.commit();
                    self.after_commit(info, Some(&stored), None);
                    return Ok((stored.json.to_string(), warnings));
                }
                Err(e @ StoreError::TooLarge { .. }) => {
                    return Err(ApiError::too_large(e.to_string()))
                }
                Err(StoreError::Exists) if generate.is_some() => continue,
                Err(StoreError::Exists) => {
                    return Err(ApiError::already_exists(&info.group, &info.plural, &name))
                }
                Err(e) => return Err(store_failure(e)),
            }
        }
        Err(ApiError::internal(
            "could not generate a unique name; try again",
        ))
    }

    /// Writes a new version of an existing object (`subresource` = `Some("status")` for the
    /// status subresource). The caller has checked preconditions against `current`; a
    /// concurrent change in between is a Conflict.
    pub async fn update(
        &self,
        info: &Arc<ResourceInfo>,
        subresource: Option<&str>,
        current: &Arc<StoredObject>,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let strategy = &*info.strategy;
        let kind = info.object_kind();
        let old = current.value();
        let status_only = subresource == Some("status");
        // Prepare. `pods/binding` writes `spec.nodeName` and the `PodScheduled` condition in
        // one update, as upstream's BindingREST does: no status split for it.
        if subresource != Some("binding") {
            strategy::merge_subresource(info.has_status, &mut obj, &old, status_only);
        }
        metadata::prepare_update(&mut obj, &old, strategy.tracks_generation());
        let defaulting_warnings = strategy.prepare_for_update(&mut obj, &old, status_only);
        if !opts.applied {
            crate::managed_fields::record(
                Some(&old),
                &mut obj,
                &opts.field_manager,
                &info.api_version(),
                subresource,
            );
        }
        // Allocate; every early return below drops the reservation, which rolls it back.
        let reservation = if status_only {
            Default::default()
        } else {
            strategy.begin_update(self.allocations, &mut obj, &old, opts.dry_run)?
        };
        // Validate.
        strategy::no_new_finalizers_while_deleting(&kind, &obj, &old)?;
        let validated = if status_only {
            strategy.validate_status(&kind, &obj, &old)?
        } else {
            strategy.validate(&kind, &obj, Some(&old))?
        };
        let mut warnings = defaulting_warnings;
        warnings.extend(validated);
        // Admit.
        self.enforce_owner_references(info, subresource, &obj, Some(&old), opts)?;
        warnings.extend(
            self.admit(admission::Attributes {
                info,
                subresource,
                operation: "UPDATE",
                obj: &obj,
                old: Some(&old),
                dry_run: opts.dry_run,
            })
            .await?,
        );
        if opts.dry_run {
            return Ok((obj.to_string(), warnings));
        }
        // Commit. Removing the last finalizer of an object being deleted completes the delete.
        let finished = metadata::is_deleting(&obj) && metadata::finalizers(&obj).is_empty();
        let write = if finished {
            Write::Delete {
                expected_rv: current.rv,
            }
        } else {
            Write::Update {
                expected_rv: current.rv,
                value: obj.clone(),
            }
        };
        let name = current.name.clone();
        match self.commit_fitting(info, &current.namespace, &name, write) {
            Ok(stored) => {
                if finished {
                    // The object is gone: nothing this update allocated is kept, and what
                    // it held is freed.
                    drop(reservation);
                    strategy.release(self.allocations, &old);
                    self.after_commit(info, None, Some(&old));
                } else {
                    reservation.commit();
                    self.after_commit(info, Some(&stored), Some(&old));
                }
                Ok((stored.json.to_string(), warnings))
            }
            Err(StoreError::Conflict) => Err(ApiError::conflict(&info.group, &info.plural, &name)),
            Err(StoreError::NotFound) => Err(ApiError::not_found(&info.group, &info.plural, &name)),
            Err(e @ StoreError::TooLarge { .. }) => Err(ApiError::too_large(e.to_string())),
            Err(e) => Err(store_failure(e)),
        }
    }

    /// Deletes one object, honouring preconditions, finalizers, propagation policy and the
    /// strategy's deletion rules (namespaces terminate, bound pods terminate gracefully).
    /// Returns the HTTP status upstream answers with (200, or 202 while finalizers remain)
    /// and the object, final or marked for deletion.
    pub async fn delete(
        &self,
        info: &Arc<ResourceInfo>,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<(u16, String), ApiError> {
        let strategy = &*info.strategy;
        for _ in 0..MAX_DELETE_RETRIES {
            let current = self
                .store
                .get(&info.key(), ns, name)
                .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))?;
            check_delete_preconditions(info, name, &current, opts)?;
            self.admit(admission::Attributes {
                info,
                subresource: None,
                operation: "DELETE",
                obj: &Value::Null,
                old: Some(&current.value()),
                dry_run: opts.dry_run,
            })
            .await?;
            if opts.dry_run {
                return Ok((200, current.json.to_string()));
            }
            let mut obj = current.value();
            let mut finalizers = metadata::finalizers(&obj);
            match strategy.deletion() {
                Deletion::Namespace => {
                    // Terminating phase; the content is removed by the namespace cleaner.
                    if !metadata::is_deleting(&obj) {
                        obj["metadata"]["deletionTimestamp"] = json!(metadata::now_rfc3339());
                        obj["status"]["phase"] = json!("Terminating");
                        match self.commit_deletion_mark(info, ns, name, current.rv, obj)? {
                            Some(stored) => return Ok((200, stored.json.to_string())),
                            None => continue,
                        }
                    }
                    return Ok((200, current.json.to_string()));
                }
                Deletion::GracefulPod => {
                    // Pods bound to a node terminate gracefully (upstream pod strategy
                    // `CheckGracefulDelete`).
                    let bound = obj["spec"]["nodeName"]
                        .as_str()
                        .is_some_and(|n| !n.is_empty());
                    let phase = obj["status"]["phase"].as_str().unwrap_or_default();
                    let terminal = phase == "Succeeded" || phase == "Failed";
                    let grace = opts.grace_period.unwrap_or_else(|| {
                        obj["spec"]["terminationGracePeriodSeconds"]
                            .as_i64()
                            .unwrap_or(30)
                    });
                    let current_grace = obj["metadata"]["deletionGracePeriodSeconds"].as_i64();
                    if bound && !terminal && grace > 0 && current_grace.is_none_or(|g| grace < g) {
                        obj["metadata"]["deletionTimestamp"] = json!(metadata::rfc3339_in(grace));
                        obj["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
                        match self.commit_deletion_mark(info, ns, name, current.rv, obj)? {
                            Some(stored) => return Ok((200, stored.json.to_string())),
                            None => continue,
                        }
                    }
                    if bound && !terminal && grace > 0 && current_grace.is_some() {
                        return Ok((200, current.json.to_string()));
                    }
                }
                Deletion::Immediate => {}
            }
            let extra = match opts.propagation.as_deref() {
                Some("Foreground") => Some("foregroundDeletion"),
                Some("Orphan") => Some("orphan"),
                _ => None,
            };
            if let Some(f) = extra {
                if !finalizers.iter().any(|x| x == f) {
                    finalizers.push(f.to_string());
                }
            }
            if !finalizers.is_empty() {
                let changed =
                    !metadata::is_deleting(&obj) || metadata::finalizers(&obj) != finalizers;
                if !changed {
                    return Ok((202, current.json.to_string()));
                }
                if !metadata::is_deleting(&obj) {
                    obj["metadata"]["deletionTimestamp"] = json!(metadata::now_rfc3339());
                    obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                }
                obj["metadata"]["finalizers"] = json!(finalizers);
                match self.commit_deletion_mark(info, ns, name, current.rv, obj)? {
                    Some(stored) => {
                        return Ok((
                            if extra.is_some() { 200 } else { 202 },
                            stored.json.to_string(),
                        ))
                    }
                    None => continue,
                }
            }
            match self.store.commit(
                &info.key(),
                ns,
                name,
                Write::Delete {
                    expected_rv: current.rv,
                },
            ) {
                Ok(stored) => {
                    strategy.release(self.allocations, &obj);
                    self.after_commit(info, None, Some(&obj));
                    return Ok((200, stored.json.to_string()));
                }
                Err(StoreError::Conflict) => continue,
                Err(StoreError::NotFound) => {
                    return Err(ApiError::not_found(&info.group, &info.plural, name))
                }
                Err(e) => return Err(store_failure(e)),
            }
        }
        Err(ApiError::conflict(&info.group, &info.plural, name))
    }

    /// Creates an object from inside the server (bootstrap objects, examples, Events of
    /// background tasks), bypassing HTTP but not the pipeline.
    pub async fn create_internal(
        &self,
        info: &Arc<ResourceInfo>,
        obj: Value,
    ) -> Result<String, ApiError> {
        self.create(info, obj, &WriteOptions::internal("kube-apiserver"))
            .await
            .map(|(json, _)| json)
    }

    /// Writes a new version of an object (or, with `subresource` `Some("status")`, its
    /// status) from inside the server under `field_manager` ([`CONTROLLER_MANAGER`] for GC,
    /// namespace cleanup and repair, [`DEV_COMPONENTS`] for status writes), bypassing HTTP
    /// but not the pipeline.
    pub async fn update_internal(
        &self,
        info: &Arc<ResourceInfo>,
        subresource: Option<&str>,
        current: &Arc<StoredObject>,
        obj: Value,
        field_manager: &str,
    ) -> Result<String, ApiError> {
        let opts = WriteOptions::internal(field_manager);
        self.update(info, subresource, current, obj, &opts)
            .await
            .map(|(json, _)| json)
    }

    /// The OwnerReferencesPermissionEnforcement admission plugin, when enabled, for a
    /// user's write.
    fn enforce_owner_references(
        &self,
        info: &ResourceInfo,
        subresource: Option<&str>,
        obj: &Value,
        old: Option<&Value>,
        opts: &WriteOptions,
    ) -> Result<(), ApiError> {
        match (&self.owner_references, &opts.user) {
            (Some(enforcement), Some(user)) => enforcement.validate(
                user,
                info,
                subresource,
                obj["metadata"]["namespace"].as_str().unwrap_or_default(),
                obj,
                old,
            ),
            _ => Ok(()),
        }
    }

    /// The admission stage: validating webhooks.
    async fn admit(&self, attrs: admission::Attributes<'_>) -> Result<Vec<String>, ApiError> {
        admission::call_webhooks(self.admission, attrs).await
    }

    /// Commits a create or update; an object too large to store is stored without its
    /// managedFields if that makes it fit. Upstream's create, update and patch handlers retry
    /// the same way when etcd refuses a request as too large: the managedFields of an object
    /// with a long list (one entry per list item, ~100 bytes each for Service ports) can be
    /// most of it.
    fn commit_fitting(
        &self,
        info: &ResourceInfo,
        ns: &str,
        name: &str,
        write: Write,
    ) -> Result<Arc<StoredObject>, StoreError> {
        let expected_rv = match &write {
            Write::Update { expected_rv, .. } | Write::Delete { expected_rv } => Some(*expected_rv),
            Write::Create(_) => None,
        };
        match self.store.commit(&info.key(), ns, name, write) {
            Err(StoreError::TooLarge { size, mut value }) => {
                let dropped = value
                    .get_mut("metadata")
                    .and_then(Value::as_object_mut)
                    .and_then(|m| m.remove("managedFields"))
                    .is_some_and(|mf| mf.as_array().is_some_and(|entries| !entries.is_empty()));
                if !dropped {
                    return Err(StoreError::TooLarge { size, value });
                }
                tracing::info!(
                    resource = %info.plural,
                    namespace = ns,
                    name,
                    size,
                    "object too large to store with its managedFields; storing it without them"
                );
                let retry = match expected_rv {
                    Some(expected_rv) => Write::Update {
                        expected_rv,
                        value: *value,
                    },
                    None => Write::Create(*value),
                };
                self.store.commit(&info.key(), ns, name, retry)
            }
            other => other,
        }
    }

    /// Commits an object marked for deletion (deletion timestamp, finalizers) and wakes the
    /// garbage collector. `Ok(None)` when the object changed meanwhile: the caller retries.
    fn commit_deletion_mark(
        &self,
        info: &ResourceInfo,
        ns: &str,
        name: &str,
        expected_rv: u64,
        value: Value,
    ) -> Result<Option<Arc<StoredObject>>, ApiError> {
        match self
            .store
            .commit(&info.key(), ns, name, Write::Update { expected_rv, value })
        {
            Ok(stored) => {
                self.gc_wakeup.notify_one();
                self.persist_wakeup.notify_one();
                Ok(Some(stored))
            }
            Err(StoreError::Conflict) => Ok(None),
            Err(e) => Err(store_failure(e)),
        }
    }

    /// The after-commit stage: the strategy's registry change (CRDs), then deletes and
    /// deletion-marked objects wake the garbage collector and every write wakes the persister.
    fn after_commit(
        &self,
        info: &ResourceInfo,
        new: Option<&Arc<StoredObject>>,
        old: Option<&Value>,
    ) {
        match info.strategy.after_commit(new.map(|n| &**n), old) {
            Some(RegistryChange::Register(crd)) => {
                self.registry.register_crd(&crd);
            }
            Some(RegistryChange::Unregister(crd)) => self.registry.unregister_crd(&crd),
            None => {}
        }
        let deleting =
            new.is_none() || new.is_some_and(|n| n.json.contains("\"deletionTimestamp\""));
        if deleting {
            self.gc_wakeup.notify_one();
        }
        self.persist_wakeup.notify_one();
    }
}

/// The `preconditions` of a delete: uid and resourceVersion must match the stored object.
fn check_delete_preconditions(
    info: &ResourceInfo,
    name: &str,
    current: &StoredObject,
    opts: &DeleteOptions,
) -> Result<(), ApiError> {
    if opts.uid.as_deref().is_some_and(|u| u != current.uid) {
        return Err(ApiError::conflict_with(
            &info.group,
            &info.plural,
            name,
            format!(
                "Precondition failed: UID in precondition: {}, UID in object meta: {}",
                opts.uid.as_deref().unwrap_or_default(),
                current.uid
            ),
        ));
    }
    if opts
        .resource_version
        .as_deref()
        .is_some_and(|r| r != current.rv.to_string())
    {
        return Err(ApiError::conflict_with(&info.group, &info.plural, name, format!(
            "Precondition failed: ResourceVersion in precondition: {}, ResourceVersion in object meta: {}",
            opts.resource_version.as_deref().unwrap_or_default(),
            current.rv
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;
    use crate::admission::WebhookClients;
    use crate::services::Held;

    /// The pipeline's inputs, without a server.
    struct Fixture {
        store: Store,
        registry: Registry,
        clients: WebhookClients,
        allocations: ServiceAllocations,
        gc_wakeup: Notify,
        persist_wakeup: Notify,
    }

    impl Fixture {
        fn new() -> Self {
            Fixture {
                store: Store::new(1000, HashMap::new()),
                registry: Registry::with_builtins(),
                clients: WebhookClients::default(),
                allocations: ServiceAllocations::new("10.0.0.0/24", "30000-32767").unwrap(),
                gc_wakeup: Notify::new(),
                persist_wakeup: Notify::new(),
            }
        }

        fn pipeline(&self) -> Pipeline<'_> {
            Pipeline {
                store: &self.store,
                registry: &self.registry,
                admission: Admission {
                    store: &self.store,
                    clients: &self.clients,
                },
                allocations: &self.allocations,
                gc_wakeup: &self.gc_wakeup,
                persist_wakeup: &self.persist_wakeup,
                owner_references: None,
            }
        }

        fn info(&self, group: &str, plural: &str) -> Arc<ResourceInfo> {
            self.registry.get(group, "v1", plural).expect("served")
        }

        fn get(&self, group: &str, plural: &str, ns: &str, name: &str) -> Option<Value> {
            let key = self.info(group, plural).key();
            self.store.get(&key, ns, name).map(|o| o.value())
        }
    }

    /// Whether a wake-up is pending (consumes it).
    async fn woken(notify: &Notify) -> bool {
        tokio::time::timeout(Duration::from_millis(10), notify.notified())
            .await
            .is_ok()
    }

    fn configmap(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": "default"}, "data": {"a": "b"}})
    }

    fn service(name: &str, spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": name, "namespace": "default"}, "spec": spec})
    }

    fn node_port_spec() -> Value {
        json!({"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP"}]})
    }

    fn opts(dry_run: bool) -> WriteOptions {
        WriteOptions {
            applied: false,
            dry_run,
            field_manager: "test".into(),
            user: None,
        }
    }

    #[tokio::test]
    async fn create_prepares_metadata_commits_and_wakes_the_persister() {
        let f = Fixture::new();
        let info = f.info("", "configmaps");
        let (json, warnings) = f
            .pipeline()
            .create(&info, configmap("a"), &opts(false))
            .await
            .unwrap();
        assert!(warnings.is_empty());
        let created: Value = serde_json::from_str(&json).unwrap();
        assert!(!metadata::uid(&created).is_empty());
        assert!(created["metadata"]["creationTimestamp"].is_string());
        assert_eq!(created["metadata"]["managedFields"][0]["manager"], "test");
        assert_eq!(f.get("", "configmaps", "default", "a").unwrap(), created);
        assert!(woken(&f.persist_wakeup).await);
        assert!(!woken(&f.gc_wakeup).await, "a plain create is no GC work");
    }

    #[tokio::test]
    async fn create_of_an_existing_name_is_already_exists() {
        let f = Fixture::new();
        let info = f.info("", "configmaps");
        let p = f.pipeline();
        p.create(&info, configmap("a"), &opts(false)).await.unwrap();
        let err = p
            .create(&info, configmap("a"), &opts(false))
            .await
            .unwrap_err();
        assert_eq!(err.reason, "AlreadyExists");
    }

    #[tokio::test]
    async fn generate_name_gives_distinct_names() {
        let f = Fixture::new();
        let info = f.info("", "configmaps");
        let mut names = Vec::new();
        for _ in 0..3 {
            let obj = json!({"metadata": {"generateName": "cm-", "namespace": "default"}});
            let (json, _) = f.pipeline().create(&info, obj, &opts(false)).await.unwrap();
            let v: Value = serde_json::from_str(&json).unwrap();
            names.push(metadata::name(&v).to_string());
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 3);
        assert!(names.iter().all(|n| n.starts_with("cm-")));
    }

    #[tokio::test]
    async fn invalid_service_gives_back_what_allocation_took() {
        let f = Fixture::new();
        let info = f.info("", "services");
        // Allocation runs before validation (upstream `BeginCreate`); the invalid name fails
        // validation, and the dropped reservation frees the ClusterIP and node port.
        let err = f
            .pipeline()
            .create(&info, service("Bad_Name", node_port_spec()), &opts(false))
            .await
            .unwrap_err();
        assert_eq!(err.code, 422, "{}", err.message);
        assert_eq!(f.allocations.allocated(), Vec::<Held>::new());
    }

    #[tokio::test]
    async fn dry_run_stores_and_keeps_nothing() {
        let f = Fixture::new();
        let info = f.info("", "services");
        let (json, _) = f
            .pipeline()
            .create(&info, service("web", node_port_spec()), &opts(true))
            .await
            .unwrap();
        let preview: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(preview["metadata"]["resourceVersion"], "");
        assert!(preview["spec"]["clusterIP"].is_string());
        assert!(f.get("", "services", "default", "web").is_none());
        assert_eq!(f.allocations.allocated(), Vec::<Held>::new());
    }

    #[tokio::test]
    async fn committed_service_keeps_its_values_until_deleted() {
        let f = Fixture::new();
        let info = f.info("", "services");
        let p = f.pipeline();
        p.create(&info, service("web", node_port_spec()), &opts(false))
            .await
            .unwrap();
        let svc = f.get("", "services", "default", "web").unwrap();
        let port = svc["spec"]["ports"][0]["nodePort"].as_i64().unwrap() as i32;
        let ip: std::net::IpAddr = svc["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
        assert!(f.allocations.is_allocated(Held::NodePort(port)));
        assert!(f.allocations.is_allocated(Held::ClusterIp(ip)));
        let (status, _) = p
            .delete(&info, "default", "web", &DeleteOptions::default())
            .await
            .unwrap();
        assert_eq!(status, 200);
        assert!(f.get("", "services", "default", "web").is_none());
        assert_eq!(f.allocations.allocated(), Vec::<Held>::new());
        assert!(woken(&f.gc_wakeup).await, "a delete wakes the collector");
    }

    #[tokio::test]
    async fn failed_update_keeps_the_old_values() {
        let f = Fixture::new();
        let info = f.info("", "services");
        let p = f.pipeline();
        p.create(&info, service("web", node_port_spec()), &opts(false))
            .await
            .unwrap();
        let before = f.allocations.allocated();
        let key = info.key();
        let current = f.store.get(&key, "default", "web").unwrap();
        // A second port gets a node port allocated, then the bad session affinity fails
        // validation: the new node port is freed, the old values stay.
        let mut new = current.value();
        new["spec"]["ports"] = json!([{"port": 80, "protocol": "TCP", "nodePort": new["spec"]["ports"][0]["nodePort"]},
                                      {"name": "b", "port": 81, "protocol": "TCP"}]);
        new["spec"]["ports"][0]["name"] = json!("a");
        new["spec"]["sessionAffinity"] = json!("Sticky");
        let err = p
            .update(&info, None, &current, new, &opts(false))
            .await
            .unwrap_err();
        assert_eq!(err.code, 422, "{}", err.message);
        assert_eq!(f.allocations.allocated(), before);
    }

    #[tokio::test]
    async fn finalizers_hold_a_delete_until_the_last_one_is_removed() {
        let f = Fixture::new();
        let info = f.info("", "configmaps");
        let p = f.pipeline();
        let mut cm = configmap("held");
        cm["metadata"]["finalizers"] = json!(["example.com/hold"]);
        p.create(&info, cm, &opts(false)).await.unwrap();
        let (status, json) = p
            .delete(&info, "default", "held", &DeleteOptions::default())
            .await
            .unwrap();
        assert_eq!(status, 202);
        let marked: Value = serde_json::from_str(&json).unwrap();
        assert!(metadata::is_deleting(&marked));
        let current = f.store.get(&info.key(), "default", "held").unwrap();
        let mut released = current.value();
        released["metadata"]["finalizers"] = json!([]);
        p.update_internal(&info, None, &current, released, CONTROLLER_MANAGER)
            .await
            .unwrap();
        assert!(f.get("", "configmaps", "default", "held").is_none());
    }

    #[tokio::test]
    async fn new_finalizers_are_refused_while_deleting() {
        let f = Fixture::new();
        let info = f.info("", "configmaps");
        let p = f.pipeline();
        let mut cm = configmap("held");
        cm["metadata"]["finalizers"] = json!(["example.com/hold"]);
        p.create(&info, cm, &opts(false)).await.unwrap();
        p.delete(&info, "default", "held", &DeleteOptions::default())
            .await
            .unwrap();
        let current = f.store.get(&info.key(), "default", "held").unwrap();
        let mut more = current.value();
        more["metadata"]["finalizers"] = json!(["example.com/hold", "example.com/other"]);
        let err = p
            .update_internal(&info, None, &current, more, CONTROLLER_MANAGER)
            .await
            .unwrap_err();
        assert_eq!(err.code, 422);
        assert_eq!(err.details.causes[0].field, "metadata.finalizers");
    }

    #[tokio::test]
    async fn namespace_delete_enters_terminating() {
        let f = Fixture::new();
        let info = f.info("", "namespaces");
        let p = f.pipeline();
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}});
        p.create(&info, ns, &opts(false)).await.unwrap();
        let created = f.get("", "namespaces", "", "team").unwrap();
        assert_eq!(created["status"]["phase"], "Active");
        assert_eq!(
            created["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "team"
        );
        let (status, json) = p
            .delete(&info, "", "team", &DeleteOptions::default())
            .await
            .unwrap();
        assert_eq!(status, 200);
        let marked: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(marked["status"]["phase"], "Terminating");
        assert!(f.get("", "namespaces", "", "team").is_some());
    }

    #[tokio::test]
    async fn crd_writes_register_and_unregister_their_resources() {
        let f = Fixture::new();
        let info = f
            .registry
            .get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            .unwrap();
        let p = f.pipeline();
        let crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                              "schema": {"openAPIV3Schema": {"type": "object"}}}],
            },
        });
        p.create(&info, crd, &opts(false)).await.unwrap();
        let widgets = f
            .registry
            .get("example.com", "v1", "widgets")
            .expect("registered");
        assert!(widgets.strategy.tracks_generation());
        p.delete(&info, "", "widgets.example.com", &DeleteOptions::default())
            .await
            .unwrap();
        assert!(f.registry.get("example.com", "v1", "widgets").is_none());
    }

    #[tokio::test]
    async fn delete_preconditions_are_checked() {
        let f = Fixture::new();
        let info = f.info("", "configmaps");
        let p = f.pipeline();
        p.create(&info, configmap("a"), &opts(false)).await.unwrap();
        let wrong_uid = DeleteOptions {
            uid: Some("not-the-uid".into()),
            ..Default::default()
        };
        let err = p
            .delete(&info, "default", "a", &wrong_uid)
            .await
            .unwrap_err();
        assert_eq!(err.code, 409);
        assert!(err
            .message
            .contains("Precondition failed: UID in precondition"));
        assert!(f.get("", "configmaps", "default", "a").is_some());
    }
}
