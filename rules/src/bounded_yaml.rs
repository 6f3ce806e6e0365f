//! Decoding YAML with bounded work, for every YAML a client or a file hands svcplane (API
//! request bodies, `apply-patch+yaml`, `DeleteOptions`, manifests, `svcplane validate`).
//!
//! Two things make serde_yaml (libyaml underneath) do unbounded work on a small input:
//! - **flow nesting**: libyaml's scanner walks its whole stack of possible simple keys, one
//!   entry per open `[`/`{`, for every token, so `[[[[…]]]]` costs depth × tokens before
//!   serde_yaml's own 128-level recursion limit is ever consulted (40,000 levels took 2.5 s of
//!   CPU, 100,000 levels 39 s);
//! - **aliases**: `*a` replays the whole anchored node, so a few kilobytes can expand into
//!   gigabytes.
//!
//! So the text is first scanned for flow nesting ([`max_flow_depth`], a linear pass that
//! stops at the limit), and documents are then built into `serde_json::Value`s by a visitor
//! that charges every node and scalar byte against a budget proportional to the input
//! ([`output_budget`]). Past either bound the input is refused with a message saying which.

use std::cell::Cell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Deepest flow-collection nesting (`[`/`{`) accepted: serde_yaml refuses more than 128
/// levels of any nesting anyway, so nothing it would accept is refused here.
pub const MAX_FLOW_DEPTH: usize = 128;

/// Why YAML was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YamlError {
    /// Flow collections nest deeper than [`MAX_FLOW_DEPTH`].
    #[error("line {line}: flow collections ([ and {{) nest deeper than {MAX_FLOW_DEPTH} levels")]
    TooDeep {
        /// 1-based line where the limit was passed.
        line: usize,
    },
    /// Aliases expand the document beyond [`output_budget`].
    #[error("the document expands to more than {0} bytes (aliases repeat too much)")]
    TooLarge(usize),
    /// Not valid YAML (serde_yaml's message).
    #[error("{0}")]
    Syntax(String),
}

/// The most a document decoded from `input_len` bytes may weigh (one unit per node plus its
/// scalar's bytes): twice the input plus 64 KiB. Without aliases a document never weighs more
/// than its text; aliases may repeat what they name about as much again.
pub fn output_budget(input_len: usize) -> usize {
    input_len.saturating_mul(2).saturating_add(64 * 1024)
}

/// Decodes one YAML document (the only one of `text`) into JSON, within the bounds above.
pub fn from_slice(text: &[u8]) -> Result<Value, YamlError> {
    check_flow_depth(text)?;
    let budget = Cell::new(output_budget(text.len()));
    let de = serde_yaml::Deserializer::from_slice(text);
    Bounded { budget: &budget }
        .deserialize(de)
        .map_err(|e| classify(e, &budget, text.len()))
}

/// Decodes every document of a YAML stream into JSON, within the bounds above (the budget
/// is shared by all documents). Errors name the 1-based document.
pub fn documents(text: &str) -> Result<Vec<Value>, (usize, YamlError)> {
    check_flow_depth(text.as_bytes()).map_err(|e| (1, e))?;
    let budget = Cell::new(output_budget(text.len()));
    let mut out = Vec::new();
    for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = Bounded { budget: &budget }
            .deserialize(de)
            .map_err(|e| (i + 1, classify(e, &budget, text.len())))?;
        out.push(value);
    }
    Ok(out)
}

fn check_flow_depth(text: &[u8]) -> Result<(), YamlError> {
    match max_flow_depth(text, MAX_FLOW_DEPTH) {
        Ok(_) => Ok(()),
        Err(line) => Err(YamlError::TooDeep { line }),
    }
}

fn classify(e: serde_yaml::Error, budget: &Cell<usize>, input_len: usize) -> YamlError {
    if budget.get() == 0 {
        YamlError::TooLarge(output_budget(input_len))
    } else {
        YamlError::Syntax(e.to_string())
    }
}

/// Builds a `serde_json::Value` like its own `Deserialize` does (same numbers, same string
/// keys, tagged values refused the same way), charging the budget as it goes.
#[derive(Clone, Copy)]
struct Bounded<'b> {
    budget: &'b Cell<usize>,
}

