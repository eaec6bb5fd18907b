#!/usr/bin/env bash
# A real metrics pipeline on 127.0.0.1, installed without root into a cache dir:
#
#   app ──OTLP gRPC :4317 / HTTP :4318──▶ rotel ──OTLP/HTTP──▶ vmagent :8429 ──remote write──▶ Prometheus :9090
#
#   scripts/pipeline.sh install               # Prometheus 2.42 + promtool, vmagent, rotel, tsc + @grafana/schema
#   scripts/pipeline.sh start                 # starts the three services, waits until they are ready
#   scripts/pipeline.sh status                # exit 0 when all three run and answer
#   scripts/pipeline.sh stop                  # stops what start started (by recorded PID)
#   scripts/pipeline.sh validate-dashboards   # dashboards/*.json type-checked against Grafana's schema
#
# Why these parts: no container runtime and no prebuilt-binary download works on the machines
# this project runs on; only the Debian, PyPI, npm and crates registries are reachable.
# Prometheus comes from Debian bookworm (2.42; Debian removed its OTLP receiver, hence the
# collector → vmagent hop), vmagent from Debian trixie's victoria-metrics (bookworm's is too
# old for OTLP), rotel (an OTLP collector written in Rust) from PyPI. The .deb files are
# fetched with a private apt configuration (own lists, cache and status under the cache dir)
# and unpacked with dpkg -x: nothing is installed system-wide and root is not needed.
#
# Environment:
#   LLM_GATEWAY_PIPELINE_DIR   install/run dir (default ${XDG_CACHE_HOME:-$HOME/.cache}/llm-gateway-otel/pipeline)
#   LLM_GATEWAY_DEBIAN_MIRROR  Debian mirror URI (default: the first one in the system's apt sources)
#   LLM_GATEWAY_PROMETHEUS_ADDR, LLM_GATEWAY_VMAGENT_ADDR, LLM_GATEWAY_OTLP_GRPC_ADDR,
#   LLM_GATEWAY_OTLP_HTTP_ADDR  loopback host:port of each service (defaults 127.0.0.1:9090,
#                              :8429, :4317, :4318); the e2e test reads the same variables
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${LLM_GATEWAY_PIPELINE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/llm-gateway-otel/pipeline}"
RUN="$DIR/run"

# Pinned versions. Debian point releases can replace a .deb version in the archive; then the
# newest of the same suite is taken and its version is checked (Prometheus must be 2.42.x).
PROMETHEUS_DEB_VERSION="2.42.0+ds-5+deb12u1"
PROMETHEUS_WANT="2.42."
VICTORIA_METRICS_DEB_VERSION="1.112.0+ds1-2"
ROTEL_VERSION="0.0.1a15"
GRAFANA_SCHEMA_VERSION="13.2.3"
TYPESCRIPT_VERSION="5.9.3"

PROM_ADDR="${LLM_GATEWAY_PROMETHEUS_ADDR:-127.0.0.1:9090}"
VMAGENT_ADDR="${LLM_GATEWAY_VMAGENT_ADDR:-127.0.0.1:8429}"
OTLP_GRPC="${LLM_GATEWAY_OTLP_GRPC_ADDR:-127.0.0.1:4317}"
OTLP_HTTP="${LLM_GATEWAY_OTLP_HTTP_ADDR:-127.0.0.1:4318}"
for addr in "$PROM_ADDR" "$VMAGENT_ADDR" "$OTLP_GRPC" "$OTLP_HTTP"; do
    [[ "$addr" =~ ^127\.[0-9]+\.[0-9]+\.[0-9]+:[0-9]+$ ]] || { echo "[pipeline] ERROR: $addr is not a loopback host:port" >&2; exit 2; }
done

