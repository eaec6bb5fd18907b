#!/usr/bin/env python3
"""Writes dashboards/llm-gateway-overview.json (the Grafana dashboard) and dashboards/alerts.yml
(the Prometheus alert rules).

Every PromQL expression is built here from the few metric and label names below, so a
renamed metric is changed in one place; `cargo test` checks that each name a panel or alert
queries is one the crate emits (tests/all/dashboards.rs), the e2e test runs every query
against a real Prometheus fed by the crate over OTLP (tests/all/e2e.rs), and
`promtool test rules dashboards/alerts.test.yml` unit-tests when each rule fires.

    python3 dashboards/generate.py          # rewrite the JSON and the alert rules
    python3 dashboards/generate.py --check  # exit 1 if either committed file is not what this writes
    python3 dashboards/generate.py --spend-budget-usd-per-hour 50   # your own spend budget
"""

import argparse
import json
import math
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "llm-gateway-overview.json"
ALERTS_OUT = HERE / "alerts.yml"

# The spend budget of the LlmGatewaySpendOverBudget alert, in USD per hour: the one place it is
# set (or regenerate with --spend-budget-usd-per-hour N). dashboards/alerts.test.yml assumes 10.
SPEND_BUDGET_USD_PER_HOUR = 10.0

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
TPOC = "gen_ai_client_operation_time_per_output_chunk_seconds"  # streams with ≥ 2 chunks
COST = "llm_gateway_client_cost_usd_total"  # USD, priced at the served model
USAGE_MISSING = "llm_gateway_client_usage_missing_total"  # 2xx answers that ended without usage

MODEL = "gen_ai_request_model"
SERVED = "gen_ai_response_model"
REGION = "llm_gateway_region"
STATUS = "http_response_status_code"
ERROR = "error_type"
TOKEN_TYPE = "gen_ai_token_type"
REASON = "llm_gateway_retry_reason"
STREAMED = "llm_gateway_response_streamed"

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


def ratio(num, den):
    """`num` ÷ `den`, 0 (not absent) where `den` has data and `num` has none."""
    return f"({num} or {den} * 0) / {den}"


def share(metric, by, extra):
    """Share of `metric`'s rate that matches `extra`, 0 (not absent) where nothing matched."""
    return ratio(sum_rate(metric, by, extra), sum_rate(metric, by))


def per_hour(metric, by, extra=""):
    """A counter's rate per hour (spend in USD/h from the USD counter)."""
    return f"{sum_rate(metric, by, extra)} * 3600"


def quantile(q, metric, by, extra=""):
    return f"histogram_quantile({q}, sum by (le, {by}) ({rate(metric + '_bucket', extra)}))"