impl Bounded<'_> {
    fn charge<E: serde::de::Error>(&self, units: usize) -> Result<(), E> {
        let left = self.budget.get();
        if units >= left {
            self.budget.set(0);
            return Err(E::custom("document expands beyond its budget"));
        }
        self.budget.set(left - units);
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Bounded<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Bounded<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        self.charge(1)?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        self.charge(1)?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        self.charge(1)?;
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        self.charge(1)?;
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.charge(1 + v.len())?;
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        self.charge(1 + v.len())?;
        Ok(Value::String(v))
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.charge(1)?;
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.charge(1)?;
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.charge(1)?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.charge(1)?;
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(Key(self))? {
            let value = map.next_value_seed(self)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// A mapping key, read as a string as `serde_json::Value` reads keys (`1: a` has key `"1"`).
struct Key<'b>(Bounded<'b>);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
        self.0.charge(1 + v.len())?;
        Ok(v.to_string())
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<String, E> {
        self.0.charge(1 + v.len())?;
        Ok(v)
    }
}

/// The deepest flow-collection nesting of a YAML stream, stopping with `Err(line)` (1-based)
/// as soon as it exceeds `limit`.
///
/// It follows libyaml's scanner (token boundaries, block indentation, plain, quoted and block
/// scalars, comments) so that it never counts *fewer* levels than libyaml opens before it stops:
/// a bracket inside a scalar or comment opens nothing, a bracket at a token boundary opens a
/// collection, and where libyaml would report an error (and stop) the scan stops too. Where it
/// cannot tell, it counts an opening. `max_flow_depth_never_undercounts_libyaml` in the tests
/// checks this against libyaml itself on random input.
pub fn max_flow_depth(text: &[u8], limit: usize) -> Result<usize, usize> {
    let mut scanner = Scanner {
        text,
        pos: 0,
        line: 1,
        line_start: 0,
        depth: 0,
        max: 0,
        limit,
        indent: -1,
        indents: Vec::new(),
        key_col: None,
    };
    match scanner.scan() {
        Err(Halt::TooDeep) => Err(scanner.line),
        Ok(()) | Err(Halt::Stop) => Ok(scanner.max),
    }
}

/// Why a scan ended early.
enum Halt {
    /// Nesting passed the limit.
    TooDeep,
    /// libyaml would stop here (an error), so nothing after matters.
    Stop,
}

struct Scanner<'a> {
    text: &'a [u8],
    pos: usize,
    line: usize,
    line_start: usize,
    /// Open flow collections.
    depth: usize,
    max: usize,
    limit: usize,
    /// libyaml's block indentation (column of the innermost block collection, -1 at the top)
    /// and the enclosing ones.
    indent: isize,
    indents: Vec<isize>,
    /// Column of the first node token since the line start or the last block indicator: where
    /// a block mapping starts when a `:` follows (libyaml's simple key).
    key_col: Option<isize>,
}

