#!/usr/bin/env python3
"""Renders what the Grafana dashboard shows for one real e2e run, from Prometheus query results.

No Grafana here: every panel's every target runs as a Prometheus range query
(/api/v1/query_range) against the test pipeline's Prometheus, with the dashboard's variables
interpolated the way Grafana does with "All" selected and every selector scoped to one run
(`service_instance_id="<run>"`), and the results are plotted with matplotlib on the dashboard's
24-column grid. The image says so on its face: it is not a Grafana screenshot.

    scripts/render-dashboard.py                       # a fresh run: start the pipeline if needed,
                                                      # run the e2e test, render its time window
    scripts/render-dashboard.py --run e2e-123-1700000000000000000 [--start T --end T]
    scripts/render-dashboard.py --repo /path/to/checkout [--out docs/dashboard.png]

Options worth knowing: --step / --rate-interval (default: Grafana's own rule from
--scrape-interval, 1 s = the e2e's export interval), --dashboard FILE, --prometheus URL,
--width PX. T is unix seconds or RFC 3339. A summary of every panel (series, points, and
what looks empty or odd) is printed on stdout.

matplotlib is installed on first use into a venv beside the pipeline
(`$(scripts/pipeline.sh dir)/render-venv`); the script then re-runs itself there. Not part of CI.
"""

import argparse
import datetime as dt
import json
import math
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

MATPLOTLIB = "matplotlib==3.10.7"
SELF = Path(__file__).resolve()
ROOT = SELF.parent.parent
RUN_LABEL = "service_instance_id"
E2E_TEST = "e2e::every_dashboard_and_alert_query_returns_data_from_a_real_pipeline"
LABEL_TEXT = ("Rendered by scripts/render-dashboard.py from Prometheus query results of a real run "
              "({run}, {range}) — not a Grafana screenshot")


def log(msg):
    print(f"[render] {msg}", file=sys.stderr, flush=True)


def die(msg):
    log(f"ERROR: {msg}")
    sys.exit(1)


# ---- arguments ------------------------------------------------------------------------


def parse_time(text):
    try:
        return float(text)
    except ValueError:
        pass
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not unix seconds nor RFC 3339: {text!r}")
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.timestamp()


DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")


def parse_duration(text):
    m = DURATION.match(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration (e.g. 500ms, 4s, 1m): {text!r}")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def prom_duration(seconds):
    """A duration PromQL accepts (integer milliseconds)."""
    return f"{max(1, round(seconds * 1000))}ms"


def arguments():
    p = argparse.ArgumentParser(
        description="Render the Grafana dashboard from a real run's Prometheus query results (not a Grafana screenshot).")
    p.add_argument("--run", help="render this existing run (its service_instance_id); without it, a fresh e2e run is made")
    p.add_argument("--start", type=parse_time, help="with --run: range start (unix s or RFC 3339); default: the run's first sample")
    p.add_argument("--end", type=parse_time, help="with --run: range end; default: the run's last sample")
    p.add_argument("--repo", type=Path, default=ROOT,
                   help="checkout whose e2e test runs and whose dashboard is rendered (default: %(default)s)")
    p.add_argument("--dashboard", type=Path, help="dashboard JSON (default: REPO/dashboards/llm-gateway-overview.json)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png", help="PNG to write (default: %(default)s)")
    p.add_argument("--prometheus", help="Prometheus base URL (default: http://$LLM_GATEWAY_PROMETHEUS_ADDR or 127.0.0.1:9090)")
    p.add_argument("--scrape-interval", type=parse_duration, default=1.0,
                   help="the data's sample interval, Grafana's 'scrape interval' (default 1s: the e2e exports every second)")
    p.add_argument("--step", type=parse_duration, help="query step (default: Grafana's $__interval: max(scrape interval, range / 500))")
    p.add_argument("--rate-interval", type=parse_duration,
                   help="what $__rate_interval becomes (default: Grafana's max($__interval + scrape interval, 4 × scrape interval))")
    p.add_argument("--width", type=int, default=2200, help="image width in pixels (default %(default)s)")
    p.add_argument("--legend-max", type=int, default=10,
                   help="legend rows per panel; more series: the top ones by last value and '+N more' (default %(default)s)")
    return p.parse_args()


# ---- matplotlib in its own venv --------------------------------------------------------


def pipeline(*args, capture=True):
    cmd = ["bash", str(ROOT / "scripts" / "pipeline.sh"), *args]
    if capture:
        return subprocess.run(cmd, capture_output=True, text=True)
    return subprocess.run(cmd)


def ensure_matplotlib():
    """Re-runs this script with the render venv's Python (made and filled on first use)."""
    out = pipeline("dir")
    if out.returncode != 0:
        die(f"scripts/pipeline.sh dir failed: {out.stderr.strip()}")
    venv = Path(out.stdout.strip()) / "render-venv"
    python = venv / "bin" / "python"
    if Path(sys.prefix).resolve() == venv.resolve():
        return
    if os.environ.get("RENDER_DASHBOARD_REEXEC"):
        die(f"re-ran in {venv} but it is not the interpreter's prefix ({sys.prefix})")
    check = subprocess.run([str(python), "-c", "import matplotlib"], capture_output=True) if python.exists() else None
    if check is None or check.returncode != 0:
        log(f"installing {MATPLOTLIB} into {venv} (once)")
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", MATPLOTLIB], check=True)
    os.environ["RENDER_DASHBOARD_REEXEC"] = "1"
    os.execv(str(python), [str(python), str(SELF), *sys.argv[1:]])


# ---- PromQL: Grafana's interpolation and the run matcher --------------------------------

# A port of tests/all/promql.rs (refs / with_matcher): which spans of a query are vector
# selectors, so a matcher can be added to each one.
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
            "group_right", "inf", "nan", "sum", "min", "max", "avg", "count", "group", "stddev", "stdvar",
            "topk", "bottomk", "quantile", "count_values", "limitk", "limit_ratio"}
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}


