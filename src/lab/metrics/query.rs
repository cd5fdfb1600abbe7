//! How the lab answers a PromQL query: the catalogue's own queries (and fallbacks) by
//! exact text, plain selectors of the served metrics and their comparisons with a number,
//! number literals and `time()`, and
//! otherwise by the metric names the query mentions. Anything else is an empty vector,
//! as from a Prometheus that has no such series.

use std::collections::BTreeMap;

use super::promql::{self, Comparison, Labels, Matcher, Selector};
use super::series::{self, At, RAW_FAMILIES, SCRAPE_INTERVAL, Sample};
use crate::model::catalogue::{self, Entry};

/// What a query turned out to be.
#[derive(Debug)]
pub enum Plan {
    /// A catalogue query (or its fallback), answered from the simulation.
    Catalogue {
        id: &'static str,
        fallback: bool,
    },
    /// A plain selector, maybe with a range.
    Select(Selector),
    /// `selector <op> [bool] number`.
    Compare {
        selector: Selector,
        op: Comparison,
        as_bool: bool,
        threshold: f64,
    },
    /// Another query mentioning a catalogue metric: that entry's answer, filtered by the
    /// matchers written after the metric, without `__name__`.
    Mentions {
        id: &'static str,
        filters: Vec<Matcher>,
    },
    /// Another query mentioning a served metric: its series, filtered, without `__name__`.
    MentionsFamily {
        family: &'static str,
        filters: Vec<Matcher>,
    },
    Number(f64),
    Time,
    Unknown,
}

impl Plan {
    /// `Err` is a `bad_data` message (without the `invalid parameter` prefix).
    pub fn of(query: &str) -> Result<Plan, String> {
        promql::check_syntax(query)?;
        let squashed = squash(query);
        for entry in catalogue::entries() {
            if squash(entry.query.promql) == squashed {
                return Ok(Plan::Catalogue {
                    id: entry.query.id,
                    fallback: false,
                });
            }
            if entry.fallback.is_some_and(|f| squash(f) == squashed) {
                return Ok(Plan::Catalogue {
                    id: entry.query.id,
                    fallback: true,
                });
            }
        }
        if let Some(selector) = promql::parse_selector(query) {
            return selector.map(Plan::Select);
        }
        if let Some(comparison) = promql::parse_comparison(query) {
            let (selector, op, as_bool, threshold) = comparison?;
            return Ok(Plan::Compare {
                selector,
                op,
                as_bool,
                threshold,
            });
        }
        let trimmed = query.trim();
        if squashed == "time()" {
            return Ok(Plan::Time);
        }
        if let Ok(number) = trimmed.parse::<f64>() {
            return Ok(Plan::Number(number));
        }
        let names = promql::identifiers(query);
        for entry in catalogue::entries() {
            if let Some(metric) = entry.metrics.iter().find(|m| names.contains(m)) {
                return Ok(Plan::Mentions {
                    id: entry.query.id,
                    filters: promql::matchers_after(query, metric),
                });
            }
        }
        if let Some(family) = RAW_FAMILIES.iter().find(|f| names.contains(f)) {
            return Ok(Plan::MentionsFamily {
                family,
                filters: promql::matchers_after(query, family),
            });
        }
        Ok(Plan::Unknown)
    }

    /// True for a range-vector selector, which a range query must refuse.
    pub fn is_range_vector(&self) -> bool {
        matches!(self, Plan::Select(s) if s.range.is_some())
    }
}

/// Whitespace does not make two queries different.
fn squash(query: &str) -> String {
    query.chars().filter(|c| !c.is_whitespace()).collect()
}

/// One series with its points, for matrices.
pub type Points = Vec<(i64, f64)>;

/// An evaluated query.
#[derive(Debug)]
pub enum Outcome {
    Vector(Vec<Sample>),
    Matrix(Vec<(Labels, Points)>),
    Scalar(f64),
}

/// The instant query `plan` at `at`.
pub fn instant(plan: &Plan, at: &At) -> Outcome {
    match plan {
        Plan::Select(selector) if selector.range.is_some() => {
            Outcome::Matrix(range_selector(selector, at))
        }
        Plan::Number(n) => Outcome::Scalar(*n),
        Plan::Time => Outcome::Scalar(at.seconds()),
        _ => Outcome::Vector(vector(plan, at)),
    }
}

