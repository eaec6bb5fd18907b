#!/usr/bin/env python3
"""Writes dashboards/llm-gateway-overview.json (the Grafana dashboard).

Every PromQL expression is built here from the few metric and label names below, so a
renamed metric is changed in one place; `cargo test` checks that each name a panel or alert
queries is one the crate emits (tests/all/dashboards.rs), and the e2e test runs every query
against a real Prometheus fed by the crate over OTLP (tests/all/e2e.rs).

    python3 dashboards/generate.py          # rewrite the JSON
    python3 dashboards/generate.py --check  # exit 1 if the committed JSON is not what this writes
"""

import json
import pathlib
import sys

OUT = pathlib.Path(__file__).resolve().parent / "llm-gateway-overview.json"

# Prometheus names of the crate's instruments, as they arrive through an OTLP collector with
# Prometheus naming (dots → underscores, unit suffix, `_total` on counters).
CALLS = "gen_ai_client_operation_duration_seconds"  # one point per logical call
ATTEMPTS = "http_client_request_duration_seconds"  # one point per HTTP attempt
TOKENS = "gen_ai_client_token_usage"
TTFC = "gen_ai_client_operation_time_to_first_chunk_seconds"
RETRIES = "llm_gateway_client_retries_total"
RL_REMAINING = "llm_gateway_rate_limit_remaining"
RL_LIMIT = "llm_gateway_rate_limit_limit"
RL_RESET = "llm_gateway_rate_limit_reset_seconds"

MODEL = "gen_ai_request_model"
SERVED = "gen_ai_response_model"
REGION = "llm_gateway_region"
STATUS = "http_response_status_code"
ERROR = "error_type"
TOKEN_TYPE = "gen_ai_token_type"
REASON = "llm_gateway_retry_reason"

# Every selector is filtered by the two template variables (regex matchers: Grafana turns a
# multi-value selection into `(a|b)` and "All" into the allValue `.*`).
FILTER = f'{MODEL}=~"$model", {REGION}=~"$region"'
RI = "[$__rate_interval]"
DS = {"type": "prometheus", "uid": "${datasource}"}


def sel(metric, extra=""):
    return f"{metric}{{{FILTER}{extra}}}"


def rate(metric, extra=""):
    return f"rate({sel(metric, extra)}{RI})"


def sum_rate(metric, by, extra=""):
    agg = f"sum by ({by})" if by else "sum"
    return f"{agg} ({rate(metric, extra)})"


def share(metric, by, extra):
    """Share of `metric`'s rate that matches `extra`, 0 (not absent) where nothing matched."""
    den = sum_rate(metric, by)
    return f"({sum_rate(metric, by, extra)} or {den} * 0) / {den}"


def quantile(q, metric, by, extra=""):
    return f"histogram_quantile({q}, sum by (le, {by}) ({rate(metric + '_bucket', extra)}))"


BY_MR = f"{MODEL}, {REGION}"
SUCCESS = f', {ERROR}=""'


class Layout:
    def __init__(self):
        self.next_id = 1
        self.x = 0
        self.y = 0
        self.row_h = 0
        self.panels = []

    def add(self, panel, w, h):
        if self.x + w > 24:
            self.x = 0
            self.y += self.row_h
            self.row_h = 0
        panel["id"] = self.next_id
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.next_id += 1
        self.x += w
        self.row_h = max(self.row_h, h)
        self.panels.append(panel)

    def row(self, title):
        if self.x:
            self.y += self.row_h
        self.x = 0
        self.row_h = 0
        self.add({"type": "row", "title": title, "collapsed": False, "panels": []}, 24, 1)
        self.x = 0
        self.y += 1
        self.row_h = 0


def targets(*exprs):
    out = []
    for i, (expr, legend) in enumerate(exprs):
        out.append(
            {
                "datasource": DS,
                "editorMode": "code",
                "expr": expr,
                "legendFormat": legend,
                "range": True,
                "refId": chr(ord("A") + i),
            }
        )
    return out


def timeseries(title, description, unit, *exprs, stack=False, max_=None):
    defaults = {
        "unit": unit,
        "custom": {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10 if stack else 0,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        },
    }
    if max_ is not None:
        defaults["min"] = 0
        defaults["max"] = max_
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "table", "placement": "right", "showLegend": True, "calcs": ["lastNotNull", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": targets(*exprs),
    }


