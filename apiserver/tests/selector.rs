//! Label and field selector parsing and matching, checked against upstream
//! `k8s.io/apimachinery/pkg/labels` (selector_test.go cases) and `pkg/fields`.

use std::collections::BTreeMap;

use serde_json::json;
use svcplane_apiserver::selector::{FieldSelector, LabelOperator, LabelSelector, SelectorError};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// (selector, labels, expected match)
type MatchRow<'a> = (&'a str, &'a [(&'a str, &'a str)], bool);

#[test]
fn label_selector_valid_syntax_matches_like_upstream() {
    // Rows follow upstream TestSelectorMatches-style cases.
    let rows: &[MatchRow] = &[
        ("", &[("x", "y")], true),
        ("", &[], true),
        ("x=y", &[("x", "y")], true),
        ("x==y", &[("x", "y")], true),
        ("x=y", &[("x", "z")], false),
        ("x!=y", &[("x", "z")], true),
        ("x!=y", &[], true),
        ("x!=y", &[("x", "y")], false),
        ("x", &[("x", "")], true),
        ("x", &[], false),
        ("!x", &[], true),
        ("!x", &[("x", "z")], false),
        ("x in (a,b)", &[("x", "b")], true),
        ("x in (a,b)", &[("x", "c")], false),
        ("x in (a,b)", &[], false),
        ("x notin (a,b)", &[("x", "c")], true),
        ("x notin (a,b)", &[], true),
        ("x notin (a,b)", &[("x", "a")], false),
        ("x in ()", &[("x", "")], true),
        (
            "x in (foo,,baz),y,z notin ()",
            &[("x", ""), ("y", "1")],
            true,
        ),
        (
            "x in (foo,,baz),y,z notin ()",
            &[("x", ""), ("y", "1"), ("z", "")],
            false,
        ),
        ("x=y,z=w", &[("x", "y"), ("z", "w")], true),
        ("x=y,z=w", &[("x", "y")], false),
        ("  x  =  y  ,  z  ", &[("x", "y"), ("z", "")], true),
        ("x=", &[("x", "")], true),
        ("x=,z=w", &[("x", ""), ("z", "w")], true),
        ("x>1", &[("x", "2")], true),
        ("x>1", &[("x", "1")], false),
        ("x<1", &[("x", "0")], true),
        ("x<1", &[("x", "a")], false),
        ("in in (in)", &[("in", "in")], true),
        ("notin notin (notin)", &[("notin", "x")], true),
        ("example.com/app=web", &[("example.com/app", "web")], true),
        (
            "app.kubernetes.io/name in (a, b)",
            &[("app.kubernetes.io/name", "b")],
            true,
        ),
    ];
    for (sel, ls, want) in rows {
        let parsed = LabelSelector::parse(sel).unwrap_or_else(|e| panic!("{sel:?}: {e}"));
        assert_eq!(
            parsed.matches(&labels(ls)),
            *want,
            "selector {sel:?} on {ls:?}"
        );
    }
}

#[test]
fn label_selector_requirements_are_sorted_by_key_with_sorted_values() {
    let s = LabelSelector::parse("z in (b,a,b), a!=1, !m").unwrap();
    let keys: Vec<&str> = s.requirements.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["a", "m", "z"]);
    assert_eq!(s.requirements[1].operator, LabelOperator::DoesNotExist);
    assert_eq!(s.requirements[2].values, ["a", "b"]);
}

#[test]
fn label_selector_invalid_syntax_gives_upstream_messages() {
    let name_part = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    let value_msg = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
    let rows: Vec<(&str, String)> = vec![
        ("x=a||y=b", format!("unable to parse requirement: values[0][x]: Invalid value: \"a||y\": {value_msg}")),
        ("x==a==b", "found '==', expected: ',' or 'end of string'".into()),
        ("x=y,", "found '', expected: identifier after ','".into()),
        (",x=y", "found ',', expected: !, identifier, or 'end of string'".into()),
        ("x in (a", "unable to parse requirement: found '', expected: ',' or ')'".into()),
        ("x in a", "unable to parse requirement: found 'a' expected: '('".into()),
        ("x in (a b)", "unable to parse requirement: found 'b', expected: ',' or ')'".into()),
        ("x in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier".into()),
        ("x y", "unable to parse requirement: found 'y', expected: in, notin, =, ==, !=, gt, lt".into()),
        ("!x=y", "found '=', expected: ',' or 'end of string'".into()),
        ("!", "unable to parse requirement: found '', expected: identifier".into()),
        ("x=(", "unable to parse requirement: found '(', expected: identifier".into()),
        ("x>a", "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer".into()),
        ("-x=y", format!("unable to parse requirement: <nil>: Invalid value: \"-x\": {name_part}")),
        ("/x", "unable to parse requirement: <nil>: Invalid value: \"/x\": prefix part must be non-empty".into()),
        ("Example.com/x", "unable to parse requirement: <nil>: Invalid value: \"Example.com/x\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".into()),
        ("a/b/c", "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".into()),
        (
            "x=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "unable to parse requirement: values[0][x]: Invalid value: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\": must be no more than 63 characters".into(),
        ),
    ];
    for (sel, want) in rows {
        match LabelSelector::parse(sel) {
            Ok(s) => panic!("{sel:?} parsed as {s:?}, wanted error {want}"),
            Err(e) => {
                assert!(matches!(e, SelectorError::Label(_)));
                assert_eq!(e.to_string(), want, "selector {sel:?}");
            }
        }
    }
}

