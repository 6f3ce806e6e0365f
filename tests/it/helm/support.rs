//! The real Helm CLIs (Helm 3 and Helm 4, installed by `scripts/install-helm.sh`) run against
//! `charts/svcplane`, and the rendered objects read back as JSON values.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize as _;
use serde_json::Value;

/// Release name and namespace every rendering uses unless a test says otherwise.
pub const RELEASE: &str = "t";
/// See [`RELEASE`].
pub const NAMESPACE: &str = "svcplane";

/// The chart's directory in the workspace.
pub fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../charts/svcplane")
        .canonicalize()
        .expect("charts/svcplane exists")
}

/// Where `scripts/install-helm.sh` puts the tools: $SVCPLANE_TOOLS_DIR, else its defaults for
/// root and for other users.
fn tools_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os("SVCPLANE_TOOLS_DIR") {
        dirs.push(PathBuf::from(dir));
    }
    dirs.push(PathBuf::from("/usr/local/lib/svcplane-tools"));
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".local/lib/svcplane-tools"));
    }
    dirs
}

/// One Helm CLI.
pub struct Helm {
    /// 3 or 4.
    pub major: u32,
    path: PathBuf,
    /// HELM_*_HOME for this run: no repository cache or plugin of the machine's user is read.
    home: tempfile::TempDir,
}

impl Helm {
    /// The installed Helm of this major version; panics, saying how to install it, when it is
    /// missing (the chart tests never skip).
    pub fn major(major: u32) -> Helm {
        let dirs = tools_dirs();
        let path = dirs
            .iter()
            .map(|dir| dir.join(format!("helm{major}/helm")))
            .find(|path| path.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "Helm {major} is not installed (looked in {dirs:?}): run \
                     scripts/install-test-deps.sh, which runs scripts/install-helm.sh"
                )
            });
        let helm = Helm {
            major,
            path,
            home: tempfile::tempdir().expect("temp dir"),
        };
        let version = helm
            .run(&["version", "--short"])
            .expect("helm version runs");
        assert!(
            version.starts_with(&format!("v{major}.")),
            "{} reports {version:?}, expected Helm {major}",
            helm.path.display()
        );
        helm
    }

    /// Helm 3 and Helm 4.
    pub fn both() -> [Helm; 2] {
        [Helm::major(3), Helm::major(4)]
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.args(args)
            .env("HELM_CACHE_HOME", self.home.path().join("cache"))
            .env("HELM_CONFIG_HOME", self.home.path().join("config"))
            .env("HELM_DATA_HOME", self.home.path().join("data"))
            .env("KUBECONFIG", self.home.path().join("no-kubeconfig"));
        cmd
    }

    /// Runs helm: stdout on success, stdout and stderr on failure.
    pub fn run(&self, args: &[&str]) -> Result<String, String> {
        let out = self
            .command(args)
            .output()
            .unwrap_or_else(|e| panic!("{} cannot run: {e}", self.path.display()));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(format!(
                "{stdout}{}",
                String::from_utf8_lossy(&out.stderr).into_owned()
            ))
        }
    }

    /// A values file holding `values` (YAML), in this Helm's private directory.
    fn values_file(&self, values: &str) -> PathBuf {
        let path = self
            .home
            .path()
            .join(format!("values-{}.yaml", rand::random::<u64>()));
        std::fs::write(&path, values).expect("write values");
        path
    }

    /// `helm lint --strict` of the chart with `values`.
    pub fn lint(&self, values: &str) -> Result<String, String> {
        let file = self.values_file(values);
        let chart = chart_dir();
        self.run(&[
            "lint",
            "--strict",
            chart.to_str().unwrap(),
            "--namespace",
            NAMESPACE,
            "-f",
            file.to_str().unwrap(),
        ])
    }

    /// `helm template` of the chart with `values`, as objects; Err holds Helm's message.
    pub fn template(&self, values: &str) -> Result<Rendered, String> {
        self.template_as(RELEASE, NAMESPACE, values)
    }

    /// [`Helm::template`] with another release name and namespace.
    pub fn template_as(
        &self,
        release: &str,
        namespace: &str,
        values: &str,
    ) -> Result<Rendered, String> {
        self.template_with(release, namespace, values, &[])
    }

    /// [`Helm::template`] with `--dry-run=server` against the API server of `kubeconfig`: the
    /// chart's `lookup` calls read real objects there, as `helm install` and `helm upgrade` do.
    pub fn template_against(&self, kubeconfig: &Path, values: &str) -> Result<Rendered, String> {
        let kubeconfig = format!("--kubeconfig={}", kubeconfig.display());
        self.template_with(
            RELEASE,
            NAMESPACE,
            values,
            &["--dry-run=server", kubeconfig.as_str()],
        )
    }

    /// `helm install --dry-run=client` of the chart with `values`, with no cluster: what Helm
    /// prints, NOTES included (Helm 4; Helm 3 needs a cluster even for a client dry run).
    pub fn install_dry_run(&self, values: &str) -> Result<String, String> {
        let file = self.values_file(values);
        let chart = chart_dir();
        self.run(&[
            "install",
            RELEASE,
            chart.to_str().unwrap(),
            "--namespace",
            NAMESPACE,
            "--dry-run=client",
            "-f",
            file.to_str().unwrap(),
        ])
    }

    fn template_with(
        &self,
        release: &str,
        namespace: &str,
        values: &str,
        extra: &[&str],
    ) -> Result<Rendered, String> {
        let file = self.values_file(values);
        let chart = chart_dir();
        let mut args = vec![
            "template",
            release,
            chart.to_str().unwrap(),
            "--namespace",
            namespace,
            "-f",
            file.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = self.run(&args)?;
        Ok(Rendered {
            objects: parse_documents(&out),
            release: release.into(),
            namespace: namespace.into(),
        })
    }
}

