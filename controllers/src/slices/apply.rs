//! The thin apply step for slice plans (upstream `finalize`): creates, then updates, then
//! deletes, recording every write in the tracker and the metrics.

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams};
use kube::Client;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::slices::plan::SlicePlan;
use crate::slices::tracker::SliceTracker;

/// Applies a plan for the Service (or Endpoints) `owner` (`namespace/name`) with the
/// controller's own `client`.
pub async fn apply_slice_plan(
    ctx: &Context,
    client: &Client,
    controller: &'static str,
    owner: &str,
    namespace: &str,
    plan: &SlicePlan,
    tracker: &SliceTracker,
) -> Result<()> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
    let changes = |op: &str| {
        ctx.metrics
            .changes
            .with_label_values(&[controller, op])
            .inc()
    };
    for slice in &plan.to_create {
        let created = api
            .create(&PostParams::default(), slice)
            .await
            .map_err(|e| Error::api(format!("failed to create EndpointSlice for {owner}"), e))?;
        tracker.update(&created);
        changes("create");
    }
    for slice in &plan.to_update {
        let name = slice.metadata.name.clone().unwrap_or_default();
        let updated = api
            .replace(&name, &PostParams::default(), slice)
            .await
            .map_err(|e| {
                Error::api(
                    format!("failed to update {name} EndpointSlice for {owner}"),
                    e,
                )
            })?;
        tracker.update(&updated);
        changes("update");
    }
    for slice in &plan.to_delete {
        let name = slice.metadata.name.clone().unwrap_or_default();
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(Error::api(
                    format!("failed to delete {name} EndpointSlice for {owner}"),
                    e,
                ))
            }
        }
        tracker.expect_deletion(slice);
        changes("delete");
    }
    Ok(())
}
