//! Label selectors (`a=b,c!=d,e in (x,y),f notin (z),g,!h,n>3`) and field selectors
//! (`spec.nodeName=n1,status.phase!=Running`) with kube-apiserver's semantics: `!=` and
//! `notin` also match objects without the label.

use std::borrow::Cow;

use serde_json::Value;

use super::resources::ResourceInfo;

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Exists,
    DoesNotExist,
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    GreaterThan(i64),
    LessThan(i64),
}

#[derive(Debug, Clone, PartialEq)]
struct Requirement {
    key: String,
    op: Op,
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses the `labelSelector` query parameter.
    pub fn parse(text: &str) -> Result<LabelSelector, String> {
        let mut requirements = Vec::new();
        for part in split_outside_parens(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            requirements.push(parse_requirement(part)?);
        }
        Ok(LabelSelector { requirements })
    }

    /// A selector from a `metav1.LabelSelector` object (`matchLabels`,
    /// `matchExpressions`), as PodDisruptionBudgets carry it.
    pub fn from_object(selector: &Value) -> Result<LabelSelector, String> {
        let mut requirements = Vec::new();
        if let Some(labels) = selector["matchLabels"].as_object() {
            for (k, v) in labels {
                let v = v.as_str().ok_or("matchLabels values must be strings")?;
                requirements.push(Requirement {
                    key: k.clone(),
                    op: Op::Equals(v.to_string()),
                });
            }
        }
        for expr in selector["matchExpressions"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let key = expr["key"].as_str().ok_or("matchExpressions need a key")?;
            let values: Vec<String> = expr["values"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let op = match expr["operator"].as_str() {
                Some("In") => Op::In(values),
                Some("NotIn") => Op::NotIn(values),
                Some("Exists") => Op::Exists,
                Some("DoesNotExist") => Op::DoesNotExist,
                other => return Err(format!("{other:?} is not a valid label selector operator")),
            };
            requirements.push(Requirement {
                key: key.to_string(),
                op,
            });
        }
        Ok(LabelSelector { requirements })
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, obj: &(impl Selectable + ?Sized)) -> bool {
        self.requirements.iter().all(|r| {
            let value = obj.label(&r.key);
            match (&r.op, value) {
                (Op::Exists, v) => v.is_some(),
                (Op::DoesNotExist, v) => v.is_none(),
                (Op::Equals(want), v) => v == Some(want.as_str()),
                (Op::NotEquals(want), v) => v != Some(want.as_str()),
                (Op::In(set), Some(v)) => set.iter().any(|s| s == v),
                (Op::In(_), None) => false,
                (Op::NotIn(set), Some(v)) => !set.iter().any(|s| s == v),
                (Op::NotIn(_), None) => true,
                (Op::GreaterThan(n), Some(v)) => v.parse::<i64>().is_ok_and(|v| v > *n),
                (Op::LessThan(n), Some(v)) => v.parse::<i64>().is_ok_and(|v| v < *n),
                (Op::GreaterThan(_) | Op::LessThan(_), None) => false,
            }
        })
    }
}

fn split_outside_parens(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    let invalid = |why: &str| format!("unable to parse requirement: {why}: \"{part}\"");
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        check_key(key).map_err(|e| invalid(&e))?;
        return Ok(Requirement {
            key: key.to_string(),
            op: Op::DoesNotExist,
        });
    }
    for (token, kind) in [("!=", 0), ("==", 1), ("=", 1), (">", 2), ("<", 3)] {
        if let Some((key, value)) = part.split_once(token) {
            let (key, value) = (key.trim(), value.trim());
            check_key(key).map_err(|e| invalid(&e))?;
            let op = match kind {
                0 | 1 => {
                    check_value(value).map_err(|e| invalid(&e))?;
                    if kind == 0 {
                        Op::NotEquals(value.to_string())
                    } else {
                        Op::Equals(value.to_string())
                    }
                }
                _ => {
                    let n: i64 = value.parse().map_err(|_| {
                        invalid("for 'gt', 'lt' operators, the value must be an integer")
                    })?;
                    if kind == 2 {
                        Op::GreaterThan(n)
                    } else {
                        Op::LessThan(n)
                    }
                }
            };
            return Ok(Requirement {
                key: key.to_string(),
                op,
            });
        }
    }
    let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
    if words.len() == 2 {
        let key = words[0];
        let rest = words[1].trim_start();
        let (negated, set) = if let Some(s) = rest.strip_prefix("notin") {
            (true, s)
        } else if let Some(s) = rest.strip_prefix("in") {
            (false, s)
        } else {
            return Err(invalid("found unexpected word, expected in or notin"));
        };
        check_key(key).map_err(|e| invalid(&e))?;
        let set = set.trim();
        let inner = set
            .strip_prefix('(')
            .and_then(|s| s.strip_suffix(')'))
            .ok_or_else(|| invalid("expected a parenthesised set of values"))?;
        let mut values = Vec::new();
        for v in inner.split(',') {
            let v = v.trim();
            check_value(v).map_err(|e| invalid(&e))?;
            values.push(v.to_string());
        }
        let op = if negated {
            Op::NotIn(values)
        } else {
            Op::In(values)
        };
        return Ok(Requirement {
            key: key.to_string(),
            op,
        });
    }
    check_key(part).map_err(|e| invalid(&e))?;
    Ok(Requirement {
        key: part.to_string(),
        op: Op::Exists,
    })
}

