//! The agent's list protocol: a (re-)list arrives as `ListStarted`, the listed objects one by
//! one, then `ListDone`; objects of that kind not listed are gone afterwards (as after an
//! informer's re-list in kube-proxy), and the agent is "listed" only when Services, slices and
//! the Node have each completed one list. Objects are applied as they arrive: the agent keeps
//! no second store of typed objects.

mod fixtures;

use std::collections::BTreeMap;
use std::io::Write;

use fixtures::{config, ep, name, node, rows, slice, strings, svc, NODE};
use svcplane_dataplane::agent::{Agent, ListKind, SourceEvent, SyncTiming};
use svcplane_dataplane::dry_run::DryRunBackend;
use svcplane_dataplane::metrics::AgentMetrics;
use svcplane_dataplane::source::read_manifests;

fn agent() -> Agent {
    Agent::new(
        config(),
        Box::new(DryRunBackend::new()),
        SyncTiming::default(),
        AgentMetrics::new().expect("metrics"),
    )
}

fn service(n: &str, ip: &str) -> SourceEvent {
    SourceEvent::Service(Box::new(
        svc(n).cluster_ips(&[ip]).port("", "TCP", 80).build(),
    ))
}

fn endpoints(service: &str, slice_name: &str, address: &str) -> SourceEvent {
    SourceEvent::Slice(Box::new(
        slice(service, slice_name)
            .port("", "TCP", 8080)
            .ep(ep(address))
            .build(),
    ))
}

fn table(agent: &mut Agent) -> BTreeMap<String, Vec<String>> {
    agent.sync_now(false).expect("dry-run sync");
    rows(agent.model().table())
}

/// The start-up lists of all three kinds, holding Services `a` and `b` with one slice each.
fn listed_agent() -> Agent {
    let mut agent = agent();
    let events = [
        SourceEvent::ListStarted(ListKind::Services),
        service("a", "10.96.0.1"),
        service("b", "10.96.0.2"),
        SourceEvent::ListDone(ListKind::Services),
        SourceEvent::ListStarted(ListKind::Slices),
        endpoints("a", "a-1", "10.0.0.1"),
        endpoints("b", "b-1", "10.0.0.2"),
        SourceEvent::ListDone(ListKind::Slices),
        SourceEvent::ListStarted(ListKind::Node),
        SourceEvent::Node(Box::new(node(NODE).internal("192.168.0.1").build())),
    ];
    for event in events {
        agent.apply(event);
        assert!(!agent.is_listed(), "listed before the Node list completed");
    }
    assert!(
        agent.apply(SourceEvent::ListDone(ListKind::Node)),
        "completing the last list asks for the first sync"
    );
    assert!(agent.is_listed());
    agent
}

#[test]
fn start_up_lists_apply_objects_as_they_arrive_and_list_only_when_all_kinds_completed() {
    let mut agent = listed_agent();
    let t = table(&mut agent);
    assert_eq!(t["TCP 10.96.0.1:80"], strings(&["10.0.0.1:8080"]));
    assert_eq!(t["TCP 10.96.0.2:80"], strings(&["10.0.0.2:8080"]));
}

#[test]
fn a_relist_forgets_services_and_slices_it_does_not_contain_and_keeps_the_rest() {
    let mut agent = listed_agent();
    table(&mut agent);
    // A watch failure and re-list: `b` and slice `a-1` were deleted meanwhile, `a` got a new
    // slice, `c` is new.
    for event in [
        SourceEvent::ListStarted(ListKind::Services),
        service("a", "10.96.0.1"),
        service("c", "10.96.0.3"),
        SourceEvent::ListDone(ListKind::Services),
        SourceEvent::ListStarted(ListKind::Slices),
        endpoints("a", "a-2", "10.0.0.9"),
        endpoints("b", "b-1", "10.0.0.2"),
        SourceEvent::ListDone(ListKind::Slices),
    ] {
        agent.apply(event);
    }
    let t = table(&mut agent);
    assert_eq!(t["TCP 10.96.0.1:80"], strings(&["10.0.0.9:8080"]));
    assert!(t["TCP 10.96.0.3:80"].is_empty(), "c has no slice");
    assert!(!t.contains_key("TCP 10.96.0.2:80"), "b is gone: {t:?}");
    assert!(agent.model().table().service(&name("b")).is_none());
    assert_eq!(agent.model().object_counts(), (2, 2));
}