def _ident_start(c):
    return c.isascii() and (c.isalpha() or c in "_:")


def _ident_char(c):
    return c.isascii() and (c.isalnum() or c in "_:")


def _skip_string(s, i):
    quote, j = s[i], i + 1
    while j < len(s):
        if s[j] == "\\" and quote != "`":
            j += 2
            continue
        if s[j] == quote:
            return j + 1
        j += 1
    raise ValueError(f"unterminated string in {s!r}")


def _skip_ws(s, i):
    while i < len(s) and s[i].isspace():
        i += 1
    return i


def _read_ident(s, i):
    j = i
    while j < len(s) and _ident_char(s[j]):
        j += 1
    return s[i:j], j


def _read_matchers(s, i):
    """Label names of `{...}` starting at the brace at i, and the index past `}`."""
    assert s[i] == "{"
    i += 1
    labels = []
    while True:
        i = _skip_ws(s, i)
        c = s[i] if i < len(s) else None
        if c == "}":
            return labels, i + 1
        if c == ",":
            i += 1
        elif c is not None and _ident_start(c):
            name, i = _read_ident(s, i)
            labels.append(name)
            i = _skip_ws(s, i)
            while i < len(s) and s[i] in "=!~":
                i += 1
            i = _skip_ws(s, i)
            if i >= len(s) or s[i] not in "\"'`":
                raise ValueError(f"matcher without a string value in {s!r}")
            i = _skip_string(s, i)
        else:
            raise ValueError(f"unexpected {c!r} in the matchers of {s!r}")


def selectors(expr):
    """(metric, name_end, brace) of every vector selector; brace is the `{` index or None."""
    s, i, out = expr, 0, []
    while i < len(s):
        c = s[i]
        if c in "\"'`":
            i = _skip_string(s, i)
        elif c == "[":  # a range or subquery: [5m], [$__rate_interval], [1h:5m]
            j = s.find("]", i)
            if j < 0:
                raise ValueError(f"unclosed [ in {s!r}")
            i = j + 1
        elif c == "#":
            j = s.find("\n", i)
            i = len(s) if j < 0 else j
        elif c.isdigit() or (c == "." and i + 1 < len(s) and s[i + 1].isdigit()):
            while i < len(s) and (s[i].isalnum() or s[i] == "."):
                i += 1
        elif c == "{":  # no metric name: {__name__=~"..."}
            _, j = _read_matchers(s, i)
            out.append(("", i, i))
            i = j
        elif _ident_start(c):
            name, j = _read_ident(s, i)
            k = _skip_ws(s, j)
            nxt = s[k] if k < len(s) else None
            lower = name.lower()
            if lower in LABEL_LISTS:
                if nxt == "(":
                    i = s.index(")", k) + 1
                else:
                    i = j
            elif lower in KEYWORDS or nxt == "(":
                i = j  # an operator keyword, a function or an aggregation
            elif nxt == "{":
                _, end = _read_matchers(s, k)
                out.append((name, j, k))
                i = end
            else:
                out.append((name, j, None))
                i = j
        else:
            i += 1
    return out


def with_matcher(expr, label, value):
    """`expr` with `label="value"` added to every selector."""
    out = expr
    for _, name_end, brace in sorted(selectors(expr), key=lambda t: t[1], reverse=True):
        if brace is not None:
            out = out[:brace + 1] + f'{label}="{value}", ' + out[brace + 1:]
        else:
            out = out[:name_end] + f'{{{label}="{value}"}}' + out[name_end:]
    return out


def _self_test():
    e = ('sum by (a, b) (rate(m_total{x=~"$model", y!="q{z}"}[$__rate_interval])) / on (a) c '
         'unless label_replace(d, "l", "$1", "k", "(.*)") > 0.5')
    assert [m for m, _, _ in selectors(e)] == ["m_total", "c", "d"], selectors(e)
    r = with_matcher(e, "run", "7")
    assert 'm_total{run="7", x=~"$model"' in r, r
    assert 'on (a) c{run="7"} unless' in r, r
    assert 'label_replace(d{run="7"}, "l"' in r, r
    assert len(selectors(r)) == 3
    assert with_matcher("up", "r", "1") == 'up{r="1"}'
    assert with_matcher('{__name__="up"} offset 5m', "r", "1") == '{r="1", __name__="up"} offset 5m'
    assert with_matcher("histogram_quantile(0.9, x_bucket{})", "r", "1") == 'histogram_quantile(0.9, x_bucket{r="1", })'


_self_test()


def interpolate(expr, variables):
    """Grafana's interpolation of dashboard variables (and the built-in interval ones):
    `$name`, `${name}`, `${name:format}`, `[[name]]`; unknown names (like `$1`) stay."""
    pattern = r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)(?::\w+)?\]\]|\$(\w+)"
    return re.sub(pattern, lambda m: variables.get(m.group(1) or m.group(2) or m.group(3), m.group(0)), expr)


