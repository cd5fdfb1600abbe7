//! The little PromQL the lab understands: plain series selectors with label matchers
//! (`=`, `!=`, `=~`, `!~`) and an optional range (`[5m]`), a bracket/quote check so broken
//! queries get Prometheus' `bad_data`, and a scan for the metric names a query mentions.
//! Everything else is recognised by name against the catalogue, not evaluated.

use std::collections::BTreeMap;

use regex::Regex;

use super::clock;

/// A series' labels, `__name__` included, sorted like Prometheus sorts them.
pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    /// Fully anchored, as PromQL anchors regex matchers.
    regex: Option<Regex>,
}

impl Matcher {
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Matcher, String> {
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("error parsing regexp: {e}"))?,
            ),
            _ => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    /// A missing label matches as the empty string, as in Prometheus.
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.name).map(String::as_str).unwrap_or("");
        match (&self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            _ => false,
        }
    }

    fn matches_empty(&self) -> bool {
        self.matches(&Labels::new())
    }
}

/// `metric{label="value", ...}[range]`.
#[derive(Debug, Clone)]
pub struct Selector {
    /// The metric name, from before the braces or from a `__name__="..."` matcher.
    pub metric: Option<String>,
    pub matchers: Vec<Matcher>,
    /// Milliseconds, for a range-vector selector.
    pub range: Option<i64>,
}

impl Selector {
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }
}

/// `Some(Ok)` for a plain selector, `Some(Err)` for one that is malformed (bad regex, no
/// non-empty matcher), `None` when `query` is some other expression.
pub fn parse_selector(query: &str) -> Option<Result<Selector, String>> {
    let mut p = Parser::new(query.trim());
    let metric = p.identifier();
    let mut matchers = Vec::new();
    if let Some(name) = &metric {
        if is_keyword(name) {
            return None;
        }
        matchers.push(Matcher::new("__name__", MatchOp::Equal, name).ok()?);
    }
    p.skip_ws();
    if p.eat('{') {
        match p.matcher_list() {
            Some(Ok(list)) => matchers.extend(list),
            Some(Err(e)) => return Some(Err(e)),
            None => return None,
        }
    } else if metric.is_none() {
        return None;
    }
    p.skip_ws();
    let mut range = None;
    if p.eat('[') {
        let text = p.take_until(']')?;
        match clock::parse_prometheus_duration(text.trim()) {
            Some(ms) if ms > 0 => range = Some(ms),
            _ => return Some(Err(format!("parse error: bad duration syntax: {text:?}"))),
        }
    }
    p.skip_ws();
    if !p.at_end() {
        return None;
    }
    if matchers.iter().all(Matcher::matches_empty) {
        return Some(Err(
            "parse error: vector selector must contain at least one non-empty matcher".into(),
        ));
    }
    let metric = metric.or_else(|| {
        matchers
            .iter()
            .find(|m| m.name == "__name__" && m.op == MatchOp::Equal)
            .map(|m| m.value.clone())
    });
    Some(Ok(Selector {
        metric,
        matchers,
        range,
    }))
}

/// A comparison operator between a vector and a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

impl Comparison {
    pub fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Comparison::Eq => left == right,
            Comparison::Ne => left != right,
            Comparison::Lt => left < right,
            Comparison::Gt => left > right,
            Comparison::Le => left <= right,
            Comparison::Ge => left >= right,
        }
    }
}

/// `selector <op> [bool] number`, e.g. `up == 0`. `None` for anything else; `Some(Err)`
/// when the selector part is malformed.
pub fn parse_comparison(query: &str) -> Option<Result<(Selector, Comparison, bool, f64), String>> {
    let bytes = query.as_bytes();
    let (mut depth, mut i) = (0i32, 0);
    let (at, op, len) = loop {
        let c = *bytes.get(i)?;
        match c {
            b'"' | b'\'' | b'`' => {
                i = skip_string(bytes, i)?;
                continue;
            }
            b'(' | b'{' | b'[' => depth += 1,
            b')' | b'}' | b']' => depth -= 1,
            _ if depth == 0 => {
                let next = bytes.get(i + 1).copied();
                let found = match (c, next) {
                    (b'=', Some(b'=')) => Some((Comparison::Eq, 2)),
                    (b'!', Some(b'=')) => Some((Comparison::Ne, 2)),
                    (b'<', Some(b'=')) => Some((Comparison::Le, 2)),
                    (b'>', Some(b'=')) => Some((Comparison::Ge, 2)),
                    (b'<', _) => Some((Comparison::Lt, 1)),
                    (b'>', _) => Some((Comparison::Gt, 1)),
                    _ => None,
                };
                if let Some((op, len)) = found {
                    break (i, op, len);
                }
            }
            _ => {}
        }
        i += 1;
    };
    let right = query[at + len..].trim();
    let (as_bool, number) = match right.strip_prefix("bool") {
        Some(rest) if rest.starts_with(char::is_whitespace) => (true, rest.trim()),
        _ => (false, right),
    };
    let threshold: f64 = number.parse().ok()?;
    match parse_selector(&query[..at])? {
        Ok(selector) if selector.range.is_none() => Some(Ok((selector, op, as_bool, threshold))),
        Ok(_) => Some(Err(
            "parse error: binary expression must contain only scalar and instant vector types"
                .into(),
        )),
        Err(e) => Some(Err(e)),
    }
}

