//! Just enough PromQL reading for the dashboard tests: which metrics a query selects and with
//! which label names, which labels it groups by, and a rewrite that adds a matcher to every
//! selector. Also the dashboard's and the alert rules' queries, read from the files.

use std::path::PathBuf;

/// One vector selector: `metric{label op "value", ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub metric: String,
    /// Label names of the matchers.
    pub labels: Vec<String>,
    /// Byte offset just after the metric name (where `{` is or would go).
    pub name_end: usize,
    /// Byte offset of the `{`, if the selector has matchers.
    pub brace: Option<usize>,
}

/// What a query refers to.
#[derive(Debug, Default)]
pub struct Refs {
    pub selectors: Vec<Selector>,
    /// Label names in `by (...)`, `without (...)`, `on (...)`, `ignoring (...)`, `group_*`.
    pub grouping: Vec<String>,
}

const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan", // aggregations may put `by (...)` before their `(`:
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "limitk",
    "limit_ratio",
];
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

fn ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}
fn ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

/// Index just past the string literal starting at `i` (quote at `i`).
fn skip_string(s: &[u8], i: usize) -> usize {
    let quote = s[i];
    let mut j = i + 1;
    while j < s.len() {
        if s[j] == b'\\' && quote != b'`' {
            j += 2;
            continue;
        }
        if s[j] == quote {
            return j + 1;
        }
        j += 1;
    }
    panic!("unterminated string in {:?}", String::from_utf8_lossy(s));
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

fn read_ident(s: &[u8], i: usize) -> (String, usize) {
    let mut j = i;
    while j < s.len() && ident_char(s[j]) {
        j += 1;
    }
    (String::from_utf8_lossy(&s[i..j]).into_owned(), j)
}

/// Reads `{ label op "value", ... }` starting at the `{`; returns the label names and the
/// index past `}`.
fn read_matchers(s: &[u8], mut i: usize) -> (Vec<String>, usize) {
    assert_eq!(s[i], b'{');
    i += 1;
    let mut labels = Vec::new();
    loop {
        i = skip_ws(s, i);
        match s.get(i) {
            Some(b'}') => return (labels, i + 1),
            Some(b',') => i += 1,
            Some(&c) if ident_start(c) => {
                let (name, j) = read_ident(s, i);
                labels.push(name);
                i = skip_ws(s, j);
                while i < s.len() && matches!(s[i], b'=' | b'!' | b'~') {
                    i += 1;
                }
                i = skip_ws(s, i);
                assert!(
                    matches!(s.get(i), Some(b'"' | b'\'' | b'`')),
                    "matcher without a string value in {:?}",
                    String::from_utf8_lossy(s)
                );
                i = skip_string(s, i);
            }
            other => panic!(
                "unexpected {other:?} in matchers of {:?}",
                String::from_utf8_lossy(s)
            ),
        }
    }
}

/// The selectors and grouping labels of `expr`.
pub fn refs(expr: &str) -> Refs {
    let s = expr.as_bytes();
    let mut out = Refs::default();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if matches!(c, b'"' | b'\'' | b'`') {
            i = skip_string(s, i);
        } else if c == b'[' {
            // A range or subquery duration: `[5m]`, `[$__rate_interval]`, `[1h:5m]`.
            i = s[i..]
                .iter()
                .position(|&b| b == b']')
                .map(|p| i + p + 1)
                .expect("unclosed [");
        } else if c == b'#' {
            i = s[i..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(s.len(), |p| i + p);
        } else if c.is_ascii_digit() || (c == b'.' && s.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == b'.') {
                i += 1;
            }
        } else if c == b'{' {
            // A selector without a metric name: `{__name__=~"..."}`.
            let (labels, j) = read_matchers(s, i);
            out.selectors.push(Selector {
                metric: String::new(),
                labels,
                name_end: i,
                brace: Some(i),
            });
            i = j;
        } else if ident_start(c) {
            let (name, j) = read_ident(s, i);
            let k = skip_ws(s, j);
            let lower = name.to_ascii_lowercase();
            if LABEL_LISTS.contains(&lower.as_str()) {
                if s.get(k) == Some(&b'(') {
                    let end = s[k..].iter().position(|&b| b == b')').expect("unclosed (") + k;
                    let list = String::from_utf8_lossy(&s[k + 1..end]);
                    out.grouping.extend(
                        list.split(',')
                            .map(|l| l.trim().to_owned())
                            .filter(|l| !l.is_empty()),
                    );
                    i = end + 1;
                } else {
                    i = j;
                }
            } else if KEYWORDS.contains(&lower.as_str()) || s.get(k) == Some(&b'(') {
                i = j; // an operator keyword, a function or an aggregation
            } else if s.get(k) == Some(&b'{') {
                let (labels, end) = read_matchers(s, k);
                out.selectors.push(Selector {
                    metric: name,
                    labels,
                    name_end: j,
                    brace: Some(k),
                });
                i = end;
            } else {
                out.selectors.push(Selector {
                    metric: name,
                    labels: Vec::new(),
                    name_end: j,
                    brace: None,
                });
                i = j;
            }
        } else {
            i += 1;
        }
    }
    out
}

/// `expr` with `label="value"` added to every selector.
pub fn with_matcher(expr: &str, label: &str, value: &str) -> String {
    let mut out = expr.to_owned();
    let mut selectors = refs(expr).selectors;
    selectors.sort_by_key(|s| std::cmp::Reverse(s.name_end));
    for sel in selectors {
        match sel.brace {
            Some(b) => out.insert_str(b + 1, &format!("{label}=\"{value}\", ")),
            None => out.insert_str(sel.name_end, &format!("{{{label}=\"{value}\"}}")),
        }
    }
    out
}