def stat(title, description, unit, expr):
    # No thresholds: their `mode` is a string enum in @grafana/schema that a JSON string can't
    # be checked against; the alert rules carry the thresholds.
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DS,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "none",
            "graphMode": "area",
            "textMode": "auto",
        },
        "targets": targets((expr, "")),
    }


def dashboard():
    L = Layout()
    MR = "{{" + MODEL + "}} · {{" + REGION + "}}"

    L.row("Overview")
    L.add(stat("Calls / s", "Gateway calls per second (logical calls, retries not counted).", "reqps",
               sum_rate(CALLS + "_count", "")), 6, 4)
    L.add(stat("Error share", "Share of calls that failed (any error.type: non-2xx, transport, broken stream).",
               "percentunit", share(CALLS + "_count", "", f', {ERROR}!=""')), 6, 4)
    L.add(stat("429 share", "Share of calls that ended rate-limited (429) after any retries.", "percentunit",
               share(CALLS + "_count", "", f', {STATUS}="429"')), 6, 4)
    L.add(stat("p95 latency", "95th percentile of successful calls, until the body was read to its end.", "s",
               f"histogram_quantile(0.95, sum by (le) ({rate(CALLS + '_bucket', SUCCESS)}))"), 6, 4)

    L.row("Traffic and errors")
    L.add(timeseries("Request rate by model and region", "Logical calls per second.", "reqps",
                     (sum_rate(CALLS + "_count", BY_MR), MR)), 12, 8)
    L.add(timeseries("Error share by model and region",
                     "Share of calls with an error.type (SLO view). See the README's troubleshooting table for the fix per status.",
                     "percentunit", (share(CALLS + "_count", BY_MR, f', {ERROR}!=""'), MR), max_=1), 12, 8)
    L.add(timeseries("429 rate by model and region",
                     "429 answers per second as the gateway sent them (every attempt, including those a retry later rescued).",
                     "reqps", (sum_rate(ATTEMPTS + "_count", BY_MR, f', {STATUS}="429"'), MR)), 12, 8)
    L.add(timeseries("429 share of calls by model and region",
                     "Share of calls that ended with 429 after any retries: the per-model 60 s limit was hit. "
                     "Read the X-RateLimit-* headers, back off with jitter, or add fallback models.",
                     "percentunit", (share(CALLS + "_count", BY_MR, f', {STATUS}="429"'), MR), max_=1), 12, 8)
    L.add(timeseries("5xx rate by model, region and status",
                     "Calls that ended with a 5xx (transient: gateway or upstream provider). Retry with backoff and jitter.",
                     "reqps", (sum_rate(CALLS + "_count", f"{BY_MR}, {STATUS}", f', {STATUS}=~"5.."'),
                               MR + " · {{" + STATUS + "}}")), 12, 8)
    L.add(timeseries("4xx other than 429 by model, region and status",
                     "401/403: key or region; 400: payload; 404: model misspelled or not served in this region "
                     "(OpenAI models are US-only).",
                     "reqps", (sum_rate(CALLS + "_count", f"{BY_MR}, {STATUS}",
                                        f', {STATUS}=~"4..", {STATUS}!="429"'), MR + " · {{" + STATUS + "}}")), 12, 8)

    L.row("Latency and tokens")
    L.add(timeseries("Latency p50 / p95 / p99 per model",
                     "Successful calls, from sending the request to the end of the body (end of stream).", "s",
                     (quantile(0.5, CALLS, MODEL, SUCCESS), "p50 {{" + MODEL + "}}"),
                     (quantile(0.95, CALLS, MODEL, SUCCESS), "p95 {{" + MODEL + "}}"),
                     (quantile(0.99, CALLS, MODEL, SUCCESS), "p99 {{" + MODEL + "}}")), 12, 8)
    L.add(timeseries("Time to first chunk per model (streams)",
                     "Streamed calls: from sending the request to the first body bytes.", "s",
                     (quantile(0.5, TTFC, MODEL), "p50 {{" + MODEL + "}}"),
                     (quantile(0.95, TTFC, MODEL), "p95 {{" + MODEL + "}}")), 12, 8)
    L.add(timeseries("Tokens / s by type per model", "Input and output tokens the gateway reported in usage.",
                     "short", (sum_rate(TOKENS + "_sum", f"{MODEL}, {TOKEN_TYPE}"),
                               "{{" + MODEL + "}} · {{" + TOKEN_TYPE + "}}"), stack=True), 12, 8)
    served = sum_rate(CALLS + "_count", f"{MODEL}, {SERVED}", f', {SERVED}!=""')
    fallback = (
        f"{served} unless on ({MODEL}, {SERVED}) "
        f'label_replace({sum_rate(CALLS + "_count", MODEL)}, "{SERVED}", "$1", "{MODEL}", "(.*)")'
    )
    L.add(timeseries("Fallbacks: requested → served model",
                     "Calls served by another model than the one requested (the gateway's fallbacks).", "reqps",
                     (fallback, "{{" + MODEL + "}} → {{" + SERVED + "}}")), 12, 8)

    L.row("Retries and quota")
    L.add(timeseries("Retries by reason per model",
                     "Re-sends per second: retry_after (Retry-After), rate_limit_reset (X-RateLimit-Reset), "
                     "backoff (5xx, transport, or a hint shorter than the backoff), pacing, fallback (to another model).",
                     "reqps", (sum_rate(RETRIES, f"{MODEL}, {REASON}"), "{{" + MODEL + "}} · {{" + REASON + "}}"),
                     stack=True), 8, 8)
    L.add(timeseries("Retry amplification (attempts ÷ calls) per model and region",
                     "HTTP attempts per logical call. 1 = no retries. The gateway itself retries once with "
                     "fallback_config.retry; a client retry on top multiplies the load.",
                     "short", (f"{sum_rate(ATTEMPTS + '_count', BY_MR)} / {sum_rate(CALLS + '_count', BY_MR)}",
                               MR)), 8, 8)
    L.add(timeseries("Quota headroom (remaining ÷ limit) per model and region",
                     "X-RateLimit-Remaining ÷ X-RateLimit-Limit of the latest answer. Near 0: the next calls get 429.",
                     "percentunit", (f"min by ({BY_MR}) ({sel(RL_REMAINING)} / {sel(RL_LIMIT)})", MR), max_=1), 8, 8)
    L.add(timeseries("Time to rate-limit reset per model and region",
                     "X-RateLimit-Reset of the latest answer: seconds until the model's 60 s window resets.", "s",
                     (f"max by ({BY_MR}) ({sel(RL_RESET)})", MR)), 24, 6)

    var_common = {
        "datasource": DS,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"text": ["All"], "value": ["$__all"]},
        "refresh": 2,
        "sort": 1,
        "hide": 0,
        "type": "query",
        "regex": "",
        "options": [],
    }
    return {
        "title": "LLM Gateway overview",
        "uid": "llm-gateway-overview",
        "description": "Calls to AssemblyAI's LLM Gateway as measured by llm-gateway-otel: traffic, 429/5xx by model "
                       "and region, latency, tokens, fallbacks, retries and quota headroom.",
        "tags": ["llm-gateway", "gen_ai", "opentelemetry"],
        "editable": True,
        "graphTooltip": 1,
        "timezone": "browser",
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "schemaVersion": 42,
        "version": 1,
        "links": [],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {"text": "default", "value": "default"},
                    "hide": 0,
                    "includeAll": False,
                    "multi": False,
                    "options": [],
                    "refresh": 1,
                    "regex": "",
                },
                dict(var_common, name="model", label="Model",
                     query={"query": f"label_values({CALLS}_count, {MODEL})", "refId": "PrometheusVariableQueryEditor-VariableQuery",
                            "qryType": 1}),
                dict(var_common, name="region", label="Region",
                     query={"query": f'label_values({CALLS}_count{{{MODEL}=~"$model"}}, {REGION})',
                            "refId": "PrometheusVariableQueryEditor-VariableQuery", "qryType": 1}),
            ]
        },
        "panels": L.panels,
    }


def render():
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    text = render()
    if sys.argv[1:] == ["--check"]:
        if OUT.read_text(encoding="utf-8") != text:
            sys.exit(f"{OUT.name} is stale: run python3 dashboards/generate.py")
        sys.exit(0)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