/// The label matchers written right after `metric` in `query`, for filtering an answer
/// the lab recognised by that metric's name. Unparseable matchers are ignored.
pub fn matchers_after(query: &str, metric: &str) -> Vec<Matcher> {
    let mut out = Vec::new();
    for (at, _) in query.match_indices(metric) {
        let mut p = Parser::new(&query[at + metric.len()..]);
        p.skip_ws();
        if p.eat('{')
            && let Some(Ok(list)) = p.matcher_list()
        {
            out.extend(list.into_iter().filter(|m| m.name != "__name__"));
        }
    }
    out
}

/// The identifiers in `query` outside string literals, in order.
pub fn identifiers(query: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = query.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' || c == b'\'' || c == b'`' {
            i = skip_string(bytes, i).unwrap_or(bytes.len());
        } else if is_ident_start(c) {
            let start = i;
            while i < bytes.len() && is_ident_char(bytes[i]) {
                i += 1;
            }
            out.push(&query[start..i]);
        } else if c.is_ascii_digit() {
            // Numbers such as 1e3 or 0x1f are not names.
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Prometheus' first complaints about a query: empty, unbalanced brackets, unterminated
/// strings. Positions are `line:column` like the real parser's.
pub fn check_syntax(query: &str) -> Result<(), String> {
    if query.trim().is_empty() {
        return Err("1:1: parse error: no expression found in input".into());
    }
    let bytes = query.as_bytes();
    let mut open: Vec<(u8, usize)> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'"' | b'\'' | b'`' => match skip_string(bytes, i) {
                Some(end) => {
                    i = end;
                    continue;
                }
                None => {
                    return Err(format!(
                        "1:{}: parse error: unterminated quoted string",
                        i + 1
                    ));
                }
            },
            b'(' | b'{' | b'[' => open.push((c, i)),
            b')' | b'}' | b']' => {
                let want = match c {
                    b')' => b'(',
                    b'}' => b'{',
                    _ => b'[',
                };
                match open.pop() {
                    Some((o, _)) if o == want => {}
                    _ if c == b')' => {
                        return Err(format!(
                            "1:{}: parse error: unexpected right parenthesis ')'",
                            i + 1
                        ));
                    }
                    _ => {
                        return Err(format!(
                            "1:{}: parse error: unexpected character: '{}'",
                            i + 1,
                            c as char
                        ));
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    match open.last() {
        None => Ok(()),
        Some((b'(', at)) => Err(format!(
            "1:{}: parse error: unclosed left parenthesis",
            at + 1
        )),
        Some((b'{', at)) => Err(format!(
            "1:{}: parse error: unexpected end of input inside braces",
            at + 1
        )),
        Some((_, at)) => Err(format!(
            "1:{}: parse error: unexpected end of input inside brackets",
            at + 1
        )),
    }
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

fn is_keyword(word: &str) -> bool {
    matches!(
        word,
        "sum"
            | "min"
            | "max"
            | "avg"
            | "count"
            | "stddev"
            | "stdvar"
            | "topk"
            | "bottomk"
            | "quantile"
            | "count_values"
            | "group"
            | "and"
            | "or"
            | "unless"
            | "by"
            | "without"
            | "on"
            | "ignoring"
            | "offset"
            | "bool"
            | "inf"
            | "nan"
            | "Inf"
            | "NaN"
    )
}

/// Index just past the string literal starting at `start`, or `None` if unterminated.
fn skip_string(bytes: &[u8], start: usize) -> Option<usize> {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote != b'`' => i += 2,
            c if c == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser { text, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn skip_ws(&mut self) {
        let n = self.rest().len() - self.rest().trim_start().len();
        self.pos += n;
    }

    fn eat(&mut self, c: char) -> bool {
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn take_until(&mut self, end: char) -> Option<&'a str> {
        let rest = self.rest();
        let at = rest.find(end)?;
        self.pos += at + end.len_utf8();
        Some(&rest[..at])
    }

    fn identifier(&mut self) -> Option<String> {
        let bytes = self.rest().as_bytes();
        if bytes.is_empty() || !is_ident_start(bytes[0]) {
            return None;
        }
        let len = bytes.iter().take_while(|&&c| is_ident_char(c)).count();
        let word = self.rest()[..len].to_string();
        self.pos += len;
        Some(word)
    }

    /// After `{`: matchers up to and including `}`. `None` when this is not a matcher
    /// list at all; `Some(Err)` for a bad string or regex.
    fn matcher_list(&mut self) -> Option<Result<Vec<Matcher>, String>> {
        let mut list = Vec::new();
        loop {
            self.skip_ws();
            if self.eat('}') {
                return Some(Ok(list));
            }
            let name = self.identifier()?;
            self.skip_ws();
            let op = if self.eat('=') {
                if self.eat('~') {
                    MatchOp::Regex
                } else {
                    MatchOp::Equal
                }
            } else if self.eat('!') {
                if self.eat('=') {
                    MatchOp::NotEqual
                } else if self.eat('~') {
                    MatchOp::NotRegex
                } else {
                    return None;
                }
            } else {
                return None;
            };
            self.skip_ws();
            let value = match self.string()? {
                Ok(v) => v,
                Err(e) => return Some(Err(e)),
            };
            match Matcher::new(&name, op, &value) {
                Ok(m) => list.push(m),
                Err(e) => return Some(Err(format!("parse error: {e}"))),
            }
            self.skip_ws();
            if self.eat(',') {
                continue;
            }
            self.skip_ws();
            if self.eat('}') {
                return Some(Ok(list));
            }
            return None;
        }
    }

    /// A quoted string with Go's escapes (`\"`, `\\`, `\n`, `\t`, ...).
    fn string(&mut self) -> Option<Result<String, String>> {
        let quote = self.rest().chars().next()?;
        if !matches!(quote, '"' | '\'' | '`') {
            return None;
        }
        self.pos += 1;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            if c == quote {
                self.pos += i + 1;
                return Some(Ok(out));
            }
            if c != '\\' || quote == '`' {
                out.push(c);
                continue;
            }
            let (_, escaped) = chars.next()?;
            match escaped {
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                '\'' => out.push('\''),
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                other => {
                    return Some(Err(format!(
                        "parse error: unknown escape sequence '\\{other}'"
                    )));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_parse_with_all_matcher_kinds() {
        let s = parse_selector(r#"DCGM_FI_DEV_GPU_TEMP{Hostname=~"gpu-.*", gpu!="7", pod!~""}"#)
            .unwrap()
            .unwrap();
        assert_eq!(s.metric.as_deref(), Some("DCGM_FI_DEV_GPU_TEMP"));
        let series = labels(&[
            ("__name__", "DCGM_FI_DEV_GPU_TEMP"),
            ("Hostname", "gpu-a"),
            ("gpu", "1"),
            ("pod", "x"),
        ]);
        assert!(s.matches(&series));
        let mut other = series.clone();
        other.insert("gpu".into(), "7".into());
        assert!(!s.matches(&other));
        let r = parse_selector("up[5m]").unwrap().unwrap();
        assert_eq!(r.range, Some(300_000));
        let n = parse_selector(r#"{__name__="up", job="kubelet"}"#)
            .unwrap()
            .unwrap();
        assert_eq!(n.metric.as_deref(), Some("up"));
    }

    #[test]
    fn non_selectors_and_bad_selectors_are_told_apart() {
        assert!(parse_selector("sum(up)").is_none());
        assert!(parse_selector("time()").is_none());
        assert!(parse_selector("1").is_none());
        assert!(parse_selector("up == 0").is_none());
        assert!(parse_selector(r#"up{job=~"("}"#).unwrap().is_err());
        assert!(parse_selector(r#"{job=""}"#).unwrap().is_err());
    }

    #[test]
    fn comparisons_with_a_number_parse() {
        let (s, op, as_bool, n) = parse_comparison(r#"up{job!="x"} == 0"#).unwrap().unwrap();
        assert_eq!(
            (s.metric.as_deref(), op, as_bool, n),
            (Some("up"), Comparison::Eq, false, 0.0)
        );
        let (_, op, as_bool, _) = parse_comparison("DCGM_FI_DEV_GPU_TEMP >= bool 90")
            .unwrap()
            .unwrap();
        assert_eq!((op, as_bool), (Comparison::Ge, true));
        assert!(parse_comparison("sum(up) == 0").is_none());
        assert!(parse_comparison("up == up").is_none());
        assert!(parse_comparison(r#"up{job=~"a|b"}"#).is_none());
    }

    #[test]
    fn syntax_check_and_identifier_scan() {
        assert!(check_syntax("sum(rate(x[5m]))").is_ok());
        assert!(check_syntax("sum(rate(x[5m])").is_err());
        assert!(check_syntax("up{job=\"a}").is_err());
        assert!(check_syntax("  ").is_err());
        assert_eq!(
            identifiers(r#"count(ceph_osd_up{x="ceph_health_status"} == 0)"#),
            vec!["count", "ceph_osd_up", "x"]
        );
        let m = matchers_after(
            r#"max_over_time(DCGM_FI_DEV_GPU_UTIL{Hostname="h"}[1h])"#,
            "DCGM_FI_DEV_GPU_UTIL",
        );
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].name, "Hostname");
    }
}