pub fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

pub const DASHBOARD: &str = "dashboards/llm-gateway-overview.json";
pub const ALERTS: &str = "dashboards/alerts.yml";

/// A panel query of the dashboard.
#[derive(Debug, Clone)]
pub struct PanelQuery {
    pub panel: String,
    pub ref_id: String,
    pub expr: String,
}

pub fn dashboard() -> serde_json::Value {
    let text = std::fs::read_to_string(repo_file(DASHBOARD)).expect("read the dashboard");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// Every panel's every target (rows' nested panels included).
pub fn panel_queries(dashboard: &serde_json::Value) -> Vec<PanelQuery> {
    fn walk(panels: &[serde_json::Value], out: &mut Vec<PanelQuery>) {
        for p in panels {
            let title = p["title"].as_str().unwrap_or("?").to_owned();
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"]
                    .as_str()
                    .unwrap_or_else(|| panic!("panel {title:?} has a target without expr"));
                out.push(PanelQuery {
                    panel: title.clone(),
                    ref_id: t["refId"].as_str().unwrap_or("?").to_owned(),
                    expr: expr.to_owned(),
                });
            }
            if let Some(nested) = p["panels"].as_array() {
                walk(nested, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(
        dashboard["panels"].as_array().expect("dashboard.panels"),
        &mut out,
    );
    out
}

/// The `label_values(metric{...}, label)` queries of the template variables: (name, query).
pub fn variable_queries(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .filter(|v| v["type"] == "query")
        .map(|v| {
            let q = &v["query"];
            let q = q["query"].as_str().or(q.as_str()).expect("variable query");
            (v["name"].as_str().expect("name").to_owned(), q.to_owned())
        })
        .collect()
}

/// One alert rule: its name and expression.
#[derive(Debug, Clone)]
pub struct AlertRule {
    pub name: String,
    pub expr: String,
}

/// The alert rules of `dashboards/alerts.yml`.
pub fn alert_rules() -> Vec<AlertRule> {
    let text = std::fs::read_to_string(repo_file(ALERTS)).expect("read the alert rules");
    alert_rules_in(&text)
}

/// The alert rules of a rule file's text (read line by line: `- alert:` then `expr:`, inline
/// or as a `|` block).
pub fn alert_rules_in(text: &str) -> Vec<AlertRule> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut rules = Vec::new();
    let mut name: Option<String> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim_start();
        if let Some(n) = t.strip_prefix("- alert:") {
            assert!(name.is_none(), "alert {name:?} has no expr");
            name = Some(n.trim().to_owned());
        } else if let Some(rest) = t.strip_prefix("expr:") {
            let n = name
                .take()
                .unwrap_or_else(|| panic!("expr without an alert at line {}", i + 1));
            let rest = rest.trim();
            let expr = if rest == "|" || rest == "|-" || rest == ">" || rest == ">-" {
                let key_indent = indent(line);
                let mut body = Vec::new();
                while i + 1 < lines.len()
                    && (lines[i + 1].trim().is_empty() || indent(lines[i + 1]) > key_indent)
                {
                    i += 1;
                    body.push(lines[i].trim());
                }
                body.join(" ").trim().to_owned()
            } else {
                rest.trim_matches(|c| c == '\'' || c == '"').to_owned()
            };
            rules.push(AlertRule { name: n, expr });
        }
        i += 1;
    }
    assert!(name.is_none(), "alert {name:?} has no expr");
    rules
}

/// Splits `query <op> threshold` (the comparison must come last) into the query, the
/// operator and the threshold.
pub fn split_threshold(expr: &str) -> (String, String, f64) {
    let expr = expr.trim();
    let (head, number) = expr
        .rsplit_once(char::is_whitespace)
        .unwrap_or_else(|| panic!("no threshold in {expr:?}"));
    let threshold: f64 = number
        .parse()
        .unwrap_or_else(|_| panic!("the alert must end with `<op> <number>`: {expr:?}"));
    let head = head.trim_end();
    for op in [">=", "<=", "==", "!=", ">", "<"] {
        if let Some(query) = head.strip_suffix(op) {
            return (query.trim().to_owned(), op.to_owned(), threshold);
        }
    }
    panic!("the alert must end with `<op> <number>`: {expr:?}");
}

#[test]
fn reads_selectors_groupings_and_rewrites() {
    let e = r#"sum by (a, b) (rate(m_total{x=~"$model", y!="q{z}"}[$__rate_interval])) / on (a) c unless label_replace(d, "l", "$1", "k", "(.*)") > 0.5"#;
    let r = refs(e);
    let names: Vec<_> = r.selectors.iter().map(|s| s.metric.as_str()).collect();
    assert_eq!(names, ["m_total", "c", "d"]);
    assert_eq!(r.selectors[0].labels, ["x", "y"]);
    assert_eq!(r.grouping, ["a", "b", "a"]);
    let rewritten = with_matcher(e, "run", "7");
    assert!(
        rewritten.contains(r#"m_total{run="7", x=~"$model""#),
        "{rewritten}"
    );
    assert!(
        rewritten.contains(r#"on (a) c{run="7"} unless"#),
        "{rewritten}"
    );
    assert!(
        rewritten.contains(r#"label_replace(d{run="7"}, "l""#),
        "{rewritten}"
    );
    assert_eq!(refs(&rewritten).selectors.len(), 3);
    assert_eq!(
        split_threshold("a / b\n  > 0.1"),
        ("a / b".into(), ">".into(), 0.1)
    );
}
