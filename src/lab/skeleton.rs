//! Objects generated from a skeleton with holes. The lab's 150,000 worker pods differ
//! from the other pods of their owner only in a dozen strings (name, uid, node, IPs,
//! timestamps) and one number (restarts). Building each as a `serde_json::Value` tree and
//! serialising it costs most of a big lab's start, so the world builds one skeleton per
//! owner (an ordinary object whose varying fields hold markers) and emits each pod as
//! the skeleton plus its fills. The lab's store compiles a skeleton once into JSON
//! pieces and writes each pod by concatenation; anything that wants a tree gets one
//! with [`Skeleton::fill_value`].

use std::sync::Arc;

use serde_json::Value;

/// Marks a string hole: the field's value is the fill, as a JSON string.
const STRING_HOLE: char = '\u{1}';
/// Marks a raw hole: the fill is written as is (a JSON number).
const RAW_HOLE: char = '\u{2}';

/// An object with holes: each marked field takes the fill of its index.
#[derive(Debug, Clone, PartialEq)]
pub struct Skeleton {
    value: Value,
    holes: usize,
}

/// What the world generator emits.
#[derive(Debug, Clone)]
pub enum Generated {
    Object(Value),
    Filled {
        skeleton: Arc<Skeleton>,
        /// One per hole; raw holes hold JSON numbers.
        fills: Vec<String>,
    },
}

impl Generated {
    /// The object as a tree.
    pub fn into_value(self) -> Value {
        match self {
            Generated::Object(v) => v,
            Generated::Filled { skeleton, fills } => skeleton.fill_value(&fills),
        }
    }
}

/// One piece of a compiled skeleton.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    /// A JSON string holding fill `i`.
    Quoted(usize),
    /// Fill `i` as is.
    Raw(usize),
}

impl Skeleton {
    /// A skeleton of `value`, whose holes are the strings made by [`Skeleton::hole`]
    /// and [`Skeleton::raw_hole`] with indices below `holes`.
    pub fn new(value: Value, holes: usize) -> Skeleton {
        Skeleton { value, holes }
    }

    /// The marker of string hole `i`.
    pub fn hole(i: usize) -> String {
        format!("{STRING_HOLE}{i}{STRING_HOLE}")
    }

    /// The marker of raw (number) hole `i`.
    pub fn raw_hole(i: usize) -> Value {
        Value::String(format!("{RAW_HOLE}{i}{RAW_HOLE}"))
    }

    pub fn holes(&self) -> usize {
        self.holes
    }

    /// The skeleton's tree, markers and all (to compile it, or to read fields that
    /// are not holes).
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The object with every hole filled. A raw fill that is not a JSON number stays
    /// a string.
    pub fn fill_value(&self, fills: &[String]) -> Value {
        let mut v = self.value.clone();
        fill_tree(&mut v, fills);
        v
    }

    /// The string `s` with its holes filled (for index values that contain holes).
    pub fn fill_str(s: &str, fills: &[String]) -> String {
        match parse_marker(s) {
            Some((_, i)) => fills.get(i).cloned().unwrap_or_default(),
            None => s.to_string(),
        }
    }

    /// The compact JSON of `value` (the skeleton's tree, possibly changed by the caller,
    /// e.g. with a resourceVersion hole added) cut at its holes.
    pub fn compile(value: &Value) -> Vec<Piece> {
        let text = value.to_string();
        let mut pieces = Vec::new();
        let mut rest = text.as_str();
        loop {
            let Some(at) = next_marker(rest) else {
                pieces.push(Piece::Text(rest.to_string()));
                return pieces;
            };
            let (before, kind, index, after) = at;
            pieces.push(Piece::Text(before.to_string()));
            pieces.push(if kind == STRING_HOLE {
                Piece::Quoted(index)
            } else {
                Piece::Raw(index)
            });
            rest = after;
        }
    }
}

/// `"\u0001<i>\u0001"` or `"\u0002<i>\u0002"` in serialised JSON: the text before it,
/// the kind, the index and the text after it.
fn next_marker(text: &str) -> Option<(&str, char, usize, &str)> {
    let mut from = 0;
    while let Some(pos) = text[from..].find("\"\\u000") {
        let start = from + pos;
        let tail = &text[start + 1..];
        for kind in [STRING_HOLE, RAW_HOLE] {
            let esc = format!("\\u{:04x}", kind as u32);
            if let Some(inner) = tail.strip_prefix(esc.as_str())
                && let Some(end) = inner.find(esc.as_str())
                && let Ok(index) = inner[..end].parse::<usize>()
                && inner[end + esc.len()..].starts_with('"')
            {
                let after = &inner[end + esc.len() + 1..];
                return Some((&text[..start], kind, index, after));
            }
        }
        from = start + 1;
    }
    None
}

fn parse_marker(s: &str) -> Option<(char, usize)> {
    for kind in [STRING_HOLE, RAW_HOLE] {
        if let Some(inner) = s.strip_prefix(kind).and_then(|r| r.strip_suffix(kind))
            && let Ok(i) = inner.parse()
        {
            return Some((kind, i));
        }
    }
    None
}

fn fill_tree(v: &mut Value, fills: &[String]) {
    match v {
        Value::String(s) => {
            if let Some((kind, i)) = parse_marker(s) {
                let fill = fills.get(i).cloned().unwrap_or_default();
                *v = match kind {
                    RAW_HOLE => serde_json::from_str::<serde_json::Number>(&fill)
                        .map_or(Value::String(fill), Value::Number),
                    _ => Value::String(fill),
                };
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| fill_tree(i, fills)),
        Value::Object(map) => map.values_mut().for_each(|i| fill_tree(i, fills)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compiled_pieces_and_filled_trees_agree() {
        let skel = Skeleton::new(
            json!({"metadata": {"name": Skeleton::hole(0), "note": "a \"quoted\" \u{3} text"},
                   "status": {"restartCount": Skeleton::raw_hole(1), "podIP": Skeleton::hole(2)}}),
            3,
        );
        let fills = [
            "web-\"x\"".to_string(),
            "4".to_string(),
            "10.0.0.1".to_string(),
        ];
        let mut text = String::new();
        for p in Skeleton::compile(skel.value()) {
            match p {
                Piece::Text(t) => text.push_str(&t),
                Piece::Quoted(i) => text.push_str(&Value::String(fills[i].clone()).to_string()),
                Piece::Raw(i) => text.push_str(&fills[i]),
            }
        }
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed, skel.fill_value(&fills));
        assert_eq!(parsed["status"]["restartCount"], json!(4));
        assert_eq!(parsed["metadata"]["name"], json!("web-\"x\""));
        assert_eq!(Skeleton::fill_str(&Skeleton::hole(2), &fills), "10.0.0.1");
        assert_eq!(Skeleton::fill_str("plain", &fills), "plain");
    }
}
