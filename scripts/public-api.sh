#!/usr/bin/env bash
# The crate's public API as a stable, sorted text listing (public-api.txt at the repo root),
# and a check that it did not change by accident.
#
#   scripts/public-api.sh           regenerates public-api.txt
#   scripts/public-api.sh --check   regenerates into a temp file and diffs it against
#                                   public-api.txt: exit 1 with the diff if they differ
#
# How: rustdoc's JSON output (`cargo rustdoc ... -Z unstable-options --output-format json`,
# on the stable toolchain through RUSTC_BOOTSTRAP=1 given to rustdoc only (see below), with
# every feature on, so `export` and `redis` items are listed),
# rendered by scripts/public_api.py: one line per public path (`pub use` re-exports followed,
# `#[doc(hidden)]` items skipped) with its kind, and the signature of functions and methods,
# the fields of structs, the variants of enums, the items of traits, and the trait impls of
# each type (not the auto-trait and blanket impls rustdoc synthesizes). See public_api.py.
#
# How CI uses it: .ci/run calls `scripts/public-api.sh --check`, so a change to the public
# API fails CI until public-api.txt is regenerated and committed with it: every API change
# is deliberate and shows in review as a diff of public-api.txt.
#
# Environment: CARGO_TARGET_DIR is respected (default: target/ of the repo); the JSON lands
# in $CARGO_TARGET_DIR/doc/llm_gateway_otel.json. A new toolchain can render some lines
# differently (the JSON format is unstable): then regenerate and commit.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }
mode=write
case "${1:-}" in
    "") ;;
    --check) mode=check ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
esac

target_dir="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$target_dir" in /*) ;; *) target_dir="$ROOT/$target_dir" ;; esac
json="$target_dir/doc/llm_gateway_otel.json"

# RUSTC_BOOTSTRAP=1 goes to rustdoc alone, through a wrapper, not to cargo: build scripts
# watch that variable (proc-macro2's has `rerun-if-env-changed=RUSTC_BOOTSTRAP`), so setting
# it for the whole cargo run would rebuild every dependency that sits behind a proc macro, and
# the next plain `cargo check`/`clippy`/`doc` would rebuild them all back. With the wrapper the
# dependencies are the ones `cargo check -p llm-gateway-otel` builds, shared both ways.
wrapper_dir="$target_dir/public-api"
mkdir -p "$wrapper_dir"
real_rustdoc="$(command -v "${RUSTDOC:-rustdoc}")"
printf '#!/bin/sh\nRUSTC_BOOTSTRAP=1 exec %q "$@"\n' "$real_rustdoc" > "$wrapper_dir/rustdoc.tmp"
chmod +x "$wrapper_dir/rustdoc.tmp"
mv "$wrapper_dir/rustdoc.tmp" "$wrapper_dir/rustdoc"

# `cargo rustdoc` always re-documents the crate itself (its dependencies come from the
# build cache); removing the old JSON first makes sure a failed run cannot leave a stale one.
rm -f "$json"
started=$SECONDS
RUSTDOC="$wrapper_dir/rustdoc" cargo rustdoc -p llm-gateway-otel --lib --locked --quiet --all-features \
    -- -Z unstable-options --output-format json
if [[ ! -s "$json" ]]; then
    echo "public-api.sh: rustdoc wrote no $json" >&2
    exit 1
fi
echo "public-api.sh: rustdoc JSON built in $((SECONDS - started)) s: $json" >&2

listing="$(mktemp)"
trap 'rm -f "$listing"' EXIT
python3 "$ROOT/scripts/public_api.py" "$json" > "$listing"

if [[ "$mode" == write ]]; then
    cp "$listing" "$ROOT/public-api.txt"
    echo "public-api.sh: wrote public-api.txt ($(wc -l < "$ROOT/public-api.txt") lines)" >&2
    exit 0
fi

if [[ ! -f "$ROOT/public-api.txt" ]]; then
    echo "public-api.sh: no public-api.txt to check against: run scripts/public-api.sh and commit public-api.txt" >&2
    exit 1
fi
if ! diff -u --label public-api.txt --label "public API now" "$ROOT/public-api.txt" "$listing"; then
    echo >&2
    echo "the public API changed: if that is deliberate, run scripts/public-api.sh and commit public-api.txt" >&2
    exit 1
fi
echo "public-api.sh: the public API matches public-api.txt ($(wc -l < "$listing") lines)" >&2
