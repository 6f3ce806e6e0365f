//! Upstream's defaulting of the workload kinds (`pkg/apis/apps/v1/defaults.go`,
//! `pkg/apis/batch/v1/defaults.go`, `pkg/apis/core/v1/defaults.go`
//! `SetDefaults_ReplicationController`), applied on create and on spec updates. The pod
//! templates get the Pod defaults this server applies to Pods (`SetDefaults_PodSpec`, a
//! subset). Only fields that are absent (or null) are set.

use serde_json::{json, Value};

/// Sets `obj[key]` to `value` when it is absent or null (and `obj` is an object).
fn default(obj: &mut Value, key: &str, value: Value) {
    if obj.is_object() && obj[key].is_null() {
        obj[key] = value;
    }
}

/// `spec` of a workload, created when absent (upstream's spec is a non-pointer struct).
fn spec(obj: &mut Value) -> &mut Value {
    if obj["spec"].is_null() {
        obj["spec"] = json!({});
    }
    &mut obj["spec"]
}

/// The pod template at `spec.template`: Pod spec defaults.
fn template(spec: &mut Value) {
    if let Some(template) = spec.get_mut("template").filter(|t| t.is_object()) {
        super::builtin::default_pod_spec(template);
    }
}

/// `SetDefaults_Deployment`: one replica, `RollingUpdate` with 25%/25%, 10 revisions kept,
/// a 600 s progress deadline.
pub fn deployment(obj: &mut Value) {
    let spec = spec(obj);
    default(spec, "replicas", json!(1));
    default(spec, "strategy", json!({}));
    default(&mut spec["strategy"], "type", json!("RollingUpdate"));
    if spec["strategy"]["type"] == "RollingUpdate" {
        let strategy = &mut spec["strategy"];
        default(strategy, "rollingUpdate", json!({}));
        default(
            &mut strategy["rollingUpdate"],
            "maxUnavailable",
            json!("25%"),
        );
        default(&mut strategy["rollingUpdate"], "maxSurge", json!("25%"));
    }
    default(spec, "revisionHistoryLimit", json!(10));
    default(spec, "progressDeadlineSeconds", json!(600));
    template(spec);
}

/// `SetDefaults_ReplicaSet`: one replica.
pub fn replica_set(obj: &mut Value) {
    let spec = spec(obj);
    default(spec, "replicas", json!(1));
    template(spec);
}

/// `SetDefaults_StatefulSet`: one replica, `OrderedReady`, `RollingUpdate` with partition 0,
/// 10 revisions kept, PVCs retained.
pub fn stateful_set(obj: &mut Value) {
    let spec = spec(obj);
    default(spec, "replicas", json!(1));
    default(spec, "podManagementPolicy", json!("OrderedReady"));
    default(spec, "updateStrategy", json!({}));
    default(&mut spec["updateStrategy"], "type", json!("RollingUpdate"));
    if spec["updateStrategy"]["type"] == "RollingUpdate" {
        default(
            &mut spec["updateStrategy"],
            "rollingUpdate",
            json!({"partition": 0}),
        );
    }
    default(spec, "revisionHistoryLimit", json!(10));
    default(
        spec,
        "persistentVolumeClaimRetentionPolicy",
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
    );
    template(spec);
}

/// `SetDefaults_DaemonSet`: `RollingUpdate` with maxUnavailable 1 and maxSurge 0, 10
/// revisions kept.
pub fn daemon_set(obj: &mut Value) {
    let spec = spec(obj);
    default(spec, "updateStrategy", json!({}));
    default(&mut spec["updateStrategy"], "type", json!("RollingUpdate"));
    if spec["updateStrategy"]["type"] == "RollingUpdate" {
        let strategy = &mut spec["updateStrategy"];
        default(strategy, "rollingUpdate", json!({}));
        default(&mut strategy["rollingUpdate"], "maxUnavailable", json!(1));
        default(&mut strategy["rollingUpdate"], "maxSurge", json!(0));
    }
    default(spec, "revisionHistoryLimit", json!(10));
    template(spec);
}