fn is_name_part(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let ok = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix
                .split('.')
                .all(|l| is_name_part(l, 63) && !l.contains('_'));
        if !ok {
            return Err(format!(
                "prefix part of key {key:?} must be a DNS subdomain"
            ));
        }
    }
    if !is_name_part(name, 63) {
        return Err(format!(
            "name part of key {key:?} must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ));
    }
    Ok(())
}

fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_name_part(value, 63) {
        Ok(())
    } else {
        Err(format!(
            "values[0]: Invalid value: {value:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ))
    }
}

/// A parsed field selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector {
    terms: Vec<(String, bool, String)>,
}

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter for a resource, rejecting fields the
    /// real server does not index for it.
    pub fn parse(text: &str, info: &ResourceInfo) -> Result<FieldSelector, String> {
        let mut terms = Vec::new();
        for part in split_unescaped(text, ',') {
            if part.trim().is_empty() {
                continue;
            }
            let (field, equal, value) = if let Some((f, v)) = split_once_unescaped(&part, "!=") {
                (f, false, v)
            } else if let Some((f, v)) = split_once_unescaped(&part, "==") {
                (f, true, v)
            } else if let Some((f, v)) = split_once_unescaped(&part, "=") {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{text}'; can't understand '{part}'"
                ));
            };
            let field = field.trim().to_string();
            if !info.supports_field(&field) {
                return Err(format!("field label not supported: {field}"));
            }
            terms.push((field, equal, unescape(&value)));
        }
        Ok(FieldSelector { terms })
    }

    pub fn matches(&self, obj: &(impl Selectable + ?Sized)) -> bool {
        self.terms
            .iter()
            .all(|(field, equal, want)| (obj.field(field) == want.as_str()) == *equal)
    }
}

/// What selectors read of an object: a JSON tree, or a stored object's index.
pub trait Selectable {
    /// The value of label `key`, if the object has it.
    fn label(&self, key: &str) -> Option<&str>;
    /// The object's value for a supported field selector (empty when absent).
    fn field(&self, name: &str) -> Cow<'_, str>;
}

impl Selectable for Value {
    fn label(&self, key: &str) -> Option<&str> {
        self["metadata"]["labels"].get(key).and_then(Value::as_str)
    }

    fn field(&self, name: &str) -> Cow<'_, str> {
        field_value(self, name)
    }
}

/// An object's value for a field selector, as the apiserver's field sets render it.
pub fn field_value<'a>(obj: &'a Value, field: &str) -> Cow<'a, str> {
    let path = if field == "source" {
        "source.component"
    } else {
        field
    };
    let mut v = obj;
    for part in path.split('.') {
        v = &v[part];
    }
    match v {
        Value::String(s) => Cow::Borrowed(s),
        Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Value::Number(n) => Cow::Owned(n.to_string()),
        Value::Null if matches!(field, "spec.unschedulable" | "spec.hostNetwork") => {
            Cow::Borrowed("false")
        }
        _ => Cow::Borrowed(""),
    }
}

fn split_unescaped(text: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            current.push('\\');
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    parts.push(current);
    parts
}

fn split_once_unescaped(text: &str, op: &str) -> Option<(String, String)> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        // `op` is ASCII, so a match starts and ends on character boundaries.
        if bytes[i..].starts_with(op.as_bytes()) {
            return Some((text[..i].to_string(), text[i + op.len()..].to_string()));
        }
        i += 1;
    }
    None
}

fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labelled(labels: Value) -> Value {
        json!({"metadata": {"labels": labels}})
    }

    #[test]
    fn label_selector_operators() {
        let obj = labelled(json!({"tier": "control-plane", "component": "etcd", "n": "5"}));
        let yes = [
            "tier=control-plane",
            "tier==control-plane",
            "component!=kube-apiserver",
            "component in (etcd, kube-scheduler)",
            "component notin (kube-apiserver)",
            "tier",
            "!missing",
            "missing!=x",
            "n>3,n<9",
            "tier=control-plane,component=etcd",
        ];
        for s in yes {
            assert!(LabelSelector::parse(s).unwrap().matches(&obj), "{s}");
        }
        let no = ["tier=worker", "component in (x)", "missing", "!tier", "n>7"];
        for s in no {
            assert!(!LabelSelector::parse(s).unwrap().matches(&obj), "{s}");
        }
        assert!(LabelSelector::parse("a b").is_err());
        assert!(LabelSelector::parse("a in x").is_err());
        assert!(LabelSelector::parse("bad key=1").is_err());
    }

    #[test]
    fn object_selectors() {
        let info = crate::lab::kube::resources::Registry::builtin()
            .by_path("", "v1", "pods")
            .unwrap();
        let fields =
            FieldSelector::parse("spec.nodeName=n\\=1,status.phase!=Failed", &info).unwrap();
        let pod = json!({"spec": {"nodeName": "n=1"}, "status": {"phase": "Running"}});
        assert!(fields.matches(&pod));
        assert!(FieldSelector::parse("metadata.name=é,x", &info).is_err());
        assert!(FieldSelector::parse("spec.bogus=1", &info).is_err());
        let sel = LabelSelector::from_object(&json!({"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]}))
        .unwrap();
        assert!(sel.matches(&labelled(json!({"app": "web", "tier": "front"}))));
        assert!(!sel.matches(&labelled(json!({"app": "web"}))));
    }
}
