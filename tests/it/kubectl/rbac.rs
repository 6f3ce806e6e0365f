//! The real kubectl against the embedded API server with `--authorization-mode=RBAC`:
//! authentication (the admin's client certificate, ServiceAccount tokens from
//! `kubectl create token`, `--token-auth-file`, anonymous), upstream's 401 and 403 answers,
//! `kubectl auth can-i` / `can-i --list` / `whoami`, and impersonation (`--as`).

use std::path::PathBuf;

use svcplane_apiserver::{AuthorizationMode, Config};
use svcplane_tests::Kubectl;

fn rbac() -> Config {
    Config {
        authorization_mode: AuthorizationMode::Rbac,
        ..Config::default()
    }
}

/// An RBAC fixture with namespace `x` and ServiceAccount `x/app`, and a kubeconfig holding a
/// token `kubectl create token` issued for it.
async fn with_service_account(test: &str) -> (Kubectl, PathBuf) {
    let k = Kubectl::start_with(test, rbac()).await;
    k.ok(&["create", "namespace", "x"]).await;
    k.ok(&["create", "serviceaccount", "app", "-n", "x"]).await;
    let token = k.ok(&["create", "token", "app", "-n", "x"]).await;
    let path = k.token_kubeconfig("app.kubeconfig", token.trim());
    (k, path)
}

/// Upstream: the admin kubeconfig's user is in `system:masters`, which the privileged-group
/// authorizer allows everything; `kubectl auth whoami` shows the client certificate's CN and O.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_client_certificate_is_system_masters_under_rbac() {
    let k = Kubectl::start_with(
        "admin_client_certificate_is_system_masters_under_rbac",
        rbac(),
    )
    .await;
    let out = k.ok(&["get", "services", "-A"]).await;
    assert!(out.contains("kubernetes"), "{out}");
    let out = k.ok(&["auth", "whoami"]).await;
    assert!(out.contains("svcplane-admin"), "{out}");
    assert!(out.contains("system:masters"), "{out}");
    assert!(out.contains("system:authenticated"), "{out}");
    assert_eq!(
        k.ok(&["auth", "can-i", "delete", "nodes"]).await.trim(),
        "yes"
    );
    // The bootstrap policy exists, as on a fresh kube-apiserver.
    let out = k
        .ok(&[
            "get",
            "clusterrolebinding",
            "cluster-admin",
            "-o",
            "jsonpath={.subjects[0].name}",
        ])
        .await;
    assert_eq!(out, "system:masters");
}

