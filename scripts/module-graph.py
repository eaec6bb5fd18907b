#!/usr/bin/env python3
"""The dependency graph between the crate's top-level modules, and the cycles in it.

What it does: reads every `.rs` file under the main crate's `src/` (not simulator/ or fuzz/),
maps each file to its top-level module (`src/foo.rs` and everything under `src/foo/` -> `foo`,
`src/lib.rs` -> `lib`) and collects the references each module makes to the others:

  * `crate::foo::...` anywhere in code: `use` statements (grouped ones too, such as
    `use crate::{a::X, b::{Y, Z}}`), paths in expressions and types;
  * `super::...` that climbs out to the crate root (from `src/foo.rs` or `src/foo/mod.rs`,
    or `super::super::` from `src/foo/bar.rs`; inline `mod x { ... }` blocks count as a
    level); a `super::` that stays inside `foo` is no edge;
  * `crate::Name` where `Name` is no module: resolved through lib.rs. An item that lib.rs
    defines itself (`struct|enum|fn|trait|type|const|static|union|macro_rules! Name`) is in
    module `lib`; a name that lib.rs brings in with `use` (`pub use config::ConfigError`, or a
    private `use`, which every module can reach too) is in the module it comes from.

Comments (doc comments and their intra-doc links included), string literals (raw strings
`r#"..."#` too) and char literals are blanked before scanning, and so is every item under
`#[cfg(test)]` (a `mod tests { ... }` block, brace-matched, or a `#[cfg(test)] mod x;` file):
unit tests may reach anywhere. Edges from `lib` are ignored (the root declares everything);
edges to `lib` are reported.

Output: the edge list (`a -> b (N refs: names)`), the strongly connected components of more
than one module (Tarjan), and each module's "floor": the longest path down from it in the
condensed graph (0 = imports no other crate module).

Options:
  --check         exit 1 if there is any cycle, listing each one and the edges inside it
  --leaves a,b,c  exit 1 if any of these modules imports another crate module
  --top m         exit 1 if any module imports `m` (e.g. the middleware: imported by nobody)
  --src DIR       the source tree to read (default: src/ of this repository)
With no option it prints the report and exits 0. Exit 2: a usage error (unknown module...).

How CI uses it: .ci/run can call `python3 scripts/module-graph.py --check` (plus `--leaves`
and `--top` for the layering it wants to keep) so that a change that brings a cycle between
modules back, or makes a leaf module import the rest of the crate, fails with the edges named.
Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import bisect
import re
import sys
from collections import defaultdict
from pathlib import Path

ITEM_KINDS = ("struct", "enum", "fn", "trait", "type", "const", "static", "union")


# --------------------------------------------------------------------------------------------
# Stripping comments, strings and char literals


RAW_STRING = re.compile(r'(?:r|br|cr)(#*)"')
PREFIXED_STRING = re.compile(r'[bc]"')


def _is_ident_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def strip_code(src: str) -> str:
    """Blanks comments, string literals and char literals (newlines kept, so lines still
    count). Handles nested block comments, `b"..."`, `c"..."`, raw strings `r"..."`,
    `r#"..."#`, `br##"..."##`, raw identifiers `r#type`, char literals (`'a'`, `'\\''`,
    `'\\u{1F600}'`, `b'x'`) and lifetimes (`'a`, `'static`), which are kept."""
    out: list[str] = []
    i, n = 0, len(src)

    def blank(s: str) -> str:
        return "".join("\n" if ch == "\n" else " " for ch in s)

    while i < n:
        c = src[i]
        # comments
        if c == "/" and i + 1 < n and src[i + 1] == "/":
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(blank(src[i:j]))
            i = j
            continue
        if c == "/" and i + 1 < n and src[i + 1] == "*":
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(src[i:j]))
            i = j
            continue
        prev_ident = i > 0 and _is_ident_char(src[i - 1])
        # raw strings: r"..", r#".."#, br#".."#, cr#".."#
        if not prev_ident and c in "rbc":
            m = RAW_STRING.match(src, i)
            if m:
                closing = '"' + m.group(1)
                j = src.find(closing, m.end())
                j = n if j < 0 else j + len(closing)
                out.append(blank(src[i:j]))
                i = j
                continue
            m = PREFIXED_STRING.match(src, i)
            if m:
                out.append(" ")  # the prefix; the string itself is handled below
                i += 1
                continue
            if src.startswith("b'", i):
                out.append(" ")
                i += 1
                continue
        if c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(blank(src[i:j]))
            i = j
            continue
        if c == "'":
            # char literal or lifetime / label?
            if i + 1 < n and src[i + 1] == "\\":
                j = i + 2
                if j < n and src[j] == "u" and j + 1 < n and src[j + 1] == "{":
                    j = src.find("}", j) + 1
                else:
                    j += 1  # the escaped char (x7F: the digits follow)
                    while j < n and src[j] != "'":
                        j += 1
                j = min(j + 1, n)
                out.append(blank(src[i:j]))
                i = j
                continue
            if i + 2 < n and src[i + 2] == "'":
                out.append(blank(src[i : i + 3]))
                i += 3
                continue
            out.append(c)  # a lifetime or a label: `'a`, `'static`, `'outer:`
            i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


# --------------------------------------------------------------------------------------------
# Blanking #[cfg(test)] items

CFG_TEST = re.compile(r"#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")
ATTR = re.compile(r"\s*#\s*\[")
INNER_CFG_TEST = re.compile(r"#\s*!\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")


def _skip_brackets(code: str, i: int) -> int:
    """From an opening `[`, `(` or `{` at i, the index just past its match."""
    pairs = {"[": "]", "(": ")", "{": "}"}
    stack = [pairs[code[i]]]
    j = i + 1
    while j < len(code) and stack:
        ch = code[j]
        if ch in pairs:
            stack.append(pairs[ch])
        elif ch in ")]}":
            if ch == stack[-1]:
                stack.pop()
        j += 1
    return j


def cfg_test_items(code: str) -> tuple[str, list[str]]:
    """Blanks every item under `#[cfg(test)]` (after stripping). Returns the code and the
    names of `#[cfg(test)] mod x;` declarations (their files are test-only too)."""
    test_mod_files: list[str] = []
    out = list(code)
    for m in CFG_TEST.finditer(code):
        j = m.end()
        # further attributes on the same item
        while True:
            a = ATTR.match(code, j)
            if not a:
                break
            j = _skip_brackets(code, a.end() - 1)
        # the item: up to the first `;` or to the end of its first `{...}`, outside brackets
        k = j
        while k < len(code):
            ch = code[k]
            if ch in "([":
                k = _skip_brackets(code, k)
                continue
            if ch == ";":
                k += 1
                break
            if ch == "{":
                k = _skip_brackets(code, k)
                break
            k += 1
        item = code[j:k]
        mm = re.match(r"\s*(?:pub(?:\s*\([^)]*\))?\s+)?mod\s+(?:r#)?(\w+)\s*;", item)
        if mm:
            test_mod_files.append(mm.group(1))
        for p in range(m.start(), k):
            if out[p] != "\n":
                out[p] = " "
    return "".join(out), test_mod_files


# --------------------------------------------------------------------------------------------
# Tokens and path trees

TOKEN = re.compile(r"\$?(?:r#)?[A-Za-z_][A-Za-z0-9_]*|::|[{}(),;*<>]|\S")


def tokenize(code: str) -> list[tuple[str, int]]:
    """(token, line) pairs."""
    toks = []
    line_starts = [0]
    for k, ch in enumerate(code):
        if ch == "\n":
            line_starts.append(k + 1)
    for m in TOKEN.finditer(code):
        t = m.group(0)
        if t.startswith("r#"):
            t = t[2:]
        toks.append((t, bisect.bisect_right(line_starts, m.start())))
    return toks


def _is_ident(t: str) -> bool:
    return bool(re.fullmatch(r"\$?[A-Za-z_][A-Za-z0-9_]*", t))


def parse_tree(toks, i):
    """Parses a path or use tree starting with a segment at toks[i]. Returns (leaves, next i),
    each leaf a list of segments (`*` for a glob, `self` kept as is; `as x` dropped)."""
    segs: list[str] = []
    while i < len(toks):
        t = toks[i][0]
        if t == "{":
            leaves: list[list[str]] = []
            i += 1
            while i < len(toks) and toks[i][0] != "}":
                if toks[i][0] == ",":
                    i += 1
                    continue
                sub, j = parse_tree(toks, i)
                leaves.extend(segs + s for s in sub)
                i = max(j, i + 1)  # a token that starts no path: step over it
            return (leaves or [segs]), i + 1
        if t == "*":
            return [segs + ["*"]], i + 1
        if not _is_ident(t):
            break
        segs.append(t)
        i += 1
        if i + 1 < len(toks) and toks[i][0] == "::" and toks[i + 1][0] != "<":
            i += 1
            continue
        break
    if i < len(toks) and toks[i][0] == "as" and i + 1 < len(toks):
        i += 2
    return [segs], i


# --------------------------------------------------------------------------------------------
# The crate


class Crate:
    def __init__(self, src: Path):
        self.src = src
        self.files: dict[Path, str] = {}  # file -> code (stripped, tests blanked)
        self.top_modules: set[str] = set()
        test_files: set[Path] = set()
        for path in sorted(src.rglob("*.rs")):
            rel = path.relative_to(src).parts
            if rel == ("main.rs",) or rel[0] == "bin":
                continue  # binaries are crates of their own
            code = strip_code(path.read_text(encoding="utf-8"))
            if INNER_CFG_TEST.search(code):
                test_files.add(path)  # `#![cfg(test)]`: the whole file is test-only
            code, test_mods = cfg_test_items(code)
            self.files[path] = code
            for name in test_mods:
                base = path.parent if path.name in ("mod.rs", "lib.rs", "main.rs") else path.with_suffix("")
                test_files.add(base / f"{name}.rs")
                test_files.update((base / name).rglob("*.rs"))
        for p in test_files:
            self.files.pop(p, None)
        for path in self.files:
            mod = self.top_module(path)
            if mod != "lib":
                self.top_modules.add(mod)
        lib = src / "lib.rs"
        if lib not in self.files:
            raise SystemExit(f"module-graph: no {lib}")
        self.lib_defs, self.lib_uses, self.lib_globs = self.read_lib(self.files[lib])

    def top_module(self, path: Path) -> str:
        rel = path.relative_to(self.src)
        if rel.parts == ("lib.rs",):
            return "lib"
        return rel.parts[0][:-3] if len(rel.parts) == 1 else rel.parts[0]

    def module_path(self, path: Path) -> list[str]:
        """`src/retry/policy.rs` -> [retry, policy]; `src/retry/mod.rs` -> [retry]."""
        rel = path.relative_to(self.src)
        parts = list(rel.parts)
        if parts == ["lib.rs"]:
            return []
        last = parts.pop()
        if last != "mod.rs":
            parts.append(last[:-3])
        return parts

    def read_lib(self, code: str):
        defs = set(
            re.findall(r"\b(?:" + "|".join(ITEM_KINDS) + r")\s+(?:r#)?([A-Za-z_]\w*)", code)
        )
        defs |= set(re.findall(r"\bmacro_rules!\s*([A-Za-z_]\w*)", code))
        uses: dict[str, list[str]] = {}  # name visible at the root -> path it comes from
        globs: list[list[str]] = []
        toks = tokenize(code)
        depth = 0
        for k, (t, _) in enumerate(toks):
            if t == "{":
                depth += 1
            elif t == "}":
                depth -= 1
            if t != "use" or depth != 0:
                continue
            # `use` at the top level of lib.rs (inside fn bodies it is local)
            j = k + 1
            if j < len(toks) and toks[j][0] == "::":
                j += 1
            trees, _ = self._use_leaves_with_alias(toks, j)
            for segs, alias in trees:
                if segs and segs[0] in ("crate", "self"):
                    segs = segs[1:]
                if not segs:
                    continue
                if segs[-1] == "*":
                    globs.append(segs[:-1])
                    continue
                if segs[-1] == "self":
                    segs = segs[:-1]
                name = alias or segs[-1]
                if name != "_":
                    uses[name] = segs
        return defs, uses, globs

    @staticmethod
    def _use_leaves_with_alias(toks, i):
        """Like parse_tree, but keeps `as alias` per leaf."""
        segs: list[str] = []
        while i < len(toks):
            t = toks[i][0]
            if t == "{":
                res = []
                i += 1
                while i < len(toks) and toks[i][0] != "}":
                    if toks[i][0] == ",":
                        i += 1
                        continue
                    # parse one subtree: find its end by recursion
                    sub, j = Crate._use_leaves_with_alias(toks, i)
                    res.extend((segs + s, a) for s, a in sub)
                    i = max(j, i + 1)
                return res, i + 1
            if t == "*":
                return [(segs + ["*"], None)], i + 1
            if not _is_ident(t):
                break
            segs.append(t)
            i += 1
            if i < len(toks) and toks[i][0] == "::":
                i += 1
                continue
            break
        alias = None
        if i + 1 < len(toks) and toks[i][0] == "as":
            alias = toks[i + 1][0]
            i += 2
        return [(segs, alias)], i

    # names at the crate root -----------------------------------------------------------------

    def resolve_root(self, segs: list[str], seen: frozenset = frozenset()) -> str | None:
        """The top-level module that a path from the crate root (`crate::` dropped) lands in,
        or None for something outside the crate (a `use std::...` in lib.rs)."""
        if not segs:
            return "lib"
        head = segs[0]
        if head in self.top_modules:
            return head
        if head in ("*", "self"):
            return "lib"
        if head in self.lib_defs:
            return "lib"
        if head in self.lib_uses and head not in seen:
            target = self.lib_uses[head]
            if target and target[0] in self.top_modules:
                return target[0]
            if target and (target[0] in self.lib_defs or target[0] in self.lib_uses):
                return self.resolve_root(target, seen | {head})
            return None  # an external crate's item
        for g in self.lib_globs:
            if g and g[0] in self.top_modules and self._defines(g, head):
                return g[0]
        return "?"

    def _defines(self, modpath: list[str], name: str) -> bool:
        base = self.src.joinpath(*modpath)
        pat = re.compile(r"\b(?:" + "|".join(ITEM_KINDS + ("mod",)) + r")\s+" + re.escape(name) + r"\b")
        for p in (base.with_suffix(".rs"), base / "mod.rs"):
            if p in self.files and pat.search(self.files[p]):
                return True
        return False

    # references -----------------------------------------------------------------------------

    def references(self):
        """Yields (from module, to module, name, file, line) for every reference that leaves
        its top-level module. `to` is "?" when a `crate::Name` could not be resolved."""
        for path, code in self.files.items():
            src_mod = self.top_module(path)
            modpath = self.module_path(path)
            toks = tokenize(code)
            depth = 0
            inline_mods: list[int] = []  # brace depth of each enclosing inline `mod x { ... }`
            i = 0
            while i < len(toks):
                t, line = toks[i]
                prev = toks[i - 1][0] if i else ""
                if t == "{":
                    depth += 1
                elif t == "}":
                    depth -= 1
                    if inline_mods and inline_mods[-1] > depth:
                        inline_mods.pop()
                elif t == "mod" and i + 2 < len(toks) and _is_ident(toks[i + 1][0]) and toks[i + 2][0] == "{":
                    inline_mods.append(depth + 1)
                starts_path = prev != "::" and i + 1 < len(toks) and toks[i + 1][0] == "::"
                if t in ("crate", "$crate") and starts_path:
                    leaves, j = parse_tree(toks, i + 2)
                    for leaf in leaves:
                        yield from self._ref(src_mod, leaf, path, line)
                    i = max(j, i + 1)
                    continue
                if t == "super" and starts_path:
                    leaves, j = parse_tree(toks, i)
                    for leaf in leaves:
                        ups = 0
                        while ups < len(leaf) and leaf[ups] == "super":
                            ups += 1
                        if ups >= len(modpath) + len(inline_mods):  # climbs to the crate root
                            yield from self._ref(src_mod, leaf[ups:], path, line)
                    i = max(j, i + 1)
                    continue
                i += 1

    def _ref(self, src_mod, leaf, path, line):
        target = self.resolve_root(leaf)
        if target is None or target == src_mod:
            return
        if target in self.top_modules and leaf and leaf[0] == target:
            rest = leaf[1:]
            if rest and rest[-1] == "self":
                rest = rest[:-1]
            name = "::".join(rest) or "self"
        else:
            name = "::".join(leaf) or "self"
        yield src_mod, target, name, path, line


# --------------------------------------------------------------------------------------------
# Graph algorithms


def tarjan(nodes: list[str], edges: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    sccs: list[list[str]] = []
    counter = [0]

    def visit(v: str):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            sccs.append(sorted(comp))

    sys.setrecursionlimit(max(1000, 10 * len(nodes) + 100))
    for v in nodes:
        if v not in index:
            visit(v)
    return sccs


def floors(nodes: list[str], edges: dict[str, set[str]], sccs: list[list[str]]) -> dict[str, int]:
    comp_of = {m: k for k, comp in enumerate(sccs) for m in comp}
    down: dict[int, set[int]] = defaultdict(set)
    for a in nodes:
        for b in edges.get(a, ()):
            if comp_of[a] != comp_of[b]:
                down[comp_of[a]].add(comp_of[b])
    memo: dict[int, int] = {}

    def floor(c: int) -> int:
        if c not in memo:
            memo[c] = 1 + max((floor(d) for d in down[c]), default=-1)
        return memo[c]

    return {m: floor(comp_of[m]) for m in nodes}


# --------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(
        description="Dependency graph between the crate's top-level modules.",
    )
    ap.add_argument("--check", action="store_true", help="exit 1 if there is a cycle")
    ap.add_argument("--leaves", default="", help="comma-separated modules that must import no other crate module")
    ap.add_argument("--top", action="append", default=[], help="a module no other module may import (repeatable)")
    ap.add_argument("--src", default=None, help="source directory (default: src/ of this repository)")
    args = ap.parse_args()

    src = Path(args.src) if args.src else Path(__file__).resolve().parent.parent / "src"
    crate = Crate(src)

    refs: dict[tuple[str, str], list[str]] = defaultdict(list)
    unresolved: list[str] = []
    for a, b, name, path, line in crate.references():
        if a == "lib":
            continue
        if b == "?":
            unresolved.append(f"{path.relative_to(src.parent)}:{line}: crate::{name}")
            continue
        refs[(a, b)].append(name)

    nodes = sorted(crate.top_modules | {"lib"})
    edges: dict[str, set[str]] = defaultdict(set)
    for a, b in refs:
        edges[a].add(b)
    sccs = tarjan(nodes, edges)
    cycles = sorted((c for c in sccs if len(c) > 1), key=lambda c: (-len(c), c))
    floor = floors(nodes, edges, sccs)

    def edge_line(a: str, b: str) -> str:
        names = refs[(a, b)]
        return f"{a} -> {b} ({len(names)} ref{'s' if len(names) != 1 else ''}: {', '.join(sorted(set(names)))})"

    print(f"modules ({len(nodes)}): {', '.join(nodes)}")
    print(f"\nedges ({len(refs)}):")
    for a, b in sorted(refs):
        print(f"  {edge_line(a, b)}")
    if unresolved:
        print(f"\nunresolved crate:: names ({len(unresolved)}), left out of the graph:")
        for u in unresolved:
            print(f"  {u}")
    print(f"\ncycles (strongly connected components of more than one module): {len(cycles)}")
    for c in cycles:
        print(f"  {len(c)} modules: {', '.join(c)}")
    print("\nfloors (longest path down in the condensed graph; 0 = imports no crate module):")
    by_floor: dict[int, list[str]] = defaultdict(list)
    for m in nodes:
        by_floor[floor[m]].append(m)
    for f in sorted(by_floor):
        print(f"  {f}: {', '.join(by_floor[f])}")

    failures: list[str] = []
    if args.check and cycles:
        for c in cycles:
            inside = [(a, b) for (a, b) in sorted(refs) if a in c and b in c]
            msg = [f"cycle between {len(c)} modules: {', '.join(c)}; the edges inside it:"]
            msg += [f"    {edge_line(a, b)}" for a, b in inside]
            failures.append("\n".join(msg))
    for m in [x.strip() for x in args.leaves.split(",") if x.strip()] + [t.strip() for t in args.top]:
        if m not in nodes:
            print(f"module-graph: no module named {m!r} (modules: {', '.join(nodes)})", file=sys.stderr)
            return 2
    for m in [x.strip() for x in args.leaves.split(",") if x.strip()]:
        for a, b in sorted(refs):
            if a == m:
                failures.append(f"leaf module {m} imports another crate module: {edge_line(a, b)}")
    for m in (t.strip() for t in args.top):
        for a, b in sorted(refs):
            if b == m:
                failures.append(f"top module {m} is imported: {edge_line(a, b)}")
    if failures:
        print("\nFAILED:", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
