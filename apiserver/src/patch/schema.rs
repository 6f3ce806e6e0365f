//! The merge schema of a kind: the rows of [`super::list_types`] as a tree, built once per
//! built-in kind (found through its row in `crate::kinds`) and once for custom resources,
//! and walked by strategic merge patch and server-side apply.

use std::sync::OnceLock;

use super::list_types::{
    FieldRule, Gvk, ListSemantics, MergeRules, Rules, CONTAINER, METADATA, POD_SPEC, UNSTRUCTURED,
};

/// A node of a kind's rule tree: the rule at this path and the paths below it. `[]` is the
/// segment for list items.
#[derive(Debug, Default)]
pub struct SchemaNode {
    rule: Option<FieldRule>,
    present: bool,
    children: Vec<(&'static str, SchemaNode)>,
}

impl SchemaNode {
    fn node(&mut self, segments: &[&'static str]) -> &mut SchemaNode {
        match segments.split_first() {
            None => self,
            Some((first, rest)) => {
                let idx = match self.children.iter().position(|(s, _)| s == first) {
                    Some(i) => i,
                    None => {
                        self.children.push((first, SchemaNode::default()));
                        self.children.len() - 1
                    }
                };
                self.children[idx].1.node(rest)
            }
        }
    }

    fn insert(&mut self, segments: &[&'static str], rule: FieldRule) {
        self.node(segments).rule = Some(rule);
    }

    fn child(&self, segment: &str) -> Option<&SchemaNode> {
        self.children
            .iter()
            .find(|(s, _)| *s == segment)
            .map(|(_, n)| n)
    }
}

/// Splits `spec.containers[].ports` into `spec`, `containers`, `[]`, `ports`.
fn segments(path: &'static str) -> Vec<&'static str> {
    let mut out = Vec::new();
    for part in path.split('.') {
        match part.strip_suffix("[]") {
            Some(name) => {
                out.push(name);
                out.push("[]");
            }
            None => out.push(part),
        }
    }
    out
}

/// Inserts `rules` (paths relative to `base`) below `base`.
fn insert_under(root: &mut SchemaNode, base: &[&'static str], rules: Rules) {
    for (path, rule) in rules {
        let mut segs = base.to_vec();
        segs.extend(segments(path));
        root.insert(&segs, *rule);
    }
}

fn build_tree(kind: &MergeRules) -> SchemaNode {
    let mut root = SchemaNode::default();
    insert_under(&mut root, &[], METADATA);
    insert_under(&mut root, &[], kind.rules);
    for path in kind.present {
        root.node(&segments(path)).present = true;
    }
    for spec in kind.pod_specs {
        let base = segments(spec);
        insert_under(&mut root, &base, POD_SPEC);
        // `PodTemplateSpec.spec` and `PodSpec.containers` are always encoded (non-pointer
        // struct, slice without omitempty).
        root.node(&base).present = true;
        let mut containers = base.clone();
        containers.push("containers");
        root.node(&containers).present = true;
        for list in ["containers", "initContainers", "ephemeralContainers"] {
            let mut item = base.clone();
            item.extend([list, "[]"]);
            insert_under(&mut root, &item, CONTAINER);
        }
    }
    root
}

/// The rule tree of every built-in kind (by its index in `crate::kinds::all`), then the
/// unstructured one.
fn trees() -> &'static [SchemaNode] {
    static TREES: OnceLock<Vec<SchemaNode>> = OnceLock::new();
    TREES.get_or_init(|| {
        crate::kinds::all()
            .iter()
            .map(|k| build_tree(k.merge))
            .chain(std::iter::once(build_tree(&UNSTRUCTURED)))
            .collect()
    })
}

/// A position in a kind's rule tree while walking an object: cheap to copy, and `None` once
/// the walk leaves every path the table mentions (everything below is default).
#[derive(Debug, Clone, Copy)]
pub struct SchemaAt(Option<&'static SchemaNode>);

impl SchemaAt {
    /// The position of a field (or map key) below this one.
    pub fn field(self, name: &str) -> SchemaAt {
        SchemaAt(self.0.and_then(|n| n.child(name)))
    }

    /// The position of this list's items.
    pub fn items(self) -> SchemaAt {
        self.field("[]")
    }

    /// Whether the kind's Go type always carries this field (see upstream zero values).
    pub fn is_present(self) -> bool {
        self.0.is_some_and(|n| n.present)
    }

    /// The rule recorded here, if any.
    pub fn rule(self) -> Option<FieldRule> {
        self.0.and_then(|n| n.rule)
    }

    /// List semantics here; atomic unless the table says otherwise.
    pub fn list(self) -> ListSemantics {
        match self.rule() {
            Some(FieldRule::List(l)) => l,
            _ => ListSemantics::ATOMIC,
        }
    }

    /// Whether server-side apply treats the map or struct here as one atomic value.
    pub fn is_atomic_map(self) -> bool {
        matches!(self.rule(), Some(FieldRule::AtomicMap))
    }
}

/// The merge semantics of one kind: look up list and map behaviour by field path.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    tree: &'static SchemaNode,
    builtin: bool,
}

impl Schema {
    /// The schema of a kind this server serves (its row in `crate::kinds`), or the
    /// unstructured schema (only `metadata` is typed; every other list is atomic) for anything
    /// else, as upstream treats custom resources without list markers.
    pub fn for_kind(gvk: &Gvk) -> Schema {
        match crate::kinds::index_of(&gvk.group, &gvk.version, &gvk.kind) {
            Some(i) => Schema {
                tree: &trees()[i],
                builtin: true,
            },
            None => Schema::unstructured(),
        }
    }

    /// The schema of an object whose kind has no Go type (a custom resource).
    pub fn unstructured() -> Schema {
        let trees = trees();
        Schema {
            tree: &trees[trees.len() - 1],
            builtin: false,
        }
    }

    /// Whether the kind is a built-in with Go struct tags. Upstream serves strategic merge
    /// patch only for those (custom resources get 415 Unsupported Media Type).
    pub fn is_builtin(&self) -> bool {
        self.builtin
    }

    /// The root of the kind's rule tree, for walking an object.
    pub fn root(&self) -> SchemaAt {
        SchemaAt(Some(self.tree))
    }

    /// The position of a dotted path (`spec.containers[].ports`) in the rule tree.
    pub fn at(&self, path: &str) -> SchemaAt {
        let mut at = self.root();
        if path.is_empty() {
            return at;
        }
        for part in path.split('.') {
            match part.strip_suffix("[]") {
                Some(name) => at = at.field(name).items(),
                None => at = at.field(part),
            }
        }
        at
    }

    /// The rule recorded for a path, if any.
    pub fn rule(&self, path: &str) -> Option<FieldRule> {
        self.at(path).rule()
    }

    /// List semantics at a path; atomic unless the table says otherwise.
    pub fn list(&self, path: &str) -> ListSemantics {
        self.at(path).list()
    }

    /// Whether server-side apply treats the map or struct at a path as one atomic value.
    pub fn is_atomic_map(&self, path: &str) -> bool {
        self.at(path).is_atomic_map()
    }
}