def dashboard_variables(dashboard, step, rate_interval, range_s):
    """What each variable becomes with "All" selected (custom / constant: their current value)."""
    out = {
        "__rate_interval": prom_duration(rate_interval),
        "__interval": prom_duration(step),
        "__interval_ms": str(round(step * 1000)),
        "__range": prom_duration(range_s),
        "__range_s": str(round(range_s)),
        "__range_ms": str(round(range_s * 1000)),
    }
    for v in dashboard.get("templating", {}).get("list", []):
        kind, name = v.get("type"), v.get("name")
        if not name or kind == "datasource":
            continue
        if kind in ("query", "custom") and v.get("includeAll"):
            out[name] = v.get("allValue") or ".*"
        else:
            cur = v.get("current", {}).get("value")
            if isinstance(cur, list):
                cur = "|".join(cur)
            if cur is None:
                cur = v.get("query", "")
            out[name] = ".*" if cur == "$__all" else str(cur)
    return out


# ---- Prometheus ------------------------------------------------------------------------


class PromError(Exception):
    pass


class Prometheus:
    def __init__(self, base):
        self.base = base.rstrip("/")

    def get(self, path, params):
        url = f"{self.base}{path}?{urllib.parse.urlencode(params, doseq=True)}"
        try:
            with urllib.request.urlopen(url, timeout=60) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            try:
                body = json.load(e)
            except Exception:
                raise PromError(f"HTTP {e.code} from {path}")
        except urllib.error.URLError as e:
            raise PromError(f"Prometheus at {self.base} does not answer ({e.reason}): run scripts/pipeline.sh start")
        if body.get("status") != "success":
            raise PromError(f"{body.get('errorType', '?')}: {body.get('error', body)}")
        return body["data"]

    def instant(self, query, at):
        return self.get("/api/v1/query", {"query": query, "time": f"{at:.3f}"})

    def range(self, query, start, end, step):
        data = self.get("/api/v1/query_range", {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}",
                                                "step": f"{step:g}"})
        return data["result"]


def run_window(prom, run):
    """Timestamps of the run's first and last sample (over every series it wrote)."""
    now = time.time()
    m = re.fullmatch(r"e2e-\d+-(\d{16,20})", run)
    lo = int(m.group(1)) / 1e9 - 120 if m else now - 6 * 3600
    hi = min(now, lo + 6 * 3600)
    sel = f'{RUN_LABEL}="{run}"'
    names = prom.get("/api/v1/label/__name__/values",
                     {"match[]": f"{{{sel}}}", "start": f"{lo:.0f}", "end": f"{hi:.0f}"})
    if not names:
        return None

    def extreme(fn, lo, hi, res):
        # timestamp() of a selector is each sample's own timestamp (of anything else it would be
        # the evaluation time); one metric name at a time, since it drops the name.
        found = []
        for name in names:
            q = (f"{fn}({fn}_over_time(timestamp({name}{{{sel}}})"
                 f"[{prom_duration(max(res, hi - lo))}:{prom_duration(res)}]))")
            found += [float(r["value"][1]) for r in prom.instant(q, hi)["result"]]
        return (min if fn == "min" else max)(found) if found else None

    res = max(1.0, math.ceil((hi - lo) / 2000))
    first = extreme("min", lo, hi, res)
    last = extreme("max", lo, hi, res)
    if first is None or last is None:
        return None
    if res > 1:  # refine the first sample (the last one is exact: the lookback carries it)
        first = extreme("min", first - res - 1, first + 1, 1.0) or first
    return first, last


def newest_run_since(prom, since):
    """The newest e2e run id whose start (the nanoseconds in its id) is after `since`."""
    data = prom.get(f"/api/v1/label/{RUN_LABEL}/values", {"start": f"{since - 60:.0f}", "end": f"{time.time() + 60:.0f}"})
    runs = [(int(m.group(1)), v) for v in data if (m := re.fullmatch(r"e2e-\d+-(\d+)", v)) and int(m.group(1)) / 1e9 >= since - 5]
    return max(runs)[1] if runs else None


# ---- a fresh run -----------------------------------------------------------------------


def fresh_run(repo, prom):
    if pipeline("status").returncode != 0:
        log("the pipeline is not running: scripts/pipeline.sh install + start")
        if pipeline("install", capture=False).returncode != 0 or pipeline("start", capture=False).returncode != 0:
            die("could not start the pipeline (scripts/pipeline.sh)")
    cmd = ["cargo", "test", "--test", "all", E2E_TEST, "--", "--nocapture"]
    env = dict(os.environ, LLM_GATEWAY_E2E="1")
    log(f"running in {repo}: LLM_GATEWAY_E2E=1 {' '.join(cmd)}"
        + (f" (CARGO_TARGET_DIR={env['CARGO_TARGET_DIR']})" if env.get("CARGO_TARGET_DIR") else ""))
    started = time.time()
    proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run = None
    for line in proc.stdout:
        sys.stderr.write(line)
        m = re.search(r"e2e: run (\S+?);", line)
        if m:
            run = m.group(1)
    ok = proc.wait() == 0
    if run is None:
        run = newest_run_since(prom, started)
        if run is None:
            die("the e2e test printed no run id and Prometheus has no run that started since")
        log(f"the e2e test printed no run id; the newest run in Prometheus since it started is {run}")
    if not ok:
        log(f"WARNING: the e2e test failed (exit {proc.returncode}); rendering its run {run} anyway")
    return run, ok


# ---- what each panel shows -------------------------------------------------------------


def legend_name(legend_format, labels, expr):
    """Grafana's series name: the target's legendFormat with `{{label}}` filled in, else the labels."""
    if legend_format and legend_format != "__auto":
        return re.sub(r"\{\{\s*([\w.]+)\s*\}\}", lambda m: labels.get(m.group(1), ""), legend_format)
    shown = {k: v for k, v in labels.items() if k != RUN_LABEL}
    name = shown.pop("__name__", "")
    if not shown:
        return name or expr
    return name + "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(shown.items())) + "}"