impl Scanner<'_> {
    fn at(&self, i: usize) -> u8 {
        self.text.get(i).copied().unwrap_or(0)
    }

    fn peek(&self) -> u8 {
        self.at(self.pos)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn col(&self) -> isize {
        (self.pos - self.line_start) as isize
    }

    /// Blank, line break or end at `i` (libyaml's `IS_BLANKZ`).
    fn blankz(&self, i: usize) -> bool {
        i >= self.text.len() || matches!(self.at(i), b' ' | b'\t' | b'\r' | b'\n' | 0)
    }

    fn is_break(&self) -> bool {
        matches!(self.peek(), b'\n' | b'\r')
    }

    /// Consumes one line break.
    fn newline(&mut self) {
        if self.peek() == b'\r' && self.at(self.pos + 1) == b'\n' {
            self.pos += 1;
        }
        self.pos += 1;
        self.line += 1;
        self.line_start = self.pos;
    }

    fn skip_to_line_end(&mut self) {
        while !self.at_end() && !self.is_break() {
            self.pos += 1;
        }
    }

    /// `---` or `...` at column 0 followed by a blank.
    fn document_marker(&self) -> bool {
        self.col() == 0
            && (self.text[self.pos..].starts_with(b"---")
                || self.text[self.pos..].starts_with(b"..."))
            && self.blankz(self.pos + 3)
    }

    fn open(&mut self) -> Result<(), Halt> {
        self.pos += 1;
        self.depth += 1;
        self.max = self.max.max(self.depth);
        if self.depth > self.limit {
            return Err(Halt::TooDeep);
        }
        Ok(())
    }

    fn note_key(&mut self, col: isize) {
        self.key_col.get_or_insert(col);
    }

    fn roll(&mut self, col: isize) {
        if self.indent < col {
            self.indents.push(self.indent);
            self.indent = col;
        }
    }

    fn unroll(&mut self, col: isize) {
        while self.indent > col {
            self.indent = self.indents.pop().unwrap_or(-1);
        }
    }

    fn scan(&mut self) -> Result<(), Halt> {
        while !self.at_end() {
            if self.depth > 0 {
                self.flow_token()?;
            } else {
                self.block_token()?;
            }
        }
        Ok(())
    }

    fn block_token(&mut self) -> Result<(), Halt> {
        let c = self.peek();
        match c {
            b' ' | b'\t' => {
                self.pos += 1;
                return Ok(());
            }
            b'\n' | b'\r' => {
                self.newline();
                self.key_col = None;
                return Ok(());
            }
            b'#' => {
                self.skip_to_line_end();
                return Ok(());
            }
            _ => {}
        }
        let col = self.col();
        if col == 0 && self.document_marker() {
            self.indent = -1;
            self.indents.clear();
            self.key_col = None;
            self.pos += 3;
            if c == b'.' {
                self.skip_to_line_end();
            }
            return Ok(());
        }
        if col == 0 && c == b'%' {
            self.skip_to_line_end();
            return Ok(());
        }
        self.unroll(col);
        match c {
            b'[' | b'{' => {
                self.note_key(col);
                self.open()?;
            }
            // A flow indicator outside a flow collection: libyaml's parser refuses it.
            b']' | b'}' | b',' | b'%' | b'@' | b'`' => return Err(Halt::Stop),
            b'-' | b'?' if self.blankz(self.pos + 1) => {
                self.roll(col);
                self.key_col = None;
                self.pos += 1;
            }
            b':' if self.blankz(self.pos + 1) => {
                let key = self.key_col.unwrap_or(col);
                self.roll(key);
                self.key_col = None;
                self.pos += 1;
            }
            b'*' | b'&' | b'!' => {
                self.note_key(col);
                self.verbatim_tag()?;
                self.pos += 1;
                while !self.blankz(self.pos) {
                    self.pos += 1;
                }
            }
            b'|' | b'>' => self.block_scalar()?,
            b'\'' | b'"' => {
                self.note_key(col);
                self.quoted()?;
            }
            _ => {
                self.note_key(col);
                self.block_plain();
            }
        }
        Ok(())
    }

    fn flow_token(&mut self) -> Result<(), Halt> {
        match self.peek() {
            b' ' | b'\t' => self.pos += 1,
            b'\n' | b'\r' => {
                self.newline();
                if self.document_marker() {
                    return Err(Halt::Stop);
                }
            }
            b'#' => self.skip_to_line_end(),
            b'[' | b'{' => self.open()?,
            b']' | b'}' => {
                self.pos += 1;
                self.depth -= 1;
            }
            b',' | b'?' | b':' => self.pos += 1,
            b'-' if self.blankz(self.pos + 1) => self.pos += 1,
            b'*' | b'&' | b'!' => {
                self.verbatim_tag()?;
                self.pos += 1;
                while !self.blankz(self.pos)
                    && !matches!(self.peek(), b',' | b'[' | b']' | b'{' | b'}')
                {
                    self.pos += 1;
                }
            }
            b'\'' | b'"' => self.quoted()?,
            b'|' | b'>' | b'%' | b'@' | b'`' => return Err(Halt::Stop),
            _ => self.flow_plain()?,
        }
        Ok(())
    }

    /// A verbatim tag (`!<…>`) at the position: skipped up to its `>`, whatever it holds
    /// (libyaml takes `[`, `]` and `,` into it); the position is left on the `>`. Without a
    /// `>` before a blank libyaml reports an error, so the scan stops.
    fn verbatim_tag(&mut self) -> Result<(), Halt> {
        if self.peek() != b'!' || self.at(self.pos + 1) != b'<' {
            return Ok(());
        }
        self.pos += 2;
        while self.peek() != b'>' {
            if self.blankz(self.pos) {
                return Err(Halt::Stop);
            }
            self.pos += 1;
        }
        Ok(())
    }

    /// A quoted scalar from its opening quote; it may span lines.
    fn quoted(&mut self) -> Result<(), Halt> {
        let quote = self.peek();
        self.pos += 1;
        loop {
            if self.at_end() {
                return Err(Halt::Stop);
            }
            match self.peek() {
                b'\\' if quote == b'"' => {
                    self.pos += 1;
                    if self.is_break() {
                        self.newline();
                    } else if !self.at_end() {
                        self.pos += 1;
                    }
                }
                b'\'' if quote == b'\'' && self.at(self.pos + 1) == b'\'' => self.pos += 2,
                c if c == quote => {
                    self.pos += 1;
                    return Ok(());
                }
                b'\n' | b'\r' => {
                    self.newline();
                    if self.document_marker() {
                        return Err(Halt::Stop);
                    }
                }
                _ => self.pos += 1,
            }
        }
    }

    /// A plain scalar in block context: words up to `: ` or a comment, continued on following
    /// lines indented deeper than the block (libyaml `yaml_parser_scan_plain_scalar`).
    fn block_plain(&mut self) {
        let min_col = self.indent + 1;
        loop {
            while !self.blankz(self.pos) {
                if self.peek() == b':' && self.blankz(self.pos + 1) {
                    return;
                }
                self.pos += 1;
            }
            let mut broke = false;
            while !self.at_end() {
                match self.peek() {
                    b' ' | b'\t' => self.pos += 1,
                    b'\n' | b'\r' => {
                        self.newline();
                        broke = true;
                    }
                    _ => break,
                }
            }
            if self.at_end() || self.peek() == b'#' {
                return;
            }
            if broke {
                self.key_col = None;
                if self.col() < min_col || self.document_marker() {
                    return;
                }
            }
        }
    }

    /// A plain scalar in flow context: up to a flow indicator, `: ` or a comment, across lines.
    fn flow_plain(&mut self) -> Result<(), Halt> {
        loop {
            while !self.blankz(self.pos) {
                match self.peek() {
                    b',' | b'[' | b']' | b'{' | b'}' => return Ok(()),
                    b':' if self.blankz(self.pos + 1)
                        || matches!(
                            self.at(self.pos + 1),
                            b',' | b'?' | b'[' | b']' | b'{' | b'}'
                        ) =>
                    {
                        return Ok(())
                    }
                    _ => self.pos += 1,
                }
            }
            while !self.at_end() {
                match self.peek() {
                    b' ' | b'\t' => self.pos += 1,
                    b'\n' | b'\r' => {
                        self.newline();
                        if self.document_marker() {
                            return Err(Halt::Stop);
                        }
                    }
                    _ => break,
                }
            }
            if self.at_end() || self.peek() == b'#' {
                return Ok(());
            }
        }
    }

    /// A block scalar from its `|` or `>`: the header line, then the content lines, which are
    /// blank or indented at least as deep as the scalar's indentation (explicit, or the first
    /// content line's, but deeper than the enclosing block and at least 1).
    fn block_scalar(&mut self) -> Result<(), Halt> {
        let parent = self.indent;
        self.pos += 1;
        let mut increment: isize = 0;
        loop {
            match self.peek() {
                b'+' | b'-' => self.pos += 1,
                c @ b'1'..=b'9' if increment == 0 => {
                    increment = isize::from(c - b'0');
                    self.pos += 1;
                }
                _ => break,
            }
        }
        while matches!(self.peek(), b' ' | b'\t') {
            self.pos += 1;
        }
        if self.peek() == b'#' {
            self.skip_to_line_end();
        }
        if self.at_end() {
            return Ok(());
        }
        if !self.is_break() {
            return Err(Halt::Stop);
        }
        self.newline();
        let mut indent = if increment > 0 {
            if parent >= 0 {
                parent + increment
            } else {
                increment
            }
        } else {
            0
        };
        if indent == 0 {
            // Auto-detected: the deepest leading blank line or the first content line.
            let mut deepest_blank = 0;
            let mut i = self.pos;
            loop {
                let start = i;
                while self.at(i) == b' ' {
                    i += 1;
                }
                let spaces = (i - start) as isize;
                if i >= self.text.len() {
                    return Ok(());
                }
                if matches!(self.at(i), b'\n' | b'\r') {
                    deepest_blank = deepest_blank.max(spaces);
                    i += if self.at(i) == b'\r' && self.at(i + 1) == b'\n' {
                        2
                    } else {
                        1
                    };
                    continue;
                }
                indent = spaces.max(deepest_blank).max(parent + 1).max(1);
                break;
            }
        }
        loop {
            let mut i = self.pos;
            while self.at(i) == b' ' {
                i += 1;
            }
            if i >= self.text.len() {
                self.pos = i;
                return Ok(());
            }
            let blank = matches!(self.at(i), b'\n' | b'\r');
            if !blank && ((i - self.pos) as isize) < indent {
                // A less indented line ends the scalar; scanning resumes at its start.
                return Ok(());
            }
            self.pos = i;
            self.skip_to_line_end();
            if self.at_end() {
                return Ok(());
            }
            self.newline();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(text: &str) -> usize {
        max_flow_depth(text.as_bytes(), 1000).expect("within the limit")
    }

    #[test]
    fn flow_collections_count_and_scalars_do_not() {
        assert_eq!(depth("a: [1, [2, {b: [3]}]]\n"), 4);
        assert_eq!(
            depth("a: b[c\nd: \"[[[\"\ne: '[[['\n# [[[\nf: x # [[[\n"),
            0
        );
        assert_eq!(depth("a: |\n  [[[\n  {{{\nb: [1]\n"), 1);
        assert_eq!(depth("a: >-\n    [[[\n\n    [[[\nb: {}\n"), 1);
        assert_eq!(depth("- a: |\n    [[[\n  b: [[1]]\n"), 2);
        assert_eq!(depth("[\"]]]\", ']]]', [x]]\n"), 2);
        assert_eq!(depth("{\"a\":\"[[\", b: [c]}\n"), 2);
        assert_eq!(depth("a: word\n  \"[[[\n"), 0);
        assert_eq!(depth("--- |\n [[[\n---\n[[x]]\n"), 2);
    }

    #[test]
    fn nesting_past_the_limit_is_refused_with_its_line() {
        let text = format!("a: b\nc: {}{}\n", "[".repeat(200), "]".repeat(200));
        assert_eq!(max_flow_depth(text.as_bytes(), MAX_FLOW_DEPTH), Err(2));
        let err = from_slice(text.as_bytes()).expect_err("refused");
        assert_eq!(err, YamlError::TooDeep { line: 2 });
    }

    #[test]
    fn deep_nesting_is_refused_in_linear_time() {
        let text = format!("x: {}{}", "[".repeat(1_000_000), "]".repeat(1_000_000));
        let started = std::time::Instant::now();
        assert!(from_slice(text.as_bytes()).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn alias_expansion_is_bounded() {
        let text = format!(
            "a: &a [{}]\nb: [{}]\n",
            "1,".repeat(5_000),
            "*a,".repeat(5_000)
        );
        let started = std::time::Instant::now();
        let err = from_slice(text.as_bytes()).expect_err("refused");
        assert!(matches!(err, YamlError::TooLarge(_)), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        // A few aliases of small anchors are fine.
        let v = from_slice(b"a: &a {x: 1}\nb: *a\nc: *a\n").expect("decodes");
        assert_eq!(v["c"]["x"], 1);
    }

    #[test]
    fn decoding_matches_serde_yaml_for_ordinary_documents() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: {a: b}\ndata:\n  1: one\n  t: true\n  n: ~\n  f: 1.5\n  list: [1, -2, \"3\"]\n";
        let ours = from_slice(text.as_bytes()).expect("ours");
        let theirs: Value = serde_yaml::from_str(text).expect("serde_yaml");
        assert_eq!(ours, theirs);
        let docs = documents("a: 1\n---\nb: 2\n").expect("two documents");
        assert_eq!(docs.len(), 2);
        assert!(
            from_slice(b"a: 1\n---\nb: 2\n").is_err(),
            "one document expected"
        );
        assert!(
            from_slice(b"!tag x").is_err(),
            "tagged values are refused as by serde_json"
        );
    }
}