log() { printf '[pipeline] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

prom_bin() { echo "$DIR/prometheus/usr/bin/prometheus"; }
promtool_bin() { echo "$DIR/prometheus/usr/bin/promtool"; }
vmagent_bin() { echo "$DIR/victoria-metrics/usr/bin/vmagent"; }
rotel_bin() {
    local found
    found="$(find "$DIR/rotel-venv" -path '*/site-packages/rotel/rotel-agent' -type f 2>/dev/null | head -n1)"
    echo "${found:-$DIR/rotel-venv/missing/rotel-agent}"
}

# ---- install -------------------------------------------------------------------------

debian_mirror() {
    if [[ -n "${LLM_GATEWAY_DEBIAN_MIRROR:-}" ]]; then
        echo "$LLM_GATEWAY_DEBIAN_MIRROR"
        return
    fi
    local uri=""
    if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
        # deb822: the URIs of a stanza whose Suites are the main ones (not -security).
        uri="$(awk '
            /^URIs:/ { u = $2 }
            /^Suites:/ { if ($0 !~ /security/ && u != "") { print u; exit } }
        ' /etc/apt/sources.list.d/*.sources)"
    fi
    if [[ -z "$uri" && -f /etc/apt/sources.list ]]; then
        uri="$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) { print $i; exit } }' /etc/apt/sources.list)"
    fi
    [[ -n "$uri" ]] || die "no Debian mirror found in the apt sources; set LLM_GATEWAY_DEBIAN_MIRROR"
    echo "$uri"
}

# A private apt: its own sources, lists, cache and (empty) dpkg status, so the system's apt
# state is neither read nor changed and no root is needed.
private_apt() {
    local apt="$DIR/apt" mirror keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [[ -f "$keyring" ]] || die "$keyring missing (package debian-archive-keyring)"
    mirror="$(debian_mirror)"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/etc/preferences.d" "$apt/debs"
    : >"$apt/status"
    cat >"$apt/sources.list" <<EOF
deb [signed-by=$keyring] $mirror bookworm main
deb [signed-by=$keyring] $mirror trixie main
EOF
    cat >"$apt/apt.conf" <<EOF
Dir::State "$apt";
Dir::State::Lists "$apt/lists";
Dir::State::status "$apt/status";
Dir::Cache "$apt/cache";
Dir::Etc::SourceList "$apt/sources.list";
Dir::Etc::SourceParts "/dev/null";
Dir::Etc::Preferences "/dev/null";
Dir::Etc::PreferencesParts "$apt/etc/preferences.d";
APT::Sandbox::User "$(id -un)";
Acquire::Languages "none";
Debug::NoLocking "true";
EOF
    export APT_CONFIG="$apt/apt.conf"
    if [[ ! -f "$apt/updated" ]]; then
        log "apt-get update (private lists: bookworm, trixie)"
        apt-get -q update >"$apt/update.log" 2>&1 || { cat "$apt/update.log" >&2; die "apt-get update failed"; }
        touch "$apt/updated"
    fi
}

# deb_unpack PACKAGE VERSION SUITE DEST
deb_unpack() {
    local pkg="$1" version="$2" suite="$3" dest="$4" apt="$DIR/apt"
    (
        cd "$apt/debs"
        rm -f "${pkg}"_*.deb
        if ! apt-get -q download "$pkg=$version" >/dev/null 2>&1; then
            log "$pkg $version is no longer in the archive; taking $suite's current one"
            apt-get -q download "$pkg/$suite" >/dev/null
        fi
    )
    local deb
    deb="$(ls "$apt/debs/${pkg}"_*.deb | head -n1)"
    rm -rf "$dest.tmp"
    dpkg -x "$deb" "$dest.tmp"
    rm -rf "$dest"
    mv "$dest.tmp" "$dest"
    log "unpacked $(basename "$deb")"
}

install_prometheus() {
    if [[ -x "$(prom_bin)" && -x "$(promtool_bin)" ]]; then
        log "prometheus already installed ($("$(prom_bin)" --version 2>&1 | head -n1))"
        return
    fi
    private_apt
    deb_unpack prometheus "$PROMETHEUS_DEB_VERSION" bookworm "$DIR/prometheus"
    local v
    v="$("$(prom_bin)" --version 2>&1 | head -n1)"
    [[ "$v" == *"version $PROMETHEUS_WANT"* ]] || die "unexpected Prometheus: $v (want $PROMETHEUS_WANT*)"
}

install_vmagent() {
    if [[ -x "$(vmagent_bin)" ]]; then
        log "vmagent already installed ($("$(vmagent_bin)" -version 2>&1 | head -n1))"
        return
    fi
    private_apt
    deb_unpack victoria-metrics "$VICTORIA_METRICS_DEB_VERSION" trixie "$DIR/victoria-metrics"
    "$(vmagent_bin)" -version >/dev/null 2>&1 || die "vmagent does not run on this machine"
}

install_rotel() {
    if [[ -x "$(rotel_bin)" ]]; then
        log "rotel already installed"
        return
    fi
    command -v python3 >/dev/null || die "python3 is needed for rotel (PyPI)"
    rm -rf "$DIR/rotel-venv"
    python3 -m venv "$DIR/rotel-venv"
    "$DIR/rotel-venv/bin/pip" install -q --disable-pip-version-check "rotel==$ROTEL_VERSION"
    [[ -x "$(rotel_bin)" ]] || die "rotel-agent not found in the rotel package"
}

install_schema() {
    local d="$DIR/grafana-schema"
    if [[ -x "$d/node_modules/.bin/tsc" && -d "$d/node_modules/@grafana/schema" ]]; then
        log "tsc + @grafana/schema already installed"
        return
    fi
    command -v npm >/dev/null || die "npm (Node.js) is needed to check dashboards against @grafana/schema"
    mkdir -p "$d"
    [[ -f "$d/package.json" ]] || echo '{"name":"llm-gateway-otel-dashboard-check","private":true}' >"$d/package.json"
    (cd "$d" && npm install --no-audit --no-fund --silent \
        "@grafana/schema@$GRAFANA_SCHEMA_VERSION" "typescript@$TYPESCRIPT_VERSION") >&2
}

cmd_install() {
    local t0=$SECONDS
    mkdir -p "$DIR"
    install_prometheus
    install_vmagent
    install_rotel
    install_schema
    log "installed in $DIR ($((SECONDS - t0)) s)"
}

# ---- start / stop / status ------------------------------------------------------------

pid_alive() { [[ -f "$RUN/$1.pid" ]] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

port_open() { (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; }

http_ok() {
    python3 - "$1" <<'EOF' 2>/dev/null
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}

ready() {
    http_ok "http://$PROM_ADDR/-/ready" && http_ok "http://$VMAGENT_ADDR/health" && port_open "$OTLP_GRPC"
}

cmd_start() {
    [[ -x "$(prom_bin)" && -x "$(vmagent_bin)" && -x "$(rotel_bin)" ]] || die "not installed: run $0 install"
    mkdir -p "$RUN"
    if pid_alive prometheus && pid_alive vmagent && pid_alive rotel && ready; then
        log "already running"
        return
    fi
    cmd_stop >/dev/null 2>&1 || true
    for addr in "$PROM_ADDR" "$VMAGENT_ADDR" "$OTLP_GRPC" "$OTLP_HTTP"; do
        port_open "$addr" && die "$addr is taken by another process (not ours): stop it first"
    done
    # A fresh TSDB each start: queries see only what was sent since.
    rm -rf "$RUN/prometheus-data" "$RUN/vmagent-data"
    mkdir -p "$RUN/prometheus-data" "$RUN/vmagent-data"
    printf 'global:\n  scrape_interval: 15s\nscrape_configs: []\n' >"$RUN/prometheus.yml"

    "$(prom_bin)" --config.file="$RUN/prometheus.yml" --storage.tsdb.path="$RUN/prometheus-data" \
        --web.listen-address="$PROM_ADDR" --web.enable-remote-write-receiver \
        >"$RUN/prometheus.log" 2>&1 &
    echo $! >"$RUN/prometheus.pid"

    "$(vmagent_bin)" -httpListenAddr="$VMAGENT_ADDR" \
        -remoteWrite.url="http://$PROM_ADDR/api/v1/write" -remoteWrite.forcePromProto \
        -remoteWrite.flushInterval=1s -remoteWrite.tmpDataPath="$RUN/vmagent-data" \
        -opentelemetry.usePrometheusNaming >"$RUN/vmagent.log" 2>&1 &
    echo $! >"$RUN/vmagent.pid"

    ROTEL_EXPORTERS=prom:otlp,sink:blackhole \
        ROTEL_EXPORTER_PROM_ENDPOINT="http://$VMAGENT_ADDR/opentelemetry" \
        ROTEL_EXPORTER_PROM_PROTOCOL=http \
        ROTEL_EXPORTERS_METRICS=prom ROTEL_EXPORTERS_TRACES=sink ROTEL_EXPORTERS_LOGS=sink \
        "$(rotel_bin)" start --otlp-grpc-endpoint "$OTLP_GRPC" --otlp-http-endpoint "$OTLP_HTTP" \
        --debug-log traces --debug-log logs --debug-log-verbosity detailed \
        --pid-file "$RUN/rotel-agent.pid" \
        >"$RUN/rotel.log" 2>&1 &
    echo $! >"$RUN/rotel.pid"

    local deadline=$((SECONDS + 30))
    until ready; do
        for p in prometheus vmagent rotel; do
            pid_alive "$p" || { tail -n 20 "$RUN/$p.log" >&2; die "$p exited while starting (log: $RUN/$p.log)"; }
        done
        ((SECONDS < deadline)) || die "not ready after 30 s (logs in $RUN)"
        sleep 0.2
    done
    log "ready: OTLP gRPC $OTLP_GRPC, HTTP $OTLP_HTTP; vmagent $VMAGENT_ADDR; Prometheus http://$PROM_ADDR (logs in $RUN)"
}

cmd_stop() {
    local p pid
    for p in rotel vmagent prometheus; do
        [[ -f "$RUN/$p.pid" ]] || continue
        pid="$(cat "$RUN/$p.pid")"
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
            log "stopped $p ($pid)"
        fi
        rm -f "$RUN/$p.pid"
    done
}

cmd_status() {
    local ok=0 p
    for p in prometheus vmagent rotel; do
        if pid_alive "$p"; then log "$p running (pid $(cat "$RUN/$p.pid"))"; else log "$p not running"; ok=1; fi
    done
    if ready; then log "endpoints answer"; else log "endpoints do not answer"; ok=1; fi
    return $ok
}

# ---- dashboards ------------------------------------------------------------------------

cmd_validate_dashboards() {
    local d="$DIR/grafana-schema"
    [[ -x "$d/node_modules/.bin/tsc" ]] || die "not installed: run $0 install"
    local check="$d/check"
    rm -rf "$check"
    mkdir -p "$check"
    local n=0 f name
    for f in "$ROOT"/dashboards/*.json; do
        name="$(basename "$f" .json | tr -c 'a-zA-Z0-9\n' '_')"
        # The JSON inlined as an object literal typed as Grafana's published `Dashboard`:
        # literal types stay literal (variable types, enums) and excess-property checks
        # reject unknown keys at every level.
        {
            echo "import type { Dashboard } from '@grafana/schema';"
            printf 'export const dashboard: Dashboard = '
            cat "$f"
            echo ';'
        } >"$check/$name.ts"
        n=$((n + 1))
    done
    ((n > 0)) || die "no dashboards/*.json"
    cat >"$check/tsconfig.json" <<EOF
{
  "compilerOptions": {
    "strict": true, "noEmit": true,
    "module": "esnext", "moduleResolution": "bundler", "target": "es2022", "skipLibCheck": true,
    "typeRoots": [], "types": [], "baseUrl": ".",
    "paths": { "@grafana/schema": ["$d/node_modules/@grafana/schema"] }
  },
  "include": ["*.ts"]
}
EOF
    (cd "$check" && NODE_PATH="$d/node_modules" "$d/node_modules/.bin/tsc" -p tsconfig.json) ||
        die "dashboard JSON does not match @grafana/schema@$GRAFANA_SCHEMA_VERSION's Dashboard type"
    # A check that cannot fail proves nothing: the same setup must reject a dashboard with an
    # unknown key and a wrong variable type (it would not if the types resolved to `any`).
    mkdir -p "$check/canary"
    sed 's#"include": \["\*.ts"\]#"include": ["canary.ts"]#' "$check/tsconfig.json" >"$check/canary/tsconfig.json"
    cat >"$check/canary/canary.ts" <<'CANARY'
import type { Dashboard } from '@grafana/schema';
export const dashboard: Dashboard = { "schemaVersion": 42, "panelz": [], "templating": { "list": [{ "name": "m", "type": "querry" }] } };
CANARY
    if (cd "$check/canary" && "$d/node_modules/.bin/tsc" -p tsconfig.json >/dev/null 2>&1); then
        die "the schema check accepted a broken dashboard: it checks nothing"
    fi
    log "$n dashboard(s) match @grafana/schema@$GRAFANA_SCHEMA_VERSION (tsc $TYPESCRIPT_VERSION)"
}

case "${1:-}" in
install) cmd_install ;;
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
validate-dashboards) cmd_validate_dashboards ;;
dir) echo "$DIR" ;;
*)
    echo "usage: $0 install|start|stop|status|validate-dashboards|dir" >&2
    exit 2
    ;;
esac