def walk_panels(panels):
    """Top-level panels in grid order, a collapsed row's panels laid out below it as if expanded."""
    out, shift = [], 0
    for p in sorted(panels, key=lambda p: (p.get("gridPos", {}).get("y", 0), p.get("gridPos", {}).get("x", 0))):
        g = dict(p.get("gridPos", {"x": 0, "y": 0, "w": 24, "h": 8}))
        g["y"] += shift
        out.append((p, g))
        nested = p.get("panels") or []
        if p.get("type") == "row" and nested:
            top = min(n["gridPos"]["y"] for n in nested)
            bottom = max(n["gridPos"]["y"] + n["gridPos"]["h"] for n in nested)
            for n in nested:
                ng = dict(n["gridPos"])
                ng["y"] = g["y"] + g["h"] + ng["y"] - top
                out.append((n, ng))
            shift += bottom - top
    return out


def query_panel(prom, panel, variables, run, start, end, step):
    """Every target's range-query result: a list of {name, ref, t[], v[]} and the errors."""
    series, errors, queries = [], [], []
    for t in panel.get("targets", []):
        if t.get("hide"):
            continue
        expr = t.get("expr")
        if not expr:
            continue
        q = with_matcher(interpolate(expr, variables), RUN_LABEL, run)
        queries.append((t.get("refId", "?"), q))
        try:
            result = prom.range(q, start, end, step)
        except PromError as e:
            errors.append(f"{t.get('refId', '?')}: {e}")
            continue
        for r in result:
            ts = [float(x[0]) for x in r["values"]]
            vs = [float(x[1]) for x in r["values"]]  # "NaN", "+Inf" parse as floats
            series.append({"name": legend_name(t.get("legendFormat"), r["metric"], expr), "ref": t.get("refId", "?"),
                           "t": ts, "v": vs})
    return series, errors, queries


def finite(vs):
    return [v for v in vs if math.isfinite(v)]


def reduce(vs, calc):
    f = finite(vs)
    if not f:
        return None
    if calc in ("lastNotNull", "last"):
        return f[-1]
    if calc in ("firstNotNull", "first"):
        return f[0]
    return {"max": max, "min": min, "mean": lambda x: sum(x) / len(x), "sum": sum, "range": lambda x: max(x) - min(x),
            "count": len, "delta": lambda x: x[-1] - x[0]}.get(calc, lambda x: x[-1])(f)


# ---- units -----------------------------------------------------------------------------


def _num(v, sig=3):
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    decimals = max(0, sig - 1 - math.floor(math.log10(a)))
    s = f"{v:.{min(decimals, 6)}f}"
    return s.rstrip("0").rstrip(".") if "." in s else s


def _si(v, suffixes=("", "K", "M", "B", "T")):
    i = 0
    while abs(v) >= 1000 and i < len(suffixes) - 1:
        v /= 1000
        i += 1
    return _num(v) + suffixes[i]


def fmt(v, unit):
    """A value as Grafana shows it for the unit."""
    if v is None:
        return "—"
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    unit = unit or "none"
    if unit == "percentunit":
        return _num(v * 100) + "%"
    if unit == "percent":
        return _num(v) + "%"
    if unit in ("reqps", "rps"):
        return _si(v) + " req/s"
    if unit in ("ops",):
        return _si(v) + " ops/s"
    if unit in ("s", "ms", "µs", "ns"):
        sec = v * {"s": 1, "ms": 1e-3, "µs": 1e-6, "ns": 1e-9}[unit]
        a = abs(sec)
        if a == 0:
            return "0 s"
        for lim, div, sym in ((1e-6, 1e-9, "ns"), (1e-3, 1e-6, "µs"), (1, 1e-3, "ms"), (60, 1, "s"),
                              (3600, 60, "min"), (86400, 3600, "hour")):
            if a < lim:
                return f"{_num(sec / div)} {sym}"
        return f"{_num(sec / 86400)} day"
    if unit.startswith("currency"):
        sym = {"currencyUSD": "$", "currencyEUR": "€", "currencyGBP": "£"}.get(unit, unit[len("currency"):] + " ")
        a = abs(v)
        if a >= 1000:
            return sym + _si(v)
        if a >= 1 or a == 0:
            return f"{sym}{v:,.2f}"
        return sym + _num(v)
    if unit == "bytes":
        for sym in ("B", "KiB", "MiB", "GiB", "TiB"):
            if abs(v) < 1024 or sym == "TiB":
                return f"{_num(v)} {sym}"
            v /= 1024
    if unit in ("short", "none"):
        return _si(v)
    return f"{_num(v)} {unit}"


def axis_label(unit):
    return {"reqps": "requests / s", "rps": "requests / s", "ops": "operations / s", "percentunit": "share (%)",
            "percent": "%", "s": "duration", "ms": "duration", "short": "", "none": "", "bytes": "bytes",
            "currencyUSD": "USD", "currencyEUR": "EUR", "currencyGBP": "GBP"}.get(unit or "none", unit)


# ---- drawing ---------------------------------------------------------------------------

BG = "#f4f5f5"
PANEL = "#ffffff"
BORDER = "#d8d9dc"
TEXT = "#24292e"
MUTED = "#6e7681"
GRID = "#e6e7e9"
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#b8860b", "#393b79"]
OTHER = "#b8bcc2"