#[test]
fn an_empty_relist_removes_every_object_of_that_kind_only() {
    let mut agent = listed_agent();
    table(&mut agent);
    agent.apply(SourceEvent::ListStarted(ListKind::Slices));
    agent.apply(SourceEvent::ListDone(ListKind::Slices));
    let t = table(&mut agent);
    assert!(t["TCP 10.96.0.1:80"].is_empty());
    assert!(t["TCP 10.96.0.2:80"].is_empty());
    assert_eq!(agent.model().object_counts(), (2, 0));
}

#[test]
fn changes_outside_a_list_are_not_mistaken_for_list_members() {
    let mut agent = listed_agent();
    // Watch events after the list: applied, never remembered as "seen" for a later list.
    agent.apply(service("d", "10.96.0.4"));
    agent.apply(SourceEvent::ListStarted(ListKind::Services));
    agent.apply(service("a", "10.96.0.1"));
    agent.apply(SourceEvent::ListDone(ListKind::Services));
    let t = table(&mut agent);
    assert!(t.contains_key("TCP 10.96.0.1:80"));
    assert!(!t.contains_key("TCP 10.96.0.2:80"));
    assert!(
        !t.contains_key("TCP 10.96.0.4:80"),
        "d was not in the list: {t:?}"
    );
}

#[test]
fn manifests_stream_as_complete_lists_of_every_kind() {
    let dir = std::env::temp_dir().join(format!("svcplane-agent-lists-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("objects.yaml");
    let mut file = std::fs::File::create(&path).expect("create");
    write!(
        file,
        "{}\n---\n{}\n---\n{}\n",
        serde_json::to_string(&svc("a").cluster_ips(&["10.96.0.1"]).port("", "TCP", 80).0)
            .expect("json"),
        serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
            slice("a", "a-1").port("", "TCP", 8080).ep(ep("10.0.0.1")).0,
        ]}),
        serde_json::to_string(&node(NODE).internal("192.168.0.1").0).expect("json"),
    )
    .expect("write");
    drop(file);
    let mut kinds = Vec::new();
    let mut agent = agent();
    read_manifests(&path, &mut |event| {
        kinds.push(match &event {
            SourceEvent::ListStarted(k) => format!("start {k:?}"),
            SourceEvent::ListDone(k) => format!("done {k:?}"),
            SourceEvent::Service(_) => "service".into(),
            SourceEvent::Slice(_) => "slice".into(),
            SourceEvent::Node(_) => "node".into(),
            other => format!("{other:?}"),
        });
        agent.apply(event);
    })
    .expect("valid manifests");
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(
        kinds,
        [
            "start Node",
            "start Services",
            "start Slices",
            "service",
            "slice",
            "node",
            "done Node",
            "done Services",
            "done Slices"
        ]
    );
    assert!(agent.is_listed());
    assert_eq!(
        table(&mut agent)["TCP 10.96.0.1:80"],
        strings(&["10.0.0.1:8080"])
    );
}

#[test]
fn a_bad_manifest_names_the_document_and_field() {
    let dir = std::env::temp_dir().join(format!("svcplane-agent-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("bad.yaml");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: b}\nspec: {ports: [{port: eighty}]}\n",
    )
    .expect("write");
    let err = read_manifests(&path, &mut |_| {}).expect_err("port is not a number");
    std::fs::remove_dir_all(&dir).ok();
    let message = err.to_string();
    assert!(message.contains("document 2"), "{message}");
    assert!(message.contains("spec.ports[0].port"), "{message}");
}
