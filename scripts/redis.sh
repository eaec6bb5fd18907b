#!/usr/bin/env bash
# A Redis for tests of state shared across replicas, installed without root into a cache dir:
#
#   scripts/redis.sh install        # Debian bookworm's redis-server + redis-cli 7.0.x (no-op when done)
#   scripts/redis.sh start [PORT]   # one redis-server on 127.0.0.1:PORT, no persistence; prints redis://…
#   scripts/redis.sh status [PORT]  # exit 0 when ours runs and answers PING
#   scripts/redis.sh stop [PORT]    # shutdown nosave (falls back to the pid file); quiet if not running
#   scripts/redis.sh bin            # path of the redis-server wrapper (redis-cli is next to it)
#   scripts/redis.sh dir            # the cache dir
#
# As in scripts/pipeline.sh, the .debs (redis-server redis-tools libjemalloc2 liblzf1) come from
# bookworm(-security) through a private apt configuration and are unpacked with dpkg -x into
# <dir>/root; <dir>/bin/redis-{server,cli} are wrappers that set LD_LIBRARY_PATH. Any system
# redis-server on PATH is ignored: tests exec the wrapper. Environment:
#   LLM_GATEWAY_REDIS_DIR      install/run dir (default ${XDG_CACHE_HOME:-$HOME/.cache}/llm-gateway-otel/redis)
#   LLM_GATEWAY_REDIS_PORT     default port (6390)
#   LLM_GATEWAY_DEBIAN_MIRROR  Debian mirror URI (default: the first one in the system's apt sources)
#   LLM_GATEWAY_DEBIAN_SECURITY_MIRROR  security mirror (default: from the apt sources; "none" to skip)
set -euo pipefail

DIR="${LLM_GATEWAY_REDIS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/llm-gateway-otel/redis}"
RUN="$DIR/run"
REDIS_WANT="7.0."
PORT="${2:-${LLM_GATEWAY_REDIS_PORT:-6390}}"
[[ "$PORT" =~ ^[0-9]+$ ]] || { echo "[redis] ERROR: port $PORT is not a number" >&2; exit 2; }

log() { printf '[redis] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

server() { echo "$DIR/bin/redis-server"; }
cli() { timeout 2 "$DIR/bin/redis-cli" -h 127.0.0.1 -p "$PORT" "$@"; }
installed() { [[ -x "$(server)" && -x "$DIR/bin/redis-cli" ]] && "$(server)" --version >/dev/null 2>&1; }

# ---- install -------------------------------------------------------------------------

# sources_uri main|security: the first such URI in the system's apt sources (deb822, then one-line).
sources_uri() {
    cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | awk -v w="$1" '
        { s = /security/ ? "security" : "main" } /^URIs:/ { u = $2 } /^Suites:/ && s == w && u != "" { print u; exit }
        $1 == "deb" && s == w { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) { print $i; exit } }' || true
}

# A private apt (own sources, lists, cache, empty dpkg status): the system's apt state is
# neither read nor changed. Lists are refreshed on every real install: bookworm-security
# drops superseded .debs, so old lists would point at files that are gone.
private_apt() {
    local apt="$DIR/apt" mirror security keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [[ -f "$keyring" ]] || die "$keyring missing (package debian-archive-keyring)"
    mirror="${LLM_GATEWAY_DEBIAN_MIRROR:-$(sources_uri main)}"
    [[ -n "$mirror" ]] || die "no Debian mirror found in the apt sources; set LLM_GATEWAY_DEBIAN_MIRROR"
    security="${LLM_GATEWAY_DEBIAN_SECURITY_MIRROR:-$(sources_uri security)}"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/etc/preferences.d"
    : >"$apt/status"
    echo "deb [signed-by=$keyring] $mirror bookworm main" >"$apt/sources.list"
    [[ -z "$security" || "$security" == none ]] || echo "deb [signed-by=$keyring] $security bookworm-security main" >>"$apt/sources.list"
    cat >"$apt/apt.conf" <<EOF
Dir::State "$apt"; Dir::State::Lists "$apt/lists"; Dir::State::status "$apt/status"; Dir::Cache "$apt/cache";
Dir::Etc::SourceList "$apt/sources.list"; Dir::Etc::SourceParts "/dev/null";
Dir::Etc::Preferences "/dev/null"; Dir::Etc::PreferencesParts "$apt/etc/preferences.d";
APT::Sandbox::User "$(id -un)"; Acquire::Languages "none"; Debug::NoLocking "true";
EOF
    export APT_CONFIG="$apt/apt.conf"
    log "apt-get update (private lists: $(awk '{ printf "%s%s", sep, $4; sep = ", " }' "$apt/sources.list"))"
    apt-get -q update >"$apt/update.log" 2>&1 || { cat "$apt/update.log" >&2; die "apt-get update failed"; }
}