class Canvas:
    """Pixel coordinates (origin top left) on a matplotlib figure."""

    def __init__(self, plt, width, height, dpi=100):
        self.plt = plt
        self.w, self.h, self.dpi = width, height, dpi
        self.fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor=BG)
        from matplotlib.textpath import TextToPath
        from matplotlib.font_manager import FontProperties
        self._t2p, self._fp = TextToPath(), FontProperties

    def rect(self, x, y, w, h):
        return [x / self.w, 1 - (y + h) / self.h, w / self.w, h / self.h]

    def axes(self, x, y, w, h, **kw):
        return self.fig.add_axes(self.rect(x, y, w, h), **kw)

    def text(self, x, y, s, size=10, color=TEXT, ha="left", va="top", weight="normal", **kw):
        return self.fig.text(x / self.w, 1 - y / self.h, s, fontsize=size, color=color, ha=ha, va=va,
                             weight=weight, **kw)

    def box(self, x, y, w, h, face=PANEL, edge=BORDER, lw=1.0, **kw):
        from matplotlib.patches import Rectangle
        self.fig.patches.append(Rectangle((x / self.w, 1 - (y + h) / self.h), w / self.w, h / self.h,
                                          transform=self.fig.transFigure, facecolor=face, edgecolor=edge,
                                          linewidth=lw, zorder=-10, **kw))

    def line(self, x0, y0, x1, y1, color=BORDER, lw=1.0):
        from matplotlib.lines import Line2D
        self.fig.lines.append(Line2D([x0 / self.w, x1 / self.w], [1 - y0 / self.h, 1 - y1 / self.h],
                                     transform=self.fig.transFigure, color=color, linewidth=lw))

    def width_px(self, s, size, weight="normal"):
        w, _, _ = self._t2p.get_text_width_height_descent(s, self._fp(size=size, weight=weight), ismath=False)
        return w * self.dpi / 72

    def fit(self, s, size, px, weight="normal"):
        """`s`, cut with … to fit in `px` pixels."""
        if self.width_px(s, size, weight) <= px:
            return s
        lo, hi = 0, len(s)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.width_px(s[:mid] + "…", size, weight) <= px:
                lo = mid
            else:
                hi = mid - 1
        return s[:lo] + "…"


def draw_no_data(c, x, y, w, h, reasons):
    c.text(x + w / 2, y + h / 2 - 8, "No data", size=16, color=MUTED, ha="center", va="center", weight="bold")
    for i, r in enumerate(reasons[:3]):
        c.text(x + w / 2, y + h / 2 + 16 + i * 16, c.fit(r, 9, w - 24), size=9, color="#c4314b", ha="center", va="center")


