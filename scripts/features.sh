#!/usr/bin/env bash
# Checks every combination of the crate's cargo features (what cargo-hack's --feature-powerset
# does, without installing it): clippy with -D warnings on each, and the API-only build's
# dependency tree, which must not hold the OpenTelemetry SDK or an exporter.
set -euo pipefail
cd "$(dirname "$0")/.."

features=$(cargo metadata --no-deps --format-version 1 --locked | python3 -c '
import itertools, json, sys
pkg = next(p for p in json.load(sys.stdin)["packages"] if p["name"] == "llm-gateway-otel")
names = sorted(f for f in pkg["features"] if f != "default")
for n in range(len(names) + 1):
    for combo in itertools.combinations(names, n):
        print(",".join(combo) or "-")
')
for set in $features; do
    if [[ "$set" == "-" ]]; then
        echo "== clippy, no features (API only)"
        cargo clippy -p llm-gateway-otel --all-targets --locked --no-default-features -- -D warnings
    else
        echo "== clippy, features: $set"
        cargo clippy -p llm-gateway-otel --all-targets --locked --no-default-features --features "$set" -- -D warnings
    fi
done

echo "== the API-only build depends on no SDK, exporter or gRPC stack"
forbidden=$(cargo tree -p llm-gateway-otel --no-default-features -e normal --prefix none --locked \
    | awk '{print $1}' | sort -u \
    | grep -E '^(opentelemetry_sdk|opentelemetry-otlp|opentelemetry-proto|tonic|prost)$' || true)
if [[ -n "$forbidden" ]]; then
    echo "the API-only build pulls in: $forbidden" >&2
    exit 1
fi
echo "   ok: opentelemetry (API), tracing, tracing-opentelemetry only"
