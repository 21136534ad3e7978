//! A YAML document tree that remembers where every node came from.
//!
//! Built from `yaml-rust2`'s marked event stream: each node carries the
//! 1-based line and column of its first character, so a check can report
//! `file:line` for the exact key or value it flags. Aliases are resolved
//! by copying the anchored node (GitLab CI templates use `&anchor`/`*alias`
//! heavily), and the merge key `<<` is kept as an ordinary key that
//! [`Node::get`] looks through.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A YAML value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar (every scalar is kept as its text; `null` is `~`/empty plain).
    Scalar(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order.
    Map(Vec<(Node, Node)>),
}

/// A value with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// 1-based line of the node's first character.
    pub line: u64,
    /// 1-based column of the node's first character.
    pub column: u64,
    /// Whether a scalar was a literal/folded block (`|`, `>`): its lines
    /// are lines of the file, from [`Node::line`] on.
    pub block: bool,
}

impl Node {
    /// The scalar text, if this is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The entries, if this is a mapping.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The items, if this is a sequence.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The value of `key` in a mapping (looking through `<<` merges; own
    /// keys win).
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.get_entry(key).map(|(_, v)| v)
    }

    /// The (key, value) of `key` in a mapping, through `<<` merges.
    pub fn get_entry(&self, key: &str) -> Option<(&Node, &Node)> {
        let map = self.as_map()?;
        if let Some((k, v)) = map.iter().find(|(k, _)| k.as_str() == Some(key)) {
            return Some((k, v));
        }
        for (k, v) in map {
            if k.as_str() == Some("<<") {
                let found = match &v.value {
                    Value::Map(_) => v.get_entry(key),
                    Value::Seq(items) => items.iter().find_map(|i| i.get_entry(key)),
                    Value::Scalar(_) => None,
                };
                if found.is_some() {
                    return found;
                }
            }
        }
        None
    }

    /// The entries of a mapping with `<<` merges flattened (own keys win).
    pub fn entries(&self) -> Vec<(&Node, &Node)> {
        let Some(map) = self.as_map() else {
            return Vec::new();
        };
        let mut out: Vec<(&Node, &Node)> = map
            .iter()
            .filter(|(k, _)| k.as_str() != Some("<<"))
            .map(|(k, v)| (k, v))
            .collect();
        for (k, v) in map {
            if k.as_str() != Some("<<") {
                continue;
            }
            let merged: Vec<&Node> = match &v.value {
                Value::Seq(items) => items.iter().collect(),
                _ => vec![v],
            };
            for m in merged {
                for (mk, mv) in m.entries() {
                    if !out.iter().any(|(ok, _)| ok.as_str() == mk.as_str()) {
                        out.push((mk, mv));
                    }
                }
            }
        }
        out
    }

    /// Every scalar under this node (values and keys), depth first.
    pub fn scalars(&self) -> Vec<&Node> {
        let mut out = Vec::new();
        self.collect_scalars(&mut out);
        out
    }

    fn collect_scalars<'a>(&'a self, out: &mut Vec<&'a Node>) {
        match &self.value {
            Value::Scalar(_) => out.push(self),
            Value::Seq(items) => items.iter().for_each(|i| i.collect_scalars(out)),
            Value::Map(m) => {
                for (k, v) in m {
                    k.collect_scalars(out);
                    v.collect_scalars(out);
                }
            }
        }
    }

    /// 1-based line of the `i`-th (0-based) line of a scalar's text.
    pub fn text_line(&self, i: usize) -> u64 {
        // yaml-rust2 marks a block scalar at its first content line.
        self.line + i as u64
    }
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
    /// What is wrong.
    pub message: String,
}

/// Most nodes a file may expand to, aliases counted at their full size: a few hundred
/// bytes of nested aliases (a "billion laughs") would otherwise expand without bound.
/// Real CI files, anchors and all, stay far below it.
pub const MAX_NODES: u64 = 1_000_000;

/// Deepest nesting of sequences and mappings (the tree is walked recursively).
pub const MAX_DEPTH: usize = 200;

enum Frame {
    /// Items, start mark, anchor id, node count when the frame opened.
    Seq(Vec<Node>, Marker, usize, u64),
    /// Entries, pending key, start mark, anchor id, node count when the frame opened.
    Map(Vec<(Node, Node)>, Option<Node>, Marker, usize, u64),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    docs: Vec<Node>,
    /// Anchored nodes with their size in nodes.
    anchors: std::collections::HashMap<usize, (Node, u64)>,
    /// Nodes built so far, aliases counted at their full size.
    nodes: u64,
    /// Why building stopped (a limit was reached), with where.
    limit: Option<YamlError>,
}

fn node(value: Value, mark: Marker, block: bool) -> Node {
    Node {
        value,
        line: mark.line() as u64,
        column: mark.col() as u64 + 1,
        block,
    }
}

