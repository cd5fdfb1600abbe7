//! The JSONPath subset CRD printer columns use: `.a.b`, `.a[0]`, `.a[*].b` and filters
//! such as `.status.conditions[?(@.type=="Ready")].status`. Returns the first match.

use serde_json::Value;

/// The first value `path` selects in `obj`.
pub fn first<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let path = path.trim();
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path);
    let path = path.strip_prefix('$').unwrap_or(path);
    let steps = parse(path)?;
    walk(obj, &steps).into_iter().next()
}

#[derive(Debug, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    All,
    /// `[?(@.a.b=="v")]` or `[?(@.a!="v")]`.
    Filter {
        field: Vec<String>,
        equal: bool,
        value: String,
    },
}

fn parse(path: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end > 0 {
                steps.push(Step::Field(r[..end].to_string()));
            }
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = &r[..end];
            rest = &r[end + 1..];
            if inner == "*" {
                steps.push(Step::All);
            } else if let Some(filter) = inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')'))
            {
                steps.push(parse_filter(filter)?);
            } else if let Ok(i) = inner.parse() {
                steps.push(Step::Index(i));
            } else {
                let name = inner.trim_matches(|c| c == '\'' || c == '"');
                steps.push(Step::Field(name.to_string()));
            }
        } else {
            return None;
        }
    }
    Some(steps)
}

fn parse_filter(filter: &str) -> Option<Step> {
    let (lhs, equal, rhs) = if let Some((l, r)) = filter.split_once("!=") {
        (l, false, r)
    } else {
        let (l, r) = filter.split_once("==")?;
        (l, true, r)
    };
    let field = lhs
        .trim()
        .strip_prefix("@.")?
        .split('.')
        .map(String::from)
        .collect();
    let value = rhs
        .trim()
        .trim_matches(|c| c == '"' || c == '\'')
        .to_string();
    Some(Step::Filter {
        field,
        equal,
        value,
    })
}

fn walk<'a>(obj: &'a Value, steps: &[Step]) -> Vec<&'a Value> {
    let mut current = vec![obj];
    for step in steps {
        let mut next = Vec::new();
        for v in current {
            match step {
                Step::Field(name) => next.extend(v.get(name.as_str())),
                Step::Index(i) => next.extend(v.get(*i)),
                Step::All => match v {
                    Value::Array(a) => next.extend(a.iter()),
                    Value::Object(m) => next.extend(m.values()),
                    _ => {}
                },
                Step::Filter {
                    field,
                    equal,
                    value,
                } => {
                    for item in v.as_array().into_iter().flatten() {
                        let mut f = item;
                        for part in field {
                            f = &f[part.as_str()];
                        }
                        let text = match f {
                            Value::String(s) => s.clone(),
                            Value::Null => String::new(),
                            other => other.to_string(),
                        };
                        if (text == *value) == *equal {
                            next.push(item);
                        }
                    }
                }
            }
        }
        current = next;
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_and_filters() {
        let obj = json!({"spec": {"mon": {"count": 3}},
            "status": {"conditions": [{"type": "A", "status": "False"}, {"type": "Ready", "status": "True"}]}});
        assert_eq!(first(&obj, ".spec.mon.count"), Some(&json!(3)));
        assert_eq!(
            first(&obj, ".status.conditions[1].type"),
            Some(&json!("Ready"))
        );
        assert_eq!(
            first(&obj, ".status.conditions[?(@.type==\"Ready\")].status"),
            Some(&json!("True"))
        );
        assert_eq!(first(&obj, ".status.conditions[*].type"), Some(&json!("A")));
        assert_eq!(first(&obj, ".spec.missing"), None);
    }
}