/// Upstream `ForbiddenStatusError`: a ServiceAccount without bindings gets 403 with the exact
/// message; a Role and RoleBinding grant it; `kubectl auth can-i` and `whoami` answer for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_token_is_forbidden_until_a_role_binding_grants_access() {
    let (k, sa) = with_service_account(
        "service_account_token_is_forbidden_until_a_role_binding_grants_access",
    )
    .await;
    let (ok, _, stderr) = k.run_with(&sa, &["get", "services", "-n", "x"]).await;
    assert!(!ok);
    assert!(
        stderr.contains(
            r#"Error from server (Forbidden): services is forbidden: User "system:serviceaccount:x:app" cannot list resource "services" in API group "" in the namespace "x""#
        ),
        "{stderr}"
    );
    let metrics = k.fx.server.metrics_text();
    assert!(
        metrics.contains(
            r#"apiserver_authorization_decisions_total{decision="denied",name="rbac",type="RBAC"}"#
        ),
        "{metrics}"
    );
    let (ok, out, _) = k
        .run_with(&sa, &["auth", "can-i", "list", "services", "-n", "x"])
        .await;
    assert!(!ok, "can-i exits 1 for no");
    assert_eq!(out.trim(), "no");

    // whoami: the ServiceAccount's user and upstream's three groups.
    let out = k.run_with(&sa, &["auth", "whoami"]).await.1;
    assert!(out.contains("system:serviceaccount:x:app"), "{out}");
    assert!(out.contains("system:serviceaccounts:x"), "{out}");

    super::grant(
        &k,
        "x",
        "app",
        ("svc-reader", "app-reads"),
        "get,list,watch",
        "services",
    )
    .await;
    let (ok, out, stderr) = k.run_with(&sa, &["get", "services", "-n", "x"]).await;
    assert!(ok, "{out}{stderr}");
    assert_eq!(
        k.run_with(&sa, &["auth", "can-i", "list", "services", "-n", "x"])
            .await
            .1
            .trim(),
        "yes"
    );
    // Only in x, and only reading.
    assert_eq!(
        k.run_with(&sa, &["auth", "can-i", "create", "services", "-n", "x"])
            .await
            .1
            .trim(),
        "no"
    );
    let (ok, _, stderr) = k.run_with(&sa, &["get", "services", "-n", "default"]).await;
    assert!(!ok);
    assert!(stderr.contains(r#"in the namespace "default""#), "{stderr}");

    // can-i --list as the ServiceAccount (impersonated by the admin): the Role's rule and the
    // bootstrap self-review rules.
    let out = k
        .ok(&[
            "auth",
            "can-i",
            "--list",
            "-n",
            "x",
            "--as=system:serviceaccount:x:app",
        ])
        .await;
    let services = out
        .lines()
        .find(|l| l.starts_with("services "))
        .unwrap_or_else(|| panic!("no services row: {out}"));
    assert!(services.contains("[get list watch]"), "{out}");
    assert!(
        out.contains("selfsubjectaccessreviews.authorization.k8s.io"),
        "{out}"
    );
    assert!(out.contains("[/api/*]"), "{out}");
    assert!(!out.lines().any(|l| l.starts_with("pods ")), "{out}");

    // Access ends with the binding.
    k.ok(&["delete", "rolebinding", "app-reads", "-n", "x"])
        .await;
    let (ok, _, stderr) = k.run_with(&sa, &["get", "services", "-n", "x"]).await;
    assert!(!ok);
    assert!(stderr.contains("(Forbidden)"), "{stderr}");
}

/// A plain HTTPS client trusting the fixture's CA, presenting no client certificate.
fn https(k: &Kubectl) -> reqwest::Client {
    let ca = k.fx.server.ca_pem.as_deref().expect("TLS fixture");
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).expect("CA PEM"))
        .build()
        .expect("client")
}

async fn get(k: &Kubectl, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = https(k).get(format!("{}{path}", k.fx.url));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("request");
    (resp.status().as_u16(), resp.text().await.expect("body"))
}