impl Builder {
    /// Adds `n`, whose subtree holds `size` nodes.
    fn push(&mut self, n: Node, anchor: usize, size: u64) {
        if anchor != 0 {
            self.anchors.insert(anchor, (n.clone(), size));
        }
        match self.stack.last_mut() {
            None => self.docs.push(n),
            Some(Frame::Seq(items, ..)) => items.push(n),
            Some(Frame::Map(entries, key, ..)) => match key.take() {
                None => *key = Some(n),
                Some(k) => entries.push((k, n)),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.limit.is_some() {
            return;
        }
        let size = match &ev {
            Event::Alias(id) => self.anchors.get(id).map_or(1, |(_, n)| *n),
            Event::Scalar(..) | Event::SequenceStart(..) | Event::MappingStart(..) => 1,
            _ => 0,
        };
        self.nodes += size;
        let too_deep = matches!(ev, Event::SequenceStart(..) | Event::MappingStart(..))
            && self.stack.len() >= MAX_DEPTH;
        if self.nodes > MAX_NODES || too_deep {
            let message = if too_deep {
                format!("nesting deeper than {MAX_DEPTH} levels")
            } else {
                format!("expands to more than {MAX_NODES} nodes (aliases of aliases?)")
            };
            self.limit = Some(YamlError {
                line: mark.line() as u64,
                column: mark.col() as u64 + 1,
                message,
            });
            // Nothing built so far is used: free it now.
            self.stack.clear();
            self.anchors.clear();
            self.docs.clear();
            return;
        }
        match ev {
            Event::Scalar(s, style, anchor, _) => {
                let block = matches!(style, TScalarStyle::Literal | TScalarStyle::Folded);
                self.push(node(Value::Scalar(s), mark, block), anchor, 1);
            }
            Event::Alias(id) => {
                let n = self
                    .anchors
                    .get(&id)
                    .map(|(n, _)| n.clone())
                    .unwrap_or_else(|| node(Value::Scalar(String::new()), mark, false));
                // The alias is used where it is written.
                let n = Node {
                    line: mark.line() as u64,
                    column: mark.col() as u64 + 1,
                    ..n
                };
                self.push(n, 0, size);
            }
            Event::SequenceStart(anchor, _) => {
                self.stack
                    .push(Frame::Seq(Vec::new(), mark, anchor, self.nodes))
            }
            Event::MappingStart(anchor, _) => {
                self.stack
                    .push(Frame::Map(Vec::new(), None, mark, anchor, self.nodes))
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq(items, m, anchor, start)) = self.stack.pop() {
                    let size = self.nodes - start + 1;
                    self.push(node(Value::Seq(items), m, false), anchor, size);
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map(entries, _, m, anchor, start)) = self.stack.pop() {
                    let size = self.nodes - start + 1;
                    self.push(node(Value::Map(entries), m, false), anchor, size);
                }
            }
            _ => {}
        }
    }
}

/// Parse every document in `text`.
pub fn parse(text: &str) -> Result<Vec<Node>, YamlError> {
    let mut b = Builder::default();
    let mut p = Parser::new_from_str(text);
    match p.load(&mut b, true) {
        Ok(()) => match b.limit {
            Some(e) => Err(e),
            None => Ok(b.docs),
        },
        Err(e) => Err(YamlError {
            line: e.marker().line() as u64,
            column: e.marker().col() as u64 + 1,
            message: e.info().to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_keys_values_and_block_lines() {
        let docs = parse("on: push\njobs:\n  build:\n    steps:\n      - run: |\n          echo one\n          echo two\n").unwrap();
        let root = &docs[0];
        let (k, _) = root.get_entry("jobs").unwrap();
        assert_eq!((k.line, k.column), (2, 1));
        let run = root
            .get("jobs")
            .unwrap()
            .get("build")
            .unwrap()
            .get("steps")
            .unwrap()
            .as_seq()
            .unwrap()[0]
            .get("run")
            .unwrap();
        assert!(run.block);
        assert_eq!(run.as_str().unwrap(), "echo one\necho two\n");
        assert_eq!(run.text_line(0), 6);
        assert_eq!(run.text_line(1), 7);
    }

    #[test]
    fn aliases_and_merge_keys() {
        let docs = parse(
            ".base: &base\n  image: alpine\n  script: [make]\njob:\n  <<: *base\n  stage: test\n",
        )
        .unwrap();
        let job = docs[0].get("job").unwrap();
        assert_eq!(job.get("image").unwrap().as_str(), Some("alpine"));
        assert_eq!(job.get("stage").unwrap().as_str(), Some("test"));
        assert_eq!(job.entries().len(), 3);
    }

    #[test]
    fn alias_bombs_and_deep_nesting_are_errors_with_a_position() {
        // Nine levels of nine aliases each: 9^9 nodes if expanded.
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
        for (prev, cur) in ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
            .windows(2)
            .map(|w| (w[0], w[1]))
        {
            let items = vec![format!("*{prev}"); 9].join(", ");
            bomb.push_str(&format!("{cur}: &{cur} [{items}]\n"));
        }
        bomb.push_str("jobs: *i\n");
        assert!(bomb.len() < 600);
        let e = parse(&bomb).unwrap_err();
        assert!(e.message.contains("nodes"), "{e:?}");
        assert!(e.line >= 6, "{e:?}");
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let e = parse(&deep).unwrap_err();
        assert!(
            e.message.contains("nesting") || e.message.contains("recursion"),
            "{e:?}"
        );
        assert_eq!(e.line, 1);
        // Anchors used as CI templates are, of course, fine.
        let mut ok = String::from(".t: &t {image: alpine, script: [make, make test]}\n");
        for i in 0..2000 {
            ok.push_str(&format!("job{i}: {{<<: *t, stage: test}}\n"));
        }
        assert_eq!(parse(&ok).unwrap()[0].entries().len(), 2001);
    }

    #[test]
    fn syntax_error_has_position() {
        let e = parse("a: b\njobs:\n  x: [1, 2\n").unwrap_err();
        assert!(e.line >= 3, "{e:?}");
    }
}
