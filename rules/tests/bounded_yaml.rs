//! The YAML flow-nesting pre-scan against libyaml itself: on random input (mostly not valid
//! YAML, built from the pieces that change how libyaml tokenizes), the scan never reports
//! fewer nested flow collections than libyaml's parser opens before it stops. That is what
//! makes the pre-scan a bound on libyaml's work. And on documents serde_yaml writes (block
//! style, strings full of brackets and quotes), it finds no nesting that is not there.

use std::mem::MaybeUninit;

use proptest::prelude::*;
use serde_json::Value;
use svcplane_rules::bounded_yaml::{max_flow_depth, MAX_FLOW_DEPTH};

/// The deepest nesting of flow collections opened by `[`/`{` among the events libyaml's parser
/// produces for `text` before the end or its first error.
fn libyaml_flow_depth(text: &[u8]) -> usize {
    // SAFETY: the parser and event are initialised by libyaml before use, the input outlives
    // the parser, and every event and the parser are deleted.
    unsafe {
        let mut parser = MaybeUninit::<unsafe_libyaml::yaml_parser_t>::uninit();
        assert!(unsafe_libyaml::yaml_parser_initialize(parser.as_mut_ptr()).ok);
        let parser = parser.as_mut_ptr();
        unsafe_libyaml::yaml_parser_set_input_string(parser, text.as_ptr(), text.len() as u64);
        let (mut depth, mut deepest) = (0usize, 0usize);
        // Block collections inside flow ones are impossible; track which open ones are flow.
        let mut open: Vec<bool> = Vec::new();
        loop {
            let mut event = MaybeUninit::<unsafe_libyaml::yaml_event_t>::uninit();
            if !unsafe_libyaml::yaml_parser_parse(parser, event.as_mut_ptr()).ok {
                break;
            }
            let event = event.as_mut_ptr();
            let kind = (*event).type_;
            let mut done = false;
            match kind {
                unsafe_libyaml::YAML_SEQUENCE_START_EVENT => {
                    let flow = (*event).data.sequence_start.style
                        == unsafe_libyaml::YAML_FLOW_SEQUENCE_STYLE;
                    open.push(flow);
                }
                unsafe_libyaml::YAML_MAPPING_START_EVENT => {
                    // Only mappings opened by a `{` token count: the single-pair mapping
                    // libyaml's parser makes of `key: value` (or `? key`) inside a flow
                    // sequence adds no level to its scanner (the work the pre-scan bounds),
                    // and serde_yaml's own recursion limit counts it. Such a mapping starts
                    // at its key (an empty mark) or at the `?`, never with a 1-byte `{`.
                    let (start, end) = (
                        (*event).start_mark.index as usize,
                        (*event).end_mark.index as usize,
                    );
                    let brace = text.get(start) == Some(&b'{') && end == start + 1;
                    let flow = (*event).data.mapping_start.style
                        == unsafe_libyaml::YAML_FLOW_MAPPING_STYLE
                        && brace;
                    open.push(flow);
                }
                unsafe_libyaml::YAML_SEQUENCE_END_EVENT
                | unsafe_libyaml::YAML_MAPPING_END_EVENT => {
                    open.pop();
                }
                unsafe_libyaml::YAML_STREAM_END_EVENT => done = true,
                _ => {}
            }
            depth = open.iter().filter(|f| **f).count();
            deepest = deepest.max(depth);
            unsafe_libyaml::yaml_event_delete(event);
            if done {
                break;
            }
        }
        let _ = depth;
        unsafe_libyaml::yaml_parser_delete(parser);
        deepest
    }
}

/// Pieces that steer libyaml's tokenizer: indicators, quotes, comments, block scalar headers,
/// document markers, line breaks and indentation, anchors and tags, plain words.
const PIECES: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    ",",
    ": ",
    ":",
    "- ",
    "-",
    "? ",
    "?",
    "\"",
    "'",
    "\\",
    "#",
    " #",
    "|",
    "|2",
    ">-",
    "|+",
    "\n",
    "\n ",
    "\n  ",
    "\n    ",
    "\r\n",
    "  ",
    " ",
    "\t",
    "a",
    "b c",
    "key",
    "1",
    "---\n",
    "--- ",
    "...\n",
    "&x ",
    "*x",
    "!t ",
    "!<[> ",
    "''",
    "%YAML 1.2\n",
    "\u{e9}",
    "[[",
    "]]",
    "{a: ",
    "\"[\"",
    "'['",
    "x]",
    "|\n  [\n",
    ": [",
    "- [",
    "\"\\\"\"",
    "key: |\n",
    "key: >\n  ",
    "  - ",
    "a:\n  - ",
    "@",
    "`",
    "%",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..40).prop_map(|p| p.concat())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[\\[\\]{}\"'#:|>, a-z\\-\n]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-z\\[\\]{}:#'\" ]{1,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn max_flow_depth_never_undercounts_libyaml(text in soup()) {
        let ours = max_flow_depth(text.as_bytes(), usize::MAX).expect("no limit");
        let libyaml = libyaml_flow_depth(text.as_bytes());
        prop_assert!(ours >= libyaml, "scan {ours} < libyaml {libyaml} for {text:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn documents_serde_yaml_writes_have_no_phantom_nesting(value in json_value()) {
        let text = serde_yaml::to_string(&value).expect("serializes");
        // serde_yaml writes block style; only empty collections come out as `[]` or `{}`.
        let ours = max_flow_depth(text.as_bytes(), MAX_FLOW_DEPTH).expect("within the limit");
        prop_assert!(ours <= 1, "found {ours} levels in {text:?}");
        prop_assert_eq!(ours, libyaml_flow_depth(text.as_bytes()));
        let decoded = svcplane_rules::bounded_yaml::from_slice(text.as_bytes()).expect("decodes");
        let expected: Value = serde_yaml::from_str(&text).expect("serde_yaml decodes");
        prop_assert_eq!(decoded, expected);
    }
}