/// `SetDefaults_ReplicationController`: selector and labels from the template's labels, one
/// replica.
pub fn replication_controller(obj: &mut Value) {
    let labels = obj["spec"]["template"]["metadata"]["labels"].clone();
    if labels.as_object().is_some_and(|l| !l.is_empty()) {
        let selector_empty = obj["spec"]["selector"]
            .as_object()
            .is_none_or(|s| s.is_empty());
        if selector_empty {
            obj["spec"]["selector"] = labels.clone();
        }
        let own_empty = obj["metadata"]["labels"]
            .as_object()
            .is_none_or(|s| s.is_empty());
        if own_empty && obj["metadata"].is_object() {
            obj["metadata"]["labels"] = labels;
        }
    }
    let spec = spec(obj);
    default(spec, "replicas", json!(1));
    template(spec);
}

fn job_spec(spec: &mut Value) {
    if spec["completions"].is_null() && spec["parallelism"].is_null() {
        spec["completions"] = json!(1);
        spec["parallelism"] = json!(1);
    }
    default(spec, "parallelism", json!(1));
    default(spec, "backoffLimit", json!(6));
    default(spec, "completionMode", json!("NonIndexed"));
    default(spec, "suspend", json!(false));
    default(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
    template(spec);
}

/// `SetDefaults_Job`: completions and parallelism 1 when both are unset, backoff limit 6,
/// `NonIndexed`, not suspended, replacement of terminating or failed Pods.
pub fn job(obj: &mut Value) {
    job_spec(spec(obj));
}

/// `SetDefaults_CronJob`: `Allow`, not suspended, 3 successful and 1 failed Job kept; the
/// Job template as a Job.
pub fn cron_job(obj: &mut Value) {
    let spec = spec(obj);
    default(spec, "concurrencyPolicy", json!("Allow"));
    default(spec, "suspend", json!(false));
    default(spec, "successfulJobsHistoryLimit", json!(3));
    default(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(job_template) = spec.get_mut("jobTemplate").filter(|t| t.is_object()) {
        if job_template["spec"].is_object() {
            job_spec(&mut job_template["spec"]);
        }
    }
}

/// A PodTemplate: the Pod defaults of its `template`.
pub fn pod_template(obj: &mut Value) {
    if let Some(template) = obj.get_mut("template").filter(|t| t.is_object()) {
        super::builtin::default_pod_spec(template);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployments_get_upstreams_defaults_and_keep_what_is_set() {
        let mut d = json!({"metadata": {"name": "web"}, "spec": {"replicas": 3,
            "template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}}});
        deployment(&mut d);
        let spec = &d["spec"];
        assert_eq!(spec["replicas"], 3);
        assert_eq!(spec["strategy"]["type"], "RollingUpdate");
        assert_eq!(spec["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(spec["progressDeadlineSeconds"], 600);
        assert_eq!(spec["template"]["spec"]["restartPolicy"], "Always");
        let mut recreate = json!({"spec": {"strategy": {"type": "Recreate"}}});
        deployment(&mut recreate);
        assert!(recreate["spec"]["strategy"]["rollingUpdate"].is_null());
        assert_eq!(recreate["spec"]["replicas"], 1);
    }

    #[test]
    fn replication_controllers_take_selector_and_labels_from_the_template() {
        let mut rc = json!({"metadata": {"name": "r"},
            "spec": {"template": {"metadata": {"labels": {"app": "web"}}}}});
        replication_controller(&mut rc);
        assert_eq!(rc["spec"]["selector"], json!({"app": "web"}));
        assert_eq!(rc["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(rc["spec"]["replicas"], 1);
    }

    #[test]
    fn jobs_default_completions_only_when_parallelism_is_unset_too() {
        let mut j = json!({"spec": {"parallelism": 4}});
        job(&mut j);
        assert!(j["spec"]["completions"].is_null());
        assert_eq!(j["spec"]["backoffLimit"], 6);
        let mut c = json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {}}}});
        cron_job(&mut c);
        assert_eq!(c["spec"]["jobTemplate"]["spec"]["completions"], 1);
        assert_eq!(c["spec"]["concurrencyPolicy"], "Allow");
    }
}