def time_axis(ax, mdates, ticker, t0, t1, width_px):
    """Time ticks at a round interval, about one per 80 px, labelled in UTC."""
    want = max(2, int(width_px // 80))
    steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400]
    every = next((s for s in steps if (t1 - t0) / s <= want), steps[-1])
    first = math.ceil(t0 / every) * every
    ticks = [first + i * every for i in range(int((t1 - first) // every) + 1)]
    ax.xaxis.set_major_locator(ticker.FixedLocator(
        [mdates.date2num(dt.datetime.fromtimestamp(t, dt.timezone.utc)) for t in ticks]))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S" if every < 60 else "%H:%M", tz=dt.timezone.utc))


def style_axes(ax):
    ax.set_facecolor(PANEL)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(BORDER)
    ax.tick_params(colors=MUTED, labelsize=9, length=3)
    ax.grid(True, color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)


def draw_timeseries(c, libs, panel, series, errors, x, y, w, h, t0, t1, legend_max):
    plt, mdates, ticker = libs
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    custom = defaults.get("custom", {})
    unit = defaults.get("unit")
    legend_opts = panel.get("options", {}).get("legend", {})
    calcs = legend_opts.get("calcs") or []
    stacked = custom.get("stacking", {}).get("mode", "none") in ("normal", "percent")
    fill = custom.get("fillOpacity", 0) / 100
    drawable = [s for s in series if finite(s["v"])]

    # Legend entries: the top `legend_max` by last value (then by max) get colors and a line in
    # the legend; the rest are drawn in grey and counted as "+N more".
    last = {id(s): reduce(s["v"], "lastNotNull") for s in drawable}
    peak = {id(s): reduce(s["v"], "max") for s in drawable}
    ranked = sorted(drawable, key=lambda s: (-last[id(s)], -peak[id(s)], s["name"]))
    size, head = 9, 34
    right = legend_opts.get("placement", "bottom") == "right" and w >= 560 and drawable
    # As many entries as fit (a right-hand table: one per row; below: two per row, at most 4 rows).
    fits = int((h - head - 14) // 17) - 1 if right else 8
    cap = min(legend_max, fits)
    keep = len(ranked) if len(ranked) <= cap else cap - 1
    named = ranked[:keep]
    more = len(drawable) - len(named)
    color = {id(s): PALETTE[i % len(PALETTE)] for i, s in enumerate(sorted(named, key=lambda s: s["name"]))}

    legend_w = 0
    calc_title = lambda calc: {"lastNotNull": "Last *"}.get(calc, calc.capitalize())
    # Each value column as wide as its widest cell, right-aligned.
    col_w = [16 + max([c.width_px(calc_title(calc), 8.5, "bold")] +
                      [c.width_px(fmt(reduce(s["v"], calc), unit), size) for s in named]) for calc in calcs]
    if right:
        names_w = max([c.width_px(s["name"], size) for s in named] + [c.width_px(f"+{more} more (grey)", size)])
        legend_w = int(min(22 + names_w + 20 + sum(col_w), w * 0.5))
    legend_rows = 0
    if drawable and not right:
        n = len(named) + (more > 0)
        legend_rows = (n + 1) // 2
    ax_y = y + head
    ax_h = h - head - 28 - legend_rows * 17
    ax = c.axes(x + 60, ax_y, max(50, w - 60 - 14 - legend_w), ax_h)
    style_axes(ax)
    ax.set_xlim(dt.datetime.fromtimestamp(t0, dt.timezone.utc), dt.datetime.fromtimestamp(t1, dt.timezone.utc))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: fmt(v, unit)))
    ax.yaxis.set_major_locator(ticker.MaxNLocator(nbins=max(3, int(ax_h // 45)), min_n_ticks=3))

    order = sorted(named, key=lambda s: s["name"]) + sorted(ranked[keep:], key=lambda s: s["name"])
    if not stacked:
        order = order[::-1]  # the named series drawn last, on top of the grey ones
    base = {}
    for s in order:
        ts = [dt.datetime.fromtimestamp(t, dt.timezone.utc) for t in s["t"]]
        vs = [v if math.isfinite(v) else float("nan") for v in s["v"]]
        col = color.get(id(s), OTHER)
        lw = 1.7 if id(s) in color else 1.0
        if stacked:
            lo = [base.get(t, 0.0) for t in s["t"]]
            hi = [b + (v if math.isfinite(v) else 0.0) for b, v in zip(lo, vs)]
            base.update(zip(s["t"], hi))
            ax.fill_between(ts, lo, hi, color=col, alpha=max(fill, 0.18), linewidth=0)
            ax.plot(ts, hi, color=col, linewidth=lw)
        else:
            few = len(finite(vs)) <= 2
            ax.plot(ts, vs, color=col, linewidth=lw, marker="o" if few else None, markersize=3.5)
            if fill:
                ax.fill_between(ts, 0, vs, color=col, alpha=fill, linewidth=0)

    if not drawable:
        ax.set_yticks([])
    else:
        lo, hi = ax.get_ylim()
        if "min" in defaults:
            lo = defaults["min"]
        elif lo > 0 or min(min(finite(s["v"])) for s in drawable) >= 0:
            lo = 0
        if "max" in defaults:
            hi = max(hi, defaults["max"] * 1.04)
        if hi <= lo:
            hi = lo + 1
        ax.set_ylim(lo, hi)
    # Room for the y tick labels (they carry the unit) and the axis label.
    label = axis_label(unit)
    lo, hi = ax.get_ylim()
    ticks = [t for t in ax.get_yticks() if lo - 1e-12 <= t <= hi + 1e-12] if drawable else []
    tick_w = max([c.width_px(fmt(t, unit), 9) for t in ticks] + [0])
    left = int(tick_w + 12 + (22 if label else 6))
    ax_w = max(50, w - left - (40 if legend_w else 24) - legend_w)  # room for the last time label
    ax.set_position(c.rect(x + left, ax_y, ax_w, ax_h))
    time_axis(ax, mdates, ticker, t0, t1, ax_w)
    if label:
        c.text(x + 13, ax_y + ax_h / 2, label, size=8.5, color=MUTED, ha="center", va="center", rotation=90)
    if not drawable:
        reasons = errors or (["every value is NaN or ±Inf"] if series else [])
        draw_no_data(c, x + left, ax_y, ax_w, ax_h, reasons)
        return

    if right:
        lx, ly = x + w - legend_w - 10, y + head + 2
        name_w = legend_w - 22 - sum(col_w) - 8
        col_right = [lx + legend_w - sum(col_w[j + 1:]) for j in range(len(calcs))]
        c.text(lx + 22, ly, "Name", size=8.5, color=MUTED, weight="bold")
        for j, calc in enumerate(calcs):
            c.text(col_right[j], ly, calc_title(calc), size=8.5, color=MUTED, ha="right", weight="bold")
        row_h = min(19, (h - head - 14) / (len(named) + 1 + (more > 0)))
        for i, s in enumerate(named):
            ry = ly + (i + 1) * row_h
            c.line(lx, ry + 6.5, lx + 14, ry + 6.5, color=color[id(s)], lw=3)
            c.text(lx + 22, ry, c.fit(s["name"], size, name_w), size=size)
            for j, calc in enumerate(calcs):
                c.text(col_right[j], ry, fmt(reduce(s["v"], calc), unit), size=size, ha="right")
        if more:
            ry = ly + (len(named) + 1) * row_h
            c.line(lx, ry + 6.5, lx + 14, ry + 6.5, color=OTHER, lw=3)
            c.text(lx + 22, ry, f"+{more} more (grey)", size=size, color=MUTED)
    else:
        items = [(s, color[id(s)]) for s in named] + ([(None, OTHER)] if more else [])
        half = (w - 32) / 2
        for i, (s, col) in enumerate(items):
            lx = x + 16 + (i % 2) * half
            ly = y + h - 8 - (legend_rows - i // 2) * 17
            c.line(lx, ly + 6.5, lx + 12, ly + 6.5, color=col, lw=3)
            if s is None:
                c.text(lx + 18, ly, f"+{more} more (grey)", size=8.5, color=MUTED)
                continue
            value = "  " + fmt(last[id(s)], unit) if calcs else ""
            c.text(lx + 18, ly, c.fit(s["name"], 8.5, half - 30 - c.width_px(value, 8.5)) + value, size=8.5)
    if errors:
        c.text(x + w - 10, y + 10, c.fit("query error: " + "; ".join(errors), 8.5, w * 0.5), size=8.5,
               color="#c4314b", ha="right")


def draw_stat(c, libs, panel, series, errors, x, y, w, h, t0, t1):
    plt, mdates, ticker = libs
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    unit = defaults.get("unit")
    opts = panel.get("options", {})
    calc = (opts.get("reduceOptions", {}).get("calcs") or ["lastNotNull"])[0]
    shown = [s for s in series if reduce(s["v"], calc) is not None]
    if not shown:
        reasons = errors or (["every value is NaN or ±Inf"] if series else [])
        draw_no_data(c, x, y + 20, w, h - 20, reasons)
        return
    n = min(len(shown), 4)
    cell = w / n
    body_h = h - 34
    for i, s in enumerate(shown[:n]):
        cx = x + i * cell
        if opts.get("graphMode", "area") != "none":
            ax = c.axes(cx + 2, y + 34 + body_h * 0.52, cell - 4, body_h * 0.48 - 2)
            ax.set_axis_off()
            ts = [dt.datetime.fromtimestamp(t, dt.timezone.utc) for t in s["t"]]
            vs = [v if math.isfinite(v) else float("nan") for v in s["v"]]
            ax.plot(ts, vs, color="#1f77b4", linewidth=1.4)
            ax.fill_between(ts, 0 if min(finite(vs)) >= 0 else min(finite(vs)), vs, color="#1f77b4", alpha=0.12,
                            linewidth=0)
            ax.set_xlim(ts[0] if ts else None, ts[-1] if ts else None)
            lo = min(finite(vs))
            hi = max(finite(vs))
            ax.set_ylim(min(0, lo), hi * 1.15 if hi > 0 else 1)
        value = fmt(reduce(s["v"], calc), unit)
        size = min(44.0, body_h * 0.40 * 72 / c.dpi)
        while size > 10 and c.width_px(value, size, "bold") > cell - 16:
            size -= 1
        c.text(cx + cell / 2, y + 34 + body_h * 0.30, value, size=size, ha="center", va="center", weight="bold")
        if len(shown) > 1:
            c.text(cx + cell / 2, y + 34 + body_h * 0.30 + size * 1.0, c.fit(s["name"], 9, cell - 10), size=9,
                   color=MUTED, ha="center", va="top")
    if len(shown) > n:
        c.text(x + w - 8, y + 10, f"+{len(shown) - n} more", size=8.5, color=MUTED, ha="right")
    if calc != "lastNotNull":
        c.text(x + 10, y + h - 8, calc, size=8, color=MUTED, va="bottom")


def draw_table(c, panel, series, errors, x, y, w, h):
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
    rows = [(s["name"], reduce(s["v"], "lastNotNull")) for s in series]
    if not rows:
        draw_no_data(c, x, y + 20, w, h - 20, errors)
        return
    for i, (name, v) in enumerate(rows[: int((h - 50) // 18)]):
        c.text(x + 12, y + 40 + i * 18, c.fit(name, 9, w - 120), size=9)
        c.text(x + w - 12, y + 40 + i * 18, fmt(v, unit), size=9, ha="right")


def render(args, dashboard, source, prom, run, start, end, step, rate_interval):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.dates as mdates
    import matplotlib.ticker as ticker
    plt.rcParams.update({"font.family": "DejaVu Sans", "text.color": TEXT, "axes.labelcolor": TEXT})
    libs = (plt, mdates, ticker)

    variables = dashboard_variables(dashboard, step, rate_interval, end - start)
    panels = walk_panels(dashboard.get("panels", []))
    width = args.width
    margin, gap = 16, 8
    col = (width - 2 * margin + gap) / 24
    unit_h = 36
    header = 112
    bottom = max((g["y"] + g["h"] for _, g in panels), default=0)
    height = int(header + bottom * unit_h + margin + 10)
    c = Canvas(plt, width, height)

    fmt_t = lambda t: dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    range_text = f"{fmt_t(start)} → {fmt_t(end)[11:]} UTC, {end - start:.0f} s"
    c.text(margin, 14, dashboard.get("title", "dashboard"), size=20, weight="bold")
    c.box(margin, 50, width - 2 * margin, 30, face="#fff8e1", edge="#e0b400", lw=1.2)
    c.text(margin + 12, 65, LABEL_TEXT.format(run=run, range=range_text), size=11.5, va="center", weight="bold",
           color="#5c4400")
    var_text = "  ".join(f"{v.get('label') or v['name']}: All" for v in dashboard.get("templating", {}).get("list", [])
                         if v.get("type") == "query")
    c.text(margin, 88, f"{var_text}   ·   step {prom_duration(step)}   ·   $__rate_interval = "
           f"{prom_duration(rate_interval)}   ·   every selector scoped with {RUN_LABEL}=\"{run}\"   ·   "
           f"queries from {source}", size=10, color=MUTED)

    summary = []
    for p, g in panels:
        px = margin + g["x"] * col
        py = header + g["y"] * unit_h
        pw = g["w"] * col - gap
        ph = g["h"] * unit_h - gap
        kind = p.get("type")
        title = p.get("title", "")
        if kind == "row":
            c.text(px, py + 6, title + ("  (collapsed in Grafana: shown expanded)" if p.get("collapsed") else ""),
                   size=14, weight="bold")
            c.line(px, py + ph + 2, px + pw, py + ph + 2, color="#c7c9cd", lw=1.2)
            continue
        c.box(px, py, pw, ph)
        c.text(px + 10, py + 9, c.fit(title, 11.5, pw - 20, "bold"), size=11.5, weight="bold")
        series, errors, queries = query_panel(prom, p, variables, run, start, end, step) if p.get("targets") else ([], [], [])
        if kind == "timeseries":
            draw_timeseries(c, libs, p, series, errors, px, py, pw, ph, start, end, args.legend_max)
        elif kind in ("stat", "gauge", "bargauge"):
            draw_stat(c, libs, p, series, errors, px, py, pw, ph, start, end)
        elif kind == "table":
            draw_table(c, p, series, errors, px, py, pw, ph)
        else:
            c.text(px + pw / 2, py + ph / 2, f"({kind} panel: not rendered by this script)", size=11, color=MUTED,
                   ha="center", va="center")
        summary.append(describe(p, series, errors, queries))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    c.fig.savefig(args.out, dpi=c.dpi, facecolor=BG, pil_kwargs={"optimize": True})
    return summary, (width, height)


def describe(panel, series, errors, queries):
    """One line per panel for the summary, with what looks empty or odd."""
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
    notes = []
    points = sum(len(finite(s["v"])) for s in series)
    nan = sum(1 for s in series for v in s["v"] if math.isnan(v))
    inf = sum(1 for s in series for v in s["v"] if math.isinf(v))
    refs = {r for r, _ in queries}
    empty_refs = sorted(refs - {s["ref"] for s in series})
    if errors:
        notes.append("QUERY ERROR " + "; ".join(errors))
    if not points:
        notes.append("NO DATA")
    elif empty_refs:
        notes.append("no data from target(s) " + ", ".join(empty_refs))
    if nan:
        notes.append(f"{nan} NaN point(s)")
    if inf:
        notes.append(f"{inf} ±Inf point(s)")
    flat = [s["name"] for s in series if finite(s["v"]) and max(finite(s["v"])) == min(finite(s["v"])) == 0]
    if flat and points:
        notes.append(f"{len(flat)} of {len(series)} series are 0 throughout")
    short = lambda name: name if len(name) <= 48 else name[:47] + "…"
    lasts = ", ".join(f"{short(s['name'])}={fmt(reduce(s['v'], 'lastNotNull'), unit)}" for s in series[:4])
    more = f" (+{len(series) - 4})" if len(series) > 4 else ""
    return {"title": panel.get("title", ""), "type": panel.get("type"), "series": len(series), "points": points,
            "notes": notes, "last": lasts + more}


def dashboard_source(repo, path):
    """`dashboards/x.json @ <commit>` (+ "with local changes"), or the path outside a checkout."""
    path = path.resolve()
    git = lambda *a: subprocess.run(["git", "-C", str(repo), *a], capture_output=True, text=True)
    head = git("rev-parse", "--short", "HEAD")
    try:
        rel = path.relative_to(repo)
    except ValueError:
        return str(path)
    if head.returncode != 0:
        return str(rel)
    dirty = git("status", "--porcelain", "--", str(rel)).stdout.strip()
    return f"{rel} @ {head.stdout.strip()}" + (" with local changes" if dirty else "")


def main():
    args = arguments()
    ensure_matplotlib()
    repo = args.repo.resolve()
    dash_path = args.dashboard or repo / "dashboards" / "llm-gateway-overview.json"
    base = args.prometheus or "http://" + (os.environ.get("LLM_GATEWAY_PROMETHEUS_ADDR") or "127.0.0.1:9090")
    prom = Prometheus(base)

    e2e_ok = True
    if args.run:
        run = args.run
    else:
        if args.start or args.end:
            die("--start/--end go with --run")
        run, e2e_ok = fresh_run(repo, prom)
    dashboard = json.loads(Path(dash_path).read_text())

    try:
        window = run_window(prom, run)
        if not args.run:
            # The e2e's last export (at its meter provider's shutdown) may still be on its way
            # through rotel and vmagent: wait until the run's last sample stays put.
            deadline = time.time() + 20
            while time.time() < deadline:
                time.sleep(2.5)
                again = run_window(prom, run)
                if again == window:
                    break
                window = again
    except PromError as e:
        die(str(e))
    if window is None and (args.start is None or args.end is None):
        die(f"Prometheus at {base} has no samples with {RUN_LABEL}=\"{run}\" (the pipeline's TSDB is new at each start)")
    start = args.start if args.start is not None else window[0]
    end = args.end if args.end is not None else window[1]
    if end <= start:
        die(f"empty range: {start} .. {end}")
    step = args.step or max(args.scrape_interval, (end - start) / 500)
    rate_interval = args.rate_interval or max(step + args.scrape_interval, 4 * args.scrape_interval)
    # Grafana aligns a range query's start and end to the step.
    q_start = math.floor(start / step) * step
    q_end = math.ceil(end / step) * step
    log(f"run {run}: {q_start:.3f} .. {q_end:.3f} ({q_end - q_start:.1f} s), step {step:g} s, "
        f"$__rate_interval {prom_duration(rate_interval)}; dashboard {dash_path}")

    summary, (w, h) = render(args, dashboard, dashboard_source(repo, Path(dash_path)), prom, run, q_start, q_end, step,
                             rate_interval)
    print(f"run {run}  range {q_start:.3f} .. {q_end:.3f}  step {step:g}s  rate_interval {prom_duration(rate_interval)}")
    for s in summary:
        flag = ("  <-- " + "; ".join(s["notes"])) if s["notes"] else ""
        print(f"  [{s['type']:10}] {s['title']}: {s['series']} series, {s['points']} points{flag}")
        if s["last"]:
            print(f"               last: {s['last']}")
    print(f"wrote {args.out} ({w}x{h} px)")
    if not e2e_ok:
        die("the e2e test failed (the picture shows its run anyway)")


if __name__ == "__main__":
    main()