#[test]
fn meta_label_selector_converts_match_labels_and_expressions() {
    let sel = LabelSelector::from_meta(&json!({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front", "edge"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "zone", "operator": "NotIn", "values": ["b"]},
            {"key": "team", "operator": "Exists"}
        ]
    }))
    .unwrap();
    let yes = labels(&[("app", "web"), ("tier", "edge"), ("team", "x")]);
    assert!(sel.matches(&yes));
    let mut no = yes.clone();
    no.insert("canary".into(), "true".into());
    assert!(!sel.matches(&no));
    let no_team = labels(&[("app", "web"), ("tier", "edge")]);
    assert!(!sel.matches(&no_team));
}

#[test]
fn meta_label_selector_empty_selects_everything_and_null_selects_nothing() {
    assert!(LabelSelector::from_meta(&json!({}))
        .unwrap()
        .matches(&labels(&[])));
    assert!(!LabelSelector::from_meta(&json!(null))
        .unwrap()
        .matches(&labels(&[])));
}

#[test]
fn meta_label_selector_errors_name_the_field() {
    let rows = [
        (
            json!({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]}),
            "\"Equals\" is not a valid label selector operator",
        ),
        (
            json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
            "matchExpressions[0].values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
            "matchExpressions[0].values: Invalid value: []string{\"x\"}: values set must be empty for exists and does not exist",
        ),
        (
            json!({"matchLabels": {"a": "b c"}}),
            "matchLabels.values[0][a]: Invalid value: \"b c\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        ),
        (json!({"matchLabels": ["a"]}), "matchLabels: Invalid value: [\"a\"]: must be an object"),
    ];
    for (obj, want) in rows {
        let err = LabelSelector::from_meta(&obj).unwrap_err();
        assert_eq!(err.to_string(), want, "{obj}");
    }
}

#[test]
fn label_selector_matches_json_labels() {
    let sel = LabelSelector::parse("app=web").unwrap();
    let obj = json!({"app": "web", "n": 1});
    assert!(sel.matches_json(obj.as_object()));
    assert!(!sel.matches_json(None));
}

fn object_fields(field: &str) -> Option<String> {
    match field {
        "metadata.name" => Some("web".into()),
        "metadata.namespace" => Some("default".into()),
        "spec.nodeName" => Some("node-a".into()),
        _ => None,
    }
}

#[test]
fn field_selector_valid_syntax_matches_like_upstream() {
    let rows: &[(&str, bool)] = &[
        ("", true),
        ("metadata.name=web", true),
        ("metadata.name==web", true),
        ("metadata.name!=web", false),
        ("metadata.name=api", false),
        ("metadata.name=web,metadata.namespace=default", true),
        ("metadata.name=web,metadata.namespace!=default", false),
        ("spec.nodeName=node-a", true),
        // Absent fields compare as the empty string, as upstream fields.Set.Get.
        ("spec.missing=", true),
        ("spec.missing!=", false),
        ("metadata.name=we\\,b", false),
    ];
    for (sel, want) in rows {
        let parsed = FieldSelector::parse(sel).unwrap_or_else(|e| panic!("{sel:?}: {e}"));
        assert_eq!(parsed.matches(object_fields), *want, "selector {sel:?}");
    }
}

#[test]
fn field_selector_unescapes_values_and_lists_fields() {
    let s = FieldSelector::parse("spec.foo=a\\,b\\=c\\\\,metadata.name!=x").unwrap();
    assert_eq!(s.fields(), ["metadata.name", "spec.foo"]);
    assert_eq!(s.terms[1].value, "a,b=c\\");
}

#[test]
fn field_selector_invalid_syntax_gives_upstream_messages() {
    let rows = [
        (
            "metadata.name",
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'",
        ),
        ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
        (
            "metadata.name!==x",
            "invalid field selector: unescaped character in value: 61",
        ),
        (
            "metadata.name=a\\x",
            "invalid field selector: invalid escape sequence: \\x",
        ),
        (
            "metadata.name=a\\",
            "invalid field selector: invalid escape sequence: \\",
        ),
    ];
    for (sel, want) in rows {
        let err = FieldSelector::parse(sel).unwrap_err();
        assert!(matches!(err, SelectorError::Field(_)));
        assert_eq!(err.to_string(), want, "selector {sel:?}");
    }
}

#[test]
fn selectors_print_like_upstream_and_reparse() {
    let s = LabelSelector::parse("z in (b,a), a!=1, !m, e, g>3").unwrap();
    assert_eq!(s.to_string(), "a!=1,e,g>3,!m,z in (a,b)");
    assert_eq!(LabelSelector::parse(&s.to_string()).unwrap(), s);
    let f = FieldSelector::parse("spec.foo=a\\,b,metadata.name!=x").unwrap();
    assert_eq!(f.to_string(), "metadata.name!=x,spec.foo=a\\,b");
    assert_eq!(FieldSelector::parse(&f.to_string()).unwrap(), f);
}

#[test]
fn selector_from_set_requires_every_pair() {
    let sel = LabelSelector::from_set(&labels(&[("app", "web"), ("tier", "fe")]));
    assert!(sel.matches(&labels(&[("app", "web"), ("tier", "fe"), ("x", "y")])));
    assert!(!sel.matches(&labels(&[("app", "web")])));
    assert!(LabelSelector::from_set(&BTreeMap::new()).matches(&labels(&[])));
}