/// The instant-vector answer of `plan` at `at`, sorted by labels.
pub fn vector(plan: &Plan, at: &At) -> Vec<Sample> {
    let mut samples = match plan {
        Plan::Catalogue { id, fallback } => entry_answer(at, id, *fallback),
        Plan::Select(selector) => select(at, selector),
        Plan::Compare {
            selector,
            op,
            as_bool,
            threshold,
        } => compare(select(at, selector), *op, *as_bool, *threshold),
        Plan::Mentions { id, filters } => strip(entry_answer(at, id, false), filters),
        Plan::MentionsFamily { family, filters } => {
            strip(series::raw_family(at, family).unwrap_or_default(), filters)
        }
        Plan::Number(n) => vec![Sample {
            labels: Labels::new(),
            value: *n,
        }],
        Plan::Time => vec![Sample {
            labels: Labels::new(),
            value: at.seconds(),
        }],
        Plan::Unknown => Vec::new(),
    };
    samples.sort_by(|a, b| a.labels.cmp(&b.labels));
    samples
}

/// The range query `plan` at `start, start + step, ... <= end`, as a matrix.
pub fn range(plan: &Plan, at: &At, start: i64, end: i64, step: i64) -> Vec<(Labels, Points)> {
    let mut series: BTreeMap<Labels, Points> = BTreeMap::new();
    let mut t = start;
    while t <= end {
        for sample in vector(plan, &at.shifted(t)) {
            series
                .entry(sample.labels)
                .or_default()
                .push((t, sample.value));
        }
        t += step;
    }
    series.into_iter().collect()
}

fn find_entry(id: &str) -> Option<Entry> {
    catalogue::entries().into_iter().find(|e| e.query.id == id)
}

fn entry_answer(at: &At, id: &str, fallback: bool) -> Vec<Sample> {
    let selector = find_entry(id).and_then(|e| promql::parse_selector(e.query.promql));
    match selector {
        Some(Ok(selector)) if !fallback => select(at, &selector),
        _ => series::computed(at, id, fallback),
    }
}

/// Drop `__name__` (functions and operators do) and keep series that `filters` allow;
/// a filter on a label the answer does not carry is ignored.
fn strip(samples: Vec<Sample>, filters: &[Matcher]) -> Vec<Sample> {
    samples
        .into_iter()
        .filter(|s| {
            filters
                .iter()
                .filter(|m| s.labels.contains_key(&m.name))
                .all(|m| m.matches(&s.labels))
        })
        .map(|mut s| {
            s.labels.remove("__name__");
            s
        })
        .collect()
}

/// A filtering comparison keeps matching series as they are; with `bool` every series
/// stays, valued 1 or 0, without its name.
fn compare(samples: Vec<Sample>, op: Comparison, as_bool: bool, threshold: f64) -> Vec<Sample> {
    samples
        .into_iter()
        .filter_map(|mut s| {
            let holds = op.holds(s.value, threshold);
            if as_bool {
                s.labels.remove("__name__");
                s.value = f64::from(u8::from(holds));
                Some(s)
            } else {
                holds.then_some(s)
            }
        })
        .collect()
}

/// The series `selector` picks at `at` (its range ignored).
pub fn select(at: &At, selector: &Selector) -> Vec<Sample> {
    let families: Vec<&str> = match &selector.metric {
        Some(name) => vec![name.as_str()],
        None => RAW_FAMILIES.to_vec(),
    };
    families
        .into_iter()
        .filter_map(|name| series::raw_family(at, name))
        .flatten()
        .filter(|s| selector.matches(&s.labels))
        .collect()
}

/// `metric[5m]` at `at`: each series' scrapes within the window.
fn range_selector(selector: &Selector, at: &At) -> Vec<(Labels, Points)> {
    let window = selector.range.unwrap_or(0);
    let last = at.t.div_euclid(SCRAPE_INTERVAL) * SCRAPE_INTERVAL;
    let mut scrapes: Vec<i64> = (0..)
        .map(|k| last - k * SCRAPE_INTERVAL)
        .take_while(|&s| s > at.t - window)
        .collect();
    scrapes.reverse();
    let mut series: BTreeMap<Labels, Points> = BTreeMap::new();
    for t in scrapes {
        for sample in select(&at.shifted(t), selector) {
            series
                .entry(sample.labels)
                .or_default()
                .push((t, sample.value));
        }
    }
    series.into_iter().collect()
}