/// Upstream `bearertoken.Authenticator` and `responsewriters.Unauthorized`: a token no
/// authenticator accepts is 401 with the `Unauthorized` Status (kubectl: "You must be logged
/// in to the server"), and a ServiceAccount token stops working when its ServiceAccount is
/// deleted (`validator.Validate` looks the account up and compares its uid).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_and_orphaned_tokens_are_unauthorized() {
    let (k, sa) = with_service_account("bad_and_orphaned_tokens_are_unauthorized").await;
    let (code, body) = get(&k, "/api/v1/namespaces", Some("not-a-token")).await;
    assert_eq!(code, 401);
    let status: serde_json::Value = serde_json::from_str(&body).expect("Status JSON");
    assert_eq!(
        status,
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
    );
    assert!(k
        .fx
        .server
        .metrics_text()
        .contains(r#"authentication_attempts{result="failure"} "#));
    let bad = k.token_kubeconfig("bad.kubeconfig", "not-a-token");
    let (ok, _, stderr) = k.run_with(&bad, &["get", "services"]).await;
    assert!(!ok);
    assert!(
        stderr.contains("You must be logged in to the server"),
        "{stderr}"
    );

    assert!(k.run_with(&sa, &["auth", "whoami"]).await.0);
    k.ok(&["delete", "serviceaccount", "app", "-n", "x"]).await;
    let (ok, _, stderr) = k.run_with(&sa, &["auth", "whoami"]).await;
    assert!(!ok);
    assert!(stderr.contains("Unauthorized"), "{stderr}");
    // A new ServiceAccount of the same name has another uid: the old token stays refused.
    k.ok(&["create", "serviceaccount", "app", "-n", "x"]).await;
    assert!(!k.run_with(&sa, &["auth", "whoami"]).await.0);
}

/// Upstream anonymous authentication and `system:public-info-viewer`: no credentials is
/// `system:anonymous`, allowed `/healthz` and `/version` but not discovery or resources.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_requests_see_only_public_info() {
    let k = Kubectl::start_with("anonymous_requests_see_only_public_info", rbac()).await;
    assert_eq!(get(&k, "/healthz", None).await, (200, "ok".to_string()));
    assert_eq!(get(&k, "/version", None).await.0, 200);
    let (code, body) = get(&k, "/api", None).await;
    assert_eq!(code, 403);
    assert!(
        body.contains(r#"forbidden: User \"system:anonymous\" cannot get path \"/api\""#),
        "{body}"
    );
    let (code, body) = get(&k, "/api/v1/namespaces/default/services", None).await;
    assert_eq!(code, 403);
    let status: serde_json::Value = serde_json::from_str(&body).expect("Status JSON");
    assert_eq!(status["reason"], "Forbidden");
    assert_eq!(status["details"]["kind"], "services");
}

/// impersonation.go: `--as` needs `impersonate` on `users` (or the ServiceAccount); denied
/// with upstream's message naming the impersonated user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impersonation_needs_the_impersonate_verb() {
    let (k, sa) = with_service_account("impersonation_needs_the_impersonate_verb").await;
    // (A raw request: kubectl prints no Status of a failed discovery, and `auth whoami` reads a
    // 403 as "API not enabled".)
    let (ok, _, stderr) = k
        .run_with(
            &sa,
            &["get", "--raw", "/api/v1/namespaces/x/pods", "--as=alice"],
        )
        .await;
    assert!(!ok);
    assert!(
        stderr.contains(
            r#"users "alice" is forbidden: User "system:serviceaccount:x:app" cannot impersonate resource "users" in API group "" at the cluster scope"#
        ),
        "{stderr}"
    );
    k.ok(&[
        "create",
        "clusterrole",
        "impersonator",
        "--verb=impersonate",
        "--resource=users",
        "--resource-name=alice",
    ])
    .await;
    k.ok(&[
        "create",
        "clusterrolebinding",
        "app-impersonates",
        "--clusterrole=impersonator",
        "--serviceaccount=x:app",
    ])
    .await;
    let out = k.run_with(&sa, &["auth", "whoami", "--as=alice"]).await.1;
    assert!(out.contains("alice"), "{out}");
    // alice herself may do nothing else.
    let (ok, _, stderr) = k
        .run_with(&sa, &["get", "pods", "-n", "x", "--as=alice"])
        .await;
    assert!(!ok);
    assert!(
        stderr.contains(r#"User "alice" cannot list resource "pods""#),
        "{stderr}"
    );
}

/// tokenfile.go: `--token-auth-file` users with their groups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_file_users_authenticate_with_their_groups() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("tokens.csv");
    std::fs::write(&file, "s3cret,bob,1001,\"devs,system:masters\"\n").expect("write tokens");
    let k = Kubectl::start_with(
        "token_auth_file_users_authenticate_with_their_groups",
        Config {
            token_auth_file: Some(file),
            ..rbac()
        },
    )
    .await;
    let bob = k.token_kubeconfig("bob.kubeconfig", "s3cret");
    let out = k.run_with(&bob, &["auth", "whoami"]).await.1;
    assert!(out.contains("bob"), "{out}");
    assert!(out.contains("1001"), "{out}");
    assert!(out.contains("devs"), "{out}");
    assert!(k.run_with(&bob, &["get", "nodes"]).await.0);
}