BY_MR = f"{MODEL}, {REGION}"
SUCCESS = f', {ERROR}=""'
STATUS_5XX = f', {STATUS}=~"5.."'


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
    MRS = MR + " · {{" + STATUS + "}}"
    L.add(timeseries("5xx per attempt by model, region and status",
                     "Per attempt: 5xx answers per second as the gateway sent them (every attempt, including those "
                     "a retry later rescued). Transient gateway or upstream-provider failures; the per-call panel "
                     "beside it shows which ones the retries did not clear.",
                     "reqps", (sum_rate(ATTEMPTS + "_count", f"{BY_MR}, {STATUS}", STATUS_5XX), MRS)), 12, 8)
    L.add(timeseries("5xx rate of calls (after retries) by model, region and status",
                     "Per call, after retries: calls per second that ended with a 5xx, i.e. the retries (if any) did "
                     "not rescue them. Retry with backoff and jitter, or add fallbacks to another provider's model.",
                     "reqps", (sum_rate(CALLS + "_count", f"{BY_MR}, {STATUS}", STATUS_5XX), MRS)), 12, 8)
    L.add(timeseries("4xx other than 429 by model, region and status",
                     "401/403: key or region; 400: payload; 404: model misspelled or not served in this region "
                     "(OpenAI models are US-only).",
                     "reqps", (sum_rate(CALLS + "_count", f"{BY_MR}, {STATUS}",
                                        f', {STATUS}=~"4..", {STATUS}!="429"'), MRS)), 24, 8)

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

    L.row("Spend")
    priced = ("Priced from the rate table (LLM_GATEWAY_PRICES) at the model that served each call; calls to a model "
              "without a price, or whose usage is unknown, are not counted.")
    L.add(stat("Total spend (USD/h)", f"Spend per hour over the selected models and regions. {priced}",
               "currencyUSD", per_hour(COST, "")), 6, 8)
    L.add(timeseries("Spend per model (USD/h)",
                     f"Spend per hour by the model that served the call (after fallbacks). {priced} The alert "
                     "LlmGatewaySpendOverBudget fires when the total is over the budget set in dashboards/generate.py.",
                     "currencyUSD", (per_hour(COST, SERVED), "{{" + SERVED + "}}"), stack=True), 10, 8)
    L.add(timeseries("Spend by token type (USD/h)",
                     "Spend per hour by token type: input, cache_read (cached input at its own rate), cache_write "
                     "and output. " + priced,
                     "currencyUSD", (per_hour(COST, TOKEN_TYPE), "{{" + TOKEN_TYPE + "}}"), stack=True), 8, 8)

    L.row("Streams")
    L.add(timeseries("Time per output chunk p50 / p95 per model (streams)",
                     "Streams with at least two chunks: (end of stream − first chunk) ÷ (chunks − 1).", "s",
                     (quantile(0.5, TPOC, MODEL), "p50 {{" + MODEL + "}}"),
                     (quantile(0.95, TPOC, MODEL), "p95 {{" + MODEL + "}}")), 8, 8)
    L.add(timeseries("Answers without usage / s by model, region and streamed",
                     "2xx answers (streamed or not) that ended without a usage report: their tokens and cost are "
                     "unknown (the span has llm_gateway.usage.source = missing), so the token and spend panels "
                     "undercount by this much.",
                     "reqps", (sum_rate(USAGE_MISSING, f"{BY_MR}, {STREAMED}"),
                               MR + " · streamed={{" + STREAMED + "}}")), 8, 8)
    L.add(timeseries("Share of 2xx calls without usage by model and region",
                     "Answers without a usage report ÷ calls that got a 2xx: the share of successful calls whose "
                     "tokens and cost are unknown.",
                     "percentunit", (ratio(sum_rate(USAGE_MISSING, BY_MR),
                                           sum_rate(CALLS + "_count", BY_MR, f', {STATUS}=~"2.."')), MR),
                     max_=1), 8, 8)

    L.row("Retries and quota")
    L.add(timeseries("Retries by reason per model",
                     "Re-sends per second: retry_after (Retry-After), rate_limit_reset (X-RateLimit-Reset), "
                     "backoff (5xx, transport, or a hint shorter than the backoff), pacing, fallback (to another model).",
                     "reqps", (sum_rate(RETRIES, f"{MODEL}, {REASON}"), "{{" + MODEL + "}} · {{" + REASON + "}}"),
                     stack=True), 8, 8)
    L.add(timeseries("Retry amplification (attempts ÷ calls) per model and region",
                     "HTTP attempts per logical call. 1 = no retries. The gateway itself retries once with "
                     "fallback_config.retry; a client retry on top multiplies the load. (A window that holds a "
                     "call's attempts but not yet its end reads high; one without ended calls shows nothing, not +Inf.)",
                     "short", (f"{sum_rate(ATTEMPTS + '_count', BY_MR)} / ({sum_rate(CALLS + '_count', BY_MR)} > 0)",
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
                       "and region (per attempt and per call), latency, tokens, fallbacks, spend, streams, retries "
                       "and quota headroom.",
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


# ---- alert rules ----------------------------------------------------------------------------
# Plain Prometheus rules (no template variables): per model and region over a fixed window, each
# `<query> <op> <threshold>` so the e2e test can run the query alone and compare.

ALERT_WINDOW = "5m"
SPEND_WINDOW = "1h"  # spend over the last hour against a budget per hour
LM = "{{ $labels." + MODEL + " }}"
LR = "{{ $labels." + REGION + " }}"
ALERTS_HEADER = """\
# Prometheus alert rules for calls to AssemblyAI's LLM Gateway, measured by llm-gateway-otel.
# Written by dashboards/generate.py: edit that, not this file (the spend budget is
# SPEND_BUDGET_USD_PER_HOUR there, or `--spend-budget-usd-per-hour N`).
#
# Metric names are those an OTLP collector with Prometheus naming produces from the crate's
# instruments (see the README, "Metrics and dashboards"). No rule relies on `job` or
# `instance`: the OTLP path has neither. Every expression is `<query> <op> <threshold>`:
# the e2e test runs each query against a real Prometheus fed by the crate (tests/all/e2e.rs),
# and `promtool test rules dashboards/alerts.test.yml` unit-tests when each rule fires.
#
#   promtool check rules dashboards/alerts.yml
#   promtool test rules dashboards/alerts.test.yml
"""


def alert_rate(metric, extra="", window=ALERT_WINDOW):
    matchers = f"{{{extra}}}" if extra else ""
    return f"rate({metric}{matchers}[{window}])"


def alert_sum_rate(metric, extra=""):
    return f"sum by ({BY_MR}) ({alert_rate(metric, extra)})"


def usd(amount):
    """A USD amount as PromQL and people read it: 10, 12.5, 0.005."""
    return f"{amount:.6f}".rstrip("0").rstrip(".")


def rule(name, expr, for_, severity, summary, description):
    return {"alert": name, "expr": expr, "for": for_, "severity": severity, "summary": summary,
            "description": description}


def alert_rules(budget):
    attempts = ATTEMPTS + "_count"
    calls = CALLS + "_count"
    return [
        rule("LlmGatewayHigh429Share",
             [alert_sum_rate(calls, f'{STATUS}="429"'), f"/ {alert_sum_rate(calls)}", "> 0.1"],
             "10m", "warning",
             f"{LM} in {LR}: {{{{ $value | humanizePercentage }}}} of LLM Gateway calls end rate-limited (429)",
             [f"More than 10% of calls to {LM} (region {LR})",
              "failed with 429 over the last 5 minutes, after any client retries. The gateway limits each",
              "model per 60 s window (about 30 requests/min/model on paid accounts).",
              "Fix: read X-RateLimit-Remaining / X-RateLimit-Reset and back off with jitter until the",
              "reset; honour Retry-After; spread load over `fallbacks` models; ask support for a higher",
              "limit. The span's llm_gateway.rate_limit.* attributes and the dashboard's \"Quota",
              "headroom\" panel show how close each model runs to its limit."]),
        rule("LlmGatewayHigh5xxShare",
             [alert_sum_rate(calls, f'{STATUS}=~"5.."'), f"/ {alert_sum_rate(calls)}", "> 0.05"],
             "5m", "critical",
             f"{LM} in {LR}: {{{{ $value | humanizePercentage }}}} of LLM Gateway calls end with a 5xx "
             "(per call, after retries)",
             ["Per call, after retries: more than 5% of calls to " + LM,
              f"(region {LR}) ended with a 500/502/503/504 over the last 5 minutes: no retry",
              "rescued them, the caller got the error. (LlmGatewayHigh5xxAttemptShare watches every 5xx",
              "the gateway sent, including those a retry rescued.) These are transient gateway or",
              "upstream-provider failures (llm_gateway.llm_status_code on the span tells which).",
              "Fix: retry with exponential backoff and jitter, configure `fallbacks` to another",
              "provider's model; if it persists, contact support with the request_id, model, region,",
              "timestamp, status code and error body from the failing spans (the middleware records",
              "all of them, key redacted)."]),
        rule("LlmGatewayHigh5xxAttemptShare",
             [alert_sum_rate(attempts, f'{STATUS}=~"5.."'), f"/ {alert_sum_rate(attempts)}", "> 0.1"],
             "10m", "warning",
             f"{LM} in {LR}: {{{{ $value | humanizePercentage }}}} of HTTP attempts to the LLM Gateway get a 5xx "
             "(per attempt, retried or not)",
             ["Per attempt: more than 10% of the HTTP attempts to " + LM,
              f"(region {LR}) got a 500/502/503/504 over the last 5 minutes. This counts every",
              "5xx the gateway sent, including those a retry rescued, so it fires while calls may still",
              "succeed: the gateway or the upstream provider is degraded, and every rescued call paid",
              "for it in attempts and latency. LlmGatewayHigh5xxShare (per call, after retries) says",
              "whether callers see the errors. Fix: see the dashboard panels \"5xx per attempt\" and",
              "\"Retry amplification\"; configure `fallbacks` to another provider's model; if it persists,",
              "contact support with the request_id, model, region, timestamp and status code from the",
              "spans (each attempt is a child span of its call)."]),
        rule("LlmGatewayRateLimitNearlyExhausted",
             [f"min by ({BY_MR}) ({RL_REMAINING} / {RL_LIMIT})", "< 0.1"],
             "2m", "warning",
             f"{LM} in {LR}: only {{{{ $value | humanizePercentage }}}} of the rate limit left",
             [f"The latest answers for {LM} (region {LR})",
              "report X-RateLimit-Remaining below 10% of X-RateLimit-Limit: the next calls in this",
              "60 s window will get 429s. Fix: slow down or queue until X-RateLimit-Reset (dashboard",
              "panel \"Time to rate-limit reset\"), spread traffic over `fallbacks` models, or ask",
              "support for a higher per-model limit."]),
        rule("LlmGatewayRetryAmplification",
             [alert_sum_rate(attempts), f"/ {alert_sum_rate(calls)}", "> 1.5"],
             "10m", "warning",
             f'{LM} in {LR}: {{{{ $value | printf "%.2f" }}}} HTTP attempts per call',
             [f"Calls to {LM} (region {LR}) take on",
              "average more than 1.5 HTTP attempts: client retries multiply the load on a gateway that is",
              "already rate-limiting (429) or failing (5xx), and the gateway itself already retries once",
              "when fallback_config.retry is true. Fix: see the \"Retries by reason\" panel; for",
              "retry_after / rate_limit_reset reduce the request rate or add fallback models, for",
              "backoff see the 5xx alert; lower the client's retry budget."]),
        rule("LlmGatewaySpendOverBudget",
             [f"sum({alert_rate(COST, window=SPEND_WINDOW)}) * 3600", f"> {usd(budget)}"],
             "5m", "warning",
             f'LLM Gateway spend is {{{{ $value | printf "%.2f" }}}} USD/h, over the budget of {usd(budget)} USD/h',
             ['Over the last hour, calls to the LLM Gateway cost {{ $value | printf "%.2f" }} USD, more than',
              f"the budget of {usd(budget)} USD per hour (all models and regions; priced from the rate table",
              "in LLM_GATEWAY_PRICES at the model that served each call). The dashboard panel",
              "\"Spend per model (USD/h)\" shows which model spends it, \"Spend by token type (USD/h)\"",
              "which tokens. The budget is set in one place, SPEND_BUDGET_USD_PER_HOUR in",
              "dashboards/generate.py: change it there and rerun the generator, or run",
              "`python3 dashboards/generate.py --spend-budget-usd-per-hour N` to rewrite this file."]),
    ]


def render_alerts(budget):
    out = [ALERTS_HEADER.rstrip("\n"), "groups:", "  - name: llm-gateway", "    rules:"]
    for i, r in enumerate(alert_rules(budget)):
        if i:
            out.append("")
        out += [f"      - alert: {r['alert']}", "        expr: |", f"          {r['expr'][0]}"]
        out += [f"            {line}" for line in r["expr"][1:]]
        out += [f"        for: {r['for']}", "        labels:", f"          severity: {r['severity']}",
                "          component: llm-gateway", "        annotations:",
                f"          summary: {json.dumps(r['summary'], ensure_ascii=False)}", "          description: |"]
        out += [f"            {line}" for line in r["description"]]
    return "\n".join(out) + "\n"


def positive_usd(text):
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"not a positive amount of USD: {text}")
    return value


def main():
    parser = argparse.ArgumentParser(description="Write the Grafana dashboard and the Prometheus alert rules.")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a written file is not what this would write (nothing is written)")
    parser.add_argument("--spend-budget-usd-per-hour", type=positive_usd, default=SPEND_BUDGET_USD_PER_HOUR,
                        metavar="N", help=f"budget of LlmGatewaySpendOverBudget (default {usd(SPEND_BUDGET_USD_PER_HOUR)})")
    args = parser.parse_args()
    files = [(OUT, render()), (ALERTS_OUT, render_alerts(args.spend_budget_usd_per_hour))]
    if args.check:
        stale = [path.name for path, text in files
                 if not path.exists() or path.read_text(encoding="utf-8") != text]
        if stale:
            sys.exit(f"stale: {', '.join(stale)}: run python3 dashboards/generate.py")
        sys.exit(0)
    for path, text in files:
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