/// Every non-empty YAML document of a multi-document stream, as JSON values.
pub fn parse_documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|doc| {
            let value = serde_yaml::Value::deserialize(doc).expect("helm prints valid YAML");
            serde_json::to_value(value).expect("YAML maps have string keys")
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// The objects of one rendering.
pub struct Rendered {
    /// In Helm's order.
    pub objects: Vec<Value>,
    /// The release name it was rendered for.
    pub release: String,
    /// The release namespace.
    pub namespace: String,
}

impl Rendered {
    /// Objects of one kind.
    pub fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.objects.iter().filter(|o| o["kind"] == kind).collect()
    }

    /// The one object of this kind and name; panics listing what there is.
    pub fn get(&self, kind: &str, name: &str) -> &Value {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}; rendered: {:?}", self.names()))
    }

    /// `Kind/name` of every object, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .objects
            .iter()
            .map(|o| format!("{}/{}", str_of(&o["kind"]), str_of(&o["metadata"]["name"])))
            .collect();
        names.sort();
        names
    }

    /// A component object's name: `t-svcplane-<suffix>`.
    pub fn name(&self, suffix: &str) -> String {
        format!("{}-svcplane-{suffix}", self.release)
    }

    /// The first container (or init container, by name) of a workload's pod template.
    pub fn container<'a>(&'a self, workload: &'a Value, name: &str) -> &'a Value {
        let spec = &workload["spec"]["template"]["spec"];
        spec["containers"]
            .as_array()
            .into_iter()
            .chain(spec["initContainers"].as_array())
            .flatten()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no container {name} in {}", workload["metadata"]["name"]))
    }

    /// What each ServiceAccount (`namespace/name`) may do, through every binding rendered:
    /// `verb resource[.group][/resourceName]`, prefixed by `namespace: ` for a Role's grants.
    pub fn grants(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for binding in self
            .objects
            .iter()
            .filter(|o| o["kind"] == "ClusterRoleBinding" || o["kind"] == "RoleBinding")
        {
            let role_kind = str_of(&binding["roleRef"]["kind"]);
            let role = self.get(role_kind, str_of(&binding["roleRef"]["name"]));
            let scope = match binding["kind"].as_str() {
                Some("RoleBinding") => format!("{}: ", str_of(&binding["metadata"]["namespace"])),
                _ => String::new(),
            };
            for subject in binding["subjects"].as_array().expect("subjects") {
                assert_eq!(subject["kind"], "ServiceAccount", "{binding}");
                let account = format!(
                    "{}/{}",
                    str_of(&subject["namespace"]),
                    str_of(&subject["name"])
                );
                let entry = out.entry(account).or_default();
                for grant in rule_grants(role) {
                    entry.insert(format!("{scope}{grant}"));
                }
            }
        }
        out
    }
}

/// The grants of a Role or ClusterRole, one string per (verb, resource, group, resourceName).
pub fn rule_grants(role: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        let list = |key: &str| -> Vec<String> {
            rule[key]
                .as_array()
                .map(|a| a.iter().map(|v| str_of(v).to_string()).collect())
                .unwrap_or_default()
        };
        let names = list("resourceNames");
        let names: Vec<Option<String>> = if names.is_empty() {
            vec![None]
        } else {
            names.into_iter().map(Some).collect()
        };
        for group in list("apiGroups") {
            for resource in list("resources") {
                for verb in list("verbs") {
                    for name in &names {
                        let mut grant = format!("{verb} {}", kubectl_resource(&resource, &group));
                        if let Some(name) = name {
                            grant.push('/');
                            grant.push_str(name);
                        }
                        out.insert(grant);
                    }
                }
            }
        }
    }
    out
}

/// How `kubectl auth can-i --list` names a resource of a group: `resource.group`, with a
/// subresource after the group (`loadbalancerippools.svcplane.io/status`).
pub fn kubectl_resource(resource: &str, group: &str) -> String {
    match (group.is_empty(), resource.split_once('/')) {
        (true, _) => resource.to_string(),
        (false, Some((resource, sub))) => format!("{resource}.{group}/{sub}"),
        (false, None) => format!("{resource}.{group}"),
    }
}

/// A JSON string's text, or "" for anything else.
pub fn str_of(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

/// A container's args as strings.
pub fn args_of(container: &Value) -> Vec<String> {
    container["args"]
        .as_array()
        .map(|a| a.iter().map(|v| str_of(v).to_string()).collect())
        .unwrap_or_default()
}

/// The value of `--flag=value` in args (None when absent).
pub fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("{name}=");
    args.iter().find_map(|a| a.strip_prefix(&prefix))
}
