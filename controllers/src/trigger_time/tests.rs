//! Cases from upstream `trigger_time_tracker_test.go` (facts, not code), plus Pods without a
//! Ready time and the Service state being dropped.

use super::*;
use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

/// `t(n)`: 2019-01-01T00:00:00Z plus `n` seconds (upstream's `t0`..`t5`).
fn t(n: i64) -> Timestamp {
    Timestamp::from_second(1_546_300_800 + n).unwrap()
}

fn service(created: i64) -> Service {
    Service {
        metadata: ObjectMeta {
            namespace: Some("ttNamespace1".into()),
            name: Some("my-service".into()),
            creation_timestamp: Some(Time(t(created))),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A ready Pod whose Ready condition changed at `t(ready)` (`None`: no transition time).
fn pod(name: &str, ready: Option<i64>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            namespace: Some("ttNamespace1".into()),
            name: Some(name.into()),
            ..Default::default()
        },
        status: Some(PodStatus {
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                last_transition_time: ready.map(|r| Time(t(r))),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

enum Step {
    /// Sync with the Service created at `t(.0)` and Pods `(name, ready time)`; expect `.2`.
    Sync(i64, &'static [(&'static str, Option<i64>)], Option<i64>),
    /// The Service was deleted.
    Delete,
}
use Step::{Delete, Sync};

const KEY: &str = "ttNamespace1/my-service";

#[test]
fn trigger_time_is_min_of_changed_times_like_upstream() {
    let cases: &[(&str, &[Step])] = &[
        ("new service, no pods", &[Sync(2, &[], Some(2))]),
        (
            // Pods were created before the Service: still the Service's creation.
            "new service, existing pods",
            &[Sync(
                3,
                &[("pod1", Some(0)), ("pod2", Some(1)), ("pod3", Some(5))],
                Some(3),
            )],
        ),
        (
            "pods added",
            &[
                Sync(0, &[], Some(0)),
                Sync(0, &[("pod1", Some(2)), ("pod2", Some(1))], Some(1)),
            ],
        ),
        (
            "pods updated",
            &[
                Sync(
                    0,
                    &[("pod1", Some(1)), ("pod2", Some(2)), ("pod3", Some(3))],
                    Some(0),
                ),
                Sync(
                    0,
                    &[("pod1", Some(5)), ("pod2", Some(4)), ("pod3", Some(3))],
                    Some(4),
                ),
            ],
        ),
        (
            "nothing changed",
            &[
                Sync(
                    0,
                    &[("pod1", Some(1)), ("pod2", Some(2)), ("pod3", Some(3))],
                    Some(0),
                ),
                Sync(
                    0,
                    &[("pod1", Some(1)), ("pod2", Some(2)), ("pod3", Some(3))],
                    None,
                ),
            ],
        ),
        (
            "pod deleted then added",
            &[
                Sync(0, &[("pod1", Some(1)), ("pod2", Some(2))], Some(0)),
                Sync(0, &[("pod1", Some(1))], None),
                Sync(0, &[("pod1", Some(1)), ("pod2", Some(4))], Some(4)),
            ],
        ),
        (
            "service deleted then added",
            &[
                Sync(0, &[("pod1", Some(1)), ("pod2", Some(2))], Some(0)),
                Delete,
                Sync(3, &[("pod1", Some(1)), ("pod2", Some(2))], Some(3)),
            ],
        ),
        (
            // A re-created Service seen without a deletion in between: its newer creation
            // time is a change like any other.
            "service recreated between syncs",
            &[
                Sync(0, &[("pod1", Some(1))], Some(0)),
                Sync(3, &[("pod1", Some(1))], Some(3)),
            ],
        ),
        (
            "pod without a ready transition time does not count",
            &[
                Sync(0, &[], Some(0)),
                Sync(0, &[("pod1", None)], None),
                Sync(0, &[("pod1", Some(2))], Some(2)),
            ],
        ),
        (
            // A Pod's readiness going back in time (clock skew) is not a change.
            "older pod time is not a change",
            &[
                Sync(0, &[("pod1", Some(3))], Some(0)),
                Sync(0, &[("pod1", Some(2))], None),
            ],
        ),
    ];
    for (name, steps) in cases {
        let tracker = TriggerTimeTracker::new();
        for (i, step) in steps.iter().enumerate() {
            match step {
                Sync(created, pods, want) => {
                    let pods: Vec<Pod> = pods.iter().map(|(n, r)| pod(n, *r)).collect();
                    let refs: Vec<&Pod> = pods.iter().collect();
                    let got = tracker.compute(KEY, &service(*created), &refs);
                    assert_eq!(got, want.map(t), "{name}: step {i}");
                }
                Delete => tracker.delete_service(KEY),
            }
        }
    }
}

#[test]
fn service_updates_without_new_times_yield_none() {
    // Upstream `TestServiceUpdatedNoPodChange`: a spec change has no trigger time.
    let tracker = TriggerTimeTracker::new();
    let (p1, p2) = (pod("pod1", Some(1)), pod("pod2", Some(2)));
    let mut svc = service(0);
    assert_eq!(tracker.compute(KEY, &svc, &[&p1, &p2]), Some(t(0)));
    svc.spec = Some(Default::default());
    assert_eq!(tracker.compute(KEY, &svc, &[&p1, &p2]), None);
}

#[test]
fn services_are_tracked_separately_and_dropped_on_delete() {
    let tracker = TriggerTimeTracker::new();
    let p = pod("pod1", Some(1));
    assert_eq!(tracker.compute("a/x", &service(0), &[&p]), Some(t(0)));
    assert_eq!(tracker.compute("b/x", &service(2), &[&p]), Some(t(2)));
    assert_eq!(tracker.len(), 2);
    tracker.delete_service("a/x");
    assert_eq!(tracker.len(), 1);
    assert_eq!(tracker.compute("b/x", &service(2), &[&p]), None);
    assert_eq!(tracker.compute("a/x", &service(0), &[&p]), Some(t(0)));
}

#[test]
fn pod_trigger_time_is_ready_transition_time() {
    assert_eq!(pod_trigger_time(&pod("p", Some(4))), Some(t(4)));
    assert_eq!(pod_trigger_time(&pod("p", None)), None);
    assert_eq!(pod_trigger_time(&Pod::default()), None);
}