# unpack PACKAGE...: apt-get download into <dir>/apt/debs, dpkg -x into <dir>/root.tmp
unpack() {
    local debs="$DIR/apt/debs" deb
    rm -rf "$debs" && mkdir -p "$debs"
    (cd "$debs" && apt-get -q download "$@" >/dev/null) || die "apt-get download $* failed"
    for deb in "$debs"/*.deb; do dpkg -x "$deb" "$DIR/root.tmp" && log "unpacked $(basename "$deb")"; done
}

missing_libs() {
    LD_LIBRARY_PATH="$1" ldd "$DIR/root.tmp/usr/bin/redis-check-rdb" "$DIR/root.tmp/usr/bin/redis-cli" |
        awk '/not found/ { print $1 }' | sort -u | xargs
}

cmd_install() {
    local t0=$SECONDS lib v b
    installed && { log "already installed ($("$(server)" --version)) in $DIR"; return; }
    command -v redis-server >/dev/null && log "ignoring the system's $(command -v redis-server): installing the cached one"
    mkdir -p "$DIR"
    private_apt
    rm -rf "$DIR/root.tmp"
    unpack redis-server redis-tools libjemalloc2 liblzf1
    lib="$(ls -d "$DIR"/root.tmp/usr/lib/*-linux-gnu | head -n1)" || die "no usr/lib/*-linux-gnu in the .debs"
    if [[ -n "$(missing_libs "$lib")" ]]; then # slim images may lack redis-tools' other Depends
        log "not on this machine: $(missing_libs "$lib"); unpacking libatomic1 libssl3 libsystemd0"
        unpack libatomic1 libssl3 libsystemd0
        [[ -z "$(missing_libs "$lib")" ]] || die "still missing: $(missing_libs "$lib")"
    fi
    rm -rf "$DIR/root" "$DIR/bin" && mv "$DIR/root.tmp" "$DIR/root" && mkdir -p "$DIR/bin"
    lib="$DIR/root/${lib#"$DIR/root.tmp/"}"
    for b in redis-server redis-cli; do
        # exec the redis-server symlink itself, never its target: the binary picks its mode from
        # argv[0] and runs as redis-check-rdb when called by that name.
        printf '#!/bin/sh\nLD_LIBRARY_PATH=%q${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\nexport LD_LIBRARY_PATH\nexec %q "$@"\n' \
            "$lib" "$DIR/root/usr/bin/$b" >"$DIR/bin/$b"
        chmod +x "$DIR/bin/$b"
    done
    v="$("$(server)" --version)" || die "redis-server does not run on this machine"
    [[ "$v" == *"v=$REDIS_WANT"* ]] || die "unexpected Redis: $v (want $REDIS_WANT*)"
    rm -rf "$DIR/apt" # ~30 MB of lists and .debs, refetched by the next real install anyway
    log "installed $v in $DIR ($((SECONDS - t0)) s)"
}

# ---- start / stop / status ------------------------------------------------------------

pidfile() { echo "$RUN/redis-$PORT.pid"; }
# Our pid file names a live redis-server (not a recycled pid).
ours() { [[ -f "$(pidfile)" ]] && grep -qa redis-server "/proc/$(cat "$(pidfile)")/cmdline" 2>/dev/null; }
pong() { [[ "$(cli ping 2>/dev/null)" == PONG ]]; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

cmd_start() {
    installed || die "not installed: run $0 install"
    mkdir -p "$RUN"
    if ours && pong; then
        log "already running on 127.0.0.1:$PORT (pid $(cat "$(pidfile)"))"
    else
        port_open && die "127.0.0.1:$PORT is taken by another process (not ours): stop it first"
        rm -f "$(pidfile)"
        "$(server)" --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$RUN" \
            --daemonize yes --pidfile "$(pidfile)" --logfile "$RUN/redis-$PORT.log" ||
            die "redis-server failed (log: $RUN/redis-$PORT.log)"
        local deadline=$((SECONDS + 3))
        until pong; do
            ((SECONDS < deadline)) || { tail -n 20 "$RUN/redis-$PORT.log" >&2; die "no PONG on 127.0.0.1:$PORT after 3 s"; }
            sleep 0.05
        done
        log "started on 127.0.0.1:$PORT (pid $(cat "$(pidfile)" 2>/dev/null || echo ?), log $RUN/redis-$PORT.log)"
    fi
    echo "redis://127.0.0.1:$PORT"
}

cmd_stop() {
    ours || { port_open && log "127.0.0.1:$PORT is not ours (no live $(pidfile)): left alone"; rm -f "$(pidfile)"; return 0; }
    local pid
    pid="$(cat "$(pidfile)")"
    [[ -z "$(cli shutdown nosave 2>&1)" ]] || kill "$pid" 2>/dev/null || true # e.g. NOAUTH: by pid
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    rm -f "$(pidfile)"
    log "stopped 127.0.0.1:$PORT ($pid)"
}

cmd_status() {
    if ours && pong; then log "running on 127.0.0.1:$PORT (pid $(cat "$(pidfile)"))"; return 0; fi
    if ours; then log "pid $(cat "$(pidfile)") alive but 127.0.0.1:$PORT does not answer PING"; else log "not running on 127.0.0.1:$PORT"; fi
    return 1
}

case "${1:-}" in
install) cmd_install ;;
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
bin) [[ -x "$(server)" ]] || die "$(server) missing: run scripts/redis.sh install"; server ;;
dir) echo "$DIR" ;;
*) echo "usage: $0 install|start [PORT]|stop [PORT]|status [PORT]|bin|dir" >&2; exit 2 ;;
esac
