#!/usr/bin/env python3
"""Renders the crate's public API from its rustdoc JSON as a stable, sorted text listing.

What it does: reads the JSON that `cargo rustdoc ... --output-format json` writes
(scripts/public-api.sh builds it and calls this), walks from the crate root module through
every public item, following `pub use` re-exports (globs too) and skipping `#[doc(hidden)]`
items with their contents, and prints one line per public path:

    <public path> <kind> [<detail>]

  llm_gateway_otel::retry::Retry struct
  llm_gateway_otel::retry::Retry trait-impl impl Clone for Retry
  llm_gateway_otel::retry::Retry::attempts method fn attempts(self, attempts: u32) -> Self
  llm_gateway_otel::report::AttemptRecord::status field Option<u16>

Functions and methods get a signature rendered from the JSON type tree; structs their public
fields, enums their variants, traits their items; types their inherent methods and their trait
impls, without the impls rustdoc synthesizes (auto traits: `is_synthetic`) or the blanket ones
(`From`, `Into`, `Any`, `Borrow`...: `blanket_impl`). An item reachable by two paths (defined
in `request`, re-exported at the root) is listed under both: dropping either path breaks users.
Types in signatures are written by their name, prefixed with their crate for crates other than
this one and std/core/alloc (`reqwest::Response`, `Duration`, `RequestFacts`).

Usage: public_api.py path/to/crate.json > public-api.txt
The format_version seen is printed on stderr; the listing never holds rustdoc's numeric ids,
so it only changes when the API does (or when a new toolchain renders something differently).
Python 3.11 standard library only.
"""

from __future__ import annotations

import json
import re
import sys

KNOWN_FORMAT_VERSIONS = {57}
STD_CRATES = {"std", "core", "alloc"}
HIDDEN = re.compile(r"doc\s*\(([^)]*[\s,])?hidden\b")


class Api:
    def __init__(self, doc: dict):
        self.doc = doc
        self.index: dict[str, dict] = doc["index"]
        self.paths: dict[str, dict] = doc["paths"]
        self.crates: dict[str, dict] = doc["external_crates"]
        self.lines: set[str] = set()
        self.root_name = self.index[str(doc["root"])]["name"]

    # ---------------------------------------------------------------------------------------
    # helpers

    def item(self, id_) -> dict | None:
        return None if id_ is None else self.index.get(str(id_))

    @staticmethod
    def hidden(item: dict) -> bool:
        for a in item.get("attrs", ()):
            text = a if isinstance(a, str) else json.dumps(a)
            if HIDDEN.search(text):
                return True
        return False

    @staticmethod
    def kind(item: dict) -> str:
        return next(iter(item["inner"]))

    def emit(self, path: str, kind: str, detail: str = "") -> None:
        self.lines.add(f"{path} {kind} {detail.strip()}".rstrip())

    # ---------------------------------------------------------------------------------------
    # names of types

    def path_name(self, p: dict) -> str:
        """The name a path is shown by: short for this crate and std, crate-prefixed else."""
        written = p.get("path") or p.get("name") or "?"
        last = written.split("::")[-1]
        summary = self.paths.get(str(p.get("id")))
        if summary:
            last = summary["path"][-1]
            cid = summary["crate_id"]
            if cid != 0:
                crate = self.crates.get(str(cid), {}).get("name", "")
                if crate and crate not in STD_CRATES:
                    return f"{crate}::{last}"
            return last
        item = self.item(p.get("id"))
        if item and item.get("name"):
            return item["name"]
        return last

    def path(self, p: dict) -> str:
        return self.path_name(p) + self.generic_args(p.get("args"))

    # ---------------------------------------------------------------------------------------
    # types

    def ty(self, t) -> str:
        if t is None:
            return "()"
        if isinstance(t, str):
            return t
        (k, v), = t.items()
        if k == "resolved_path":
            return self.path(v)
        if k == "generic" or k == "primitive":
            return v
        if k == "borrowed_ref":
            lt = f"{v['lifetime']} " if v.get("lifetime") else ""
            mut = "mut " if v.get("is_mutable") else ""
            return f"&{lt}{mut}{self.ty(v['type'])}"
        if k == "raw_pointer":
            return f"*{'mut' if v.get('is_mutable') else 'const'} {self.ty(v['type'])}"
        if k == "tuple":
            inner = ", ".join(self.ty(x) for x in v)
            return f"({inner},)" if len(v) == 1 else f"({inner})"
        if k == "slice":
            return f"[{self.ty(v)}]"
        if k == "array":
            return f"[{self.ty(v['type'])}; {v['len']}]"
        if k == "impl_trait":
            return "impl " + self.bounds(v)
        if k == "dyn_trait":
            parts = [self.poly_trait(pt) for pt in v.get("traits", ())]
            if v.get("lifetime"):
                parts.append(v["lifetime"])
            return "dyn " + " + ".join(parts)
        if k == "qualified_path":
            self_ty = self.ty(v.get("self_type"))
            args = self.generic_args(v.get("args"))
            if v.get("trait"):
                return f"<{self_ty} as {self.path(v['trait'])}>::{v['name']}{args}"
            return f"{self_ty}::{v['name']}{args}"
        if k == "function_pointer":
            hp = self.hrtb(v.get("generic_params", ()))
            return f"{hp}{self.header(v.get('header', {}))}fn{self.sig_args(v['sig'])}"
        if k == "infer":
            return "_"
        if k == "pat":
            return f"{self.ty(v.get('type'))} is {v.get('__pat_unstable_do_not_use', '_')}"
        return f"<{k}>"

    def poly_trait(self, pt: dict) -> str:
        return self.hrtb(pt.get("generic_params", ())) + self.path(pt["trait"])

    def hrtb(self, params) -> str:
        return f"for<{', '.join(self.generic_param(p) for p in params)}> " if params else ""

    def generic_args(self, args) -> str:
        if not args:
            return ""
        if "angle_bracketed" in args:
            ab = args["angle_bracketed"]
            parts = [self.generic_arg(a) for a in ab.get("args", ())]
            parts += [self.constraint(c) for c in ab.get("constraints", ())]
            return f"<{', '.join(parts)}>" if parts else ""
        if "parenthesized" in args:
            pa = args["parenthesized"]
            out = f"({', '.join(self.ty(x) for x in pa.get('inputs', ()))})"
            if pa.get("output") is not None:
                out += f" -> {self.ty(pa['output'])}"
            return out
        if "return_type_notation" in args or args == "return_type_notation":
            return "(..)"
        return "<?>"

    def generic_arg(self, a) -> str:
        if isinstance(a, str):
            return "_" if a == "infer" else a
        (k, v), = a.items()
        if k == "lifetime":
            return v
        if k == "type":
            return self.ty(v)
        if k == "const":
            return v.get("expr") or v.get("value") or "_"
        return "_"

    def constraint(self, c: dict) -> str:
        name = c["name"] + self.generic_args(c.get("args"))
        b = c.get("binding", {})
        if "equality" in b:
            term = b["equality"]
            val = self.ty(term["type"]) if "type" in term else (term.get("constant", {}).get("expr") or "_")
            return f"{name} = {val}"
        if "constraint" in b:
            return f"{name}: {self.bounds(b['constraint'])}"
        return name

    def bounds(self, bounds) -> str:
        return " + ".join(self.bound(b) for b in bounds)

    def bound(self, b) -> str:
        (k, v), = b.items()
        if k == "trait_bound":
            modifier = {"maybe": "?", "maybe_const": "~const "}.get(v.get("modifier", "none"), "")
            return self.hrtb(v.get("generic_params", ())) + modifier + self.path(v["trait"])
        if k == "outlives":
            return v
        if k == "use":
            args = []
            for a in v:
                if isinstance(a, str):
                    args.append(a)
                else:
                    args.append(next(iter(a.values())))
            return f"use<{', '.join(args)}>"
        return f"<{k}>"

    # ---------------------------------------------------------------------------------------
    # generics

    def generic_param(self, p: dict) -> str:
        name = p["name"]
        (k, v), = p["kind"].items()
        if k == "lifetime":
            out = v.get("outlives") or []
            return f"{name}: {' + '.join(out)}" if out else name
        if k == "type":
            s = name
            if v.get("bounds"):
                s += f": {self.bounds(v['bounds'])}"
            if v.get("default") is not None:
                s += f" = {self.ty(v['default'])}"
            return s
        if k == "const":
            s = f"const {name}: {self.ty(v['type'])}"
            if v.get("default") is not None:
                s += f" = {v['default']}"
            return s
        return name

    def generics(self, g: dict | None) -> str:
        if not g:
            return ""
        params = [
            p for p in g.get("params", ())
            if not ("type" in p["kind"] and p["kind"]["type"].get("is_synthetic"))
        ]
        return f"<{', '.join(self.generic_param(p) for p in params)}>" if params else ""

    def where_clause(self, g: dict | None) -> str:
        preds = []
        for wp in (g or {}).get("where_predicates", ()):
            (k, v), = wp.items()
            if k == "bound_predicate":
                preds.append(
                    f"{self.hrtb(v.get('generic_params', ()))}{self.ty(v['type'])}: {self.bounds(v['bounds'])}"
                )
            elif k == "lifetime_predicate":
                preds.append(f"{v['lifetime']}: {' + '.join(v['outlives'])}")
            elif k == "eq_predicate":
                rhs = v["rhs"]
                rhs_s = self.ty(rhs["type"]) if "type" in rhs else (rhs.get("constant", {}).get("expr") or "_")
                preds.append(f"{self.ty(v['lhs'])} = {rhs_s}")
        return f" where {', '.join(preds)}" if preds else ""

    # ---------------------------------------------------------------------------------------
    # functions

    @staticmethod
    def header(h: dict) -> str:
        out = ""
        if h.get("is_const"):
            out += "const "
        if h.get("is_async"):
            out += "async "
        if h.get("is_unsafe"):
            out += "unsafe "
        abi = h.get("abi", "Rust")
        if abi != "Rust":
            if isinstance(abi, dict):
                (name, _), = abi.items()
                abi = name
            out += f'extern "{abi}" '
        return out

    def sig_args(self, sig: dict) -> str:
        args = []
        for name, t in sig.get("inputs", ()):
            if name == "self":
                if t == {"generic": "Self"}:
                    args.append("self")
                    continue
                if "borrowed_ref" in t and t["borrowed_ref"]["type"] == {"generic": "Self"}:
                    r = t["borrowed_ref"]
                    lt = f"{r['lifetime']} " if r.get("lifetime") else ""
                    args.append(f"&{lt}{'mut ' if r.get('is_mutable') else ''}self")
                    continue
            args.append(f"{name}: {self.ty(t)}")
        if sig.get("is_c_variadic"):
            args.append("...")
        out = f"({', '.join(args)})"
        if sig.get("output") is not None:
            out += f" -> {self.ty(sig['output'])}"
        return out

    def fn_sig(self, item: dict) -> str:
        f = item["inner"]["function"]
        g = f.get("generics")
        return (
            f"{self.header(f.get('header', {}))}fn {item['name']}{self.generics(g)}"
            f"{self.sig_args(f['sig'])}{self.where_clause(g)}"
        )

    # ---------------------------------------------------------------------------------------
    # the walk

    def walk(self) -> list[str]:
        root = self.item(self.doc["root"])
        self.emit(self.root_name, "crate")
        self.module_items(root, self.root_name, set())
        return sorted(self.lines)

    def module_items(self, module: dict, path: str, stack: set) -> None:
        key = (module["id"], path)
        if key in stack:
            return
        stack = stack | {key}
        for id_ in module["inner"]["module"]["items"]:
            item = self.item(id_)
            if item is None or item.get("visibility") != "public" or self.hidden(item):
                continue
            if self.kind(item) == "use":
                self.use_item(item, path, stack)
            elif item.get("name"):
                self.item_lines(item, f"{path}::{item['name']}", stack)

    def use_item(self, item: dict, path: str, stack: set) -> None:
        u = item["inner"]["use"]
        target = self.item(u.get("id"))
        if u.get("is_glob"):
            if target is None:
                self.emit(f"{path}::*", "use", f"use {u['source']}::*")
            elif self.kind(target) == "module":
                self.module_items(target, path, stack)
            elif self.kind(target) == "enum":
                for vid in target["inner"]["enum"]["variants"]:
                    v = self.item(vid)
                    if v and not self.hidden(v):
                        self.variant_line(v, f"{path}::{v['name']}")
            return
        name = u["name"]
        if target is None:
            # an item of another crate (or a primitive) re-exported without being inlined
            summary = self.paths.get(str(u.get("id")))
            src = "::".join(summary["path"]) if summary else u["source"]
            kind = summary["kind"] if summary else "item"
            self.emit(f"{path}::{name}", "use", f"pub use {src} ({kind})")
            return
        if self.hidden(target):
            return
        self.item_lines(target, f"{path}::{name}", stack)

    def item_lines(self, item: dict, path: str, stack: set) -> None:
        k = self.kind(item)
        v = item["inner"][k]
        if k == "module":
            self.emit(path, "module")
            self.module_items(item, path, stack)
        elif k in ("struct", "union"):
            self.adt(item, path, k)
        elif k == "enum":
            note = " (some variants hidden)" if v.get("has_stripped_variants") else ""
            self.emit(path, "enum", self.generics(v.get("generics")) + self.where_clause(v.get("generics")) + self.attrs_note(item) + note)
            for vid in v.get("variants", ()):
                var = self.item(vid)
                if var and not self.hidden(var):
                    self.variant_line(var, f"{path}::{var['name']}")
            self.impls(v.get("impls", ()), path)
        elif k == "trait":
            self.trait(item, path)
        elif k == "function":
            self.emit(path, "fn", self.fn_sig(item))
        elif k == "constant":
            c = v.get("const", {})
            val = f" = {c['expr']}" if c.get("is_literal") and c.get("expr") else ""
            self.emit(path, "const", f"{self.ty(v['type'])}{val}")
        elif k == "static":
            mut = "mut " if v.get("is_mutable") else ""
            self.emit(path, "static", f"{mut}{self.ty(v['type'])}")
        elif k == "type_alias":
            g = v.get("generics")
            self.emit(path, "type", f"{self.generics(g)} = {self.ty(v['type'])}{self.where_clause(g)}")
        elif k == "macro":
            self.emit(path, "macro")
        elif k == "proc_macro":
            self.emit(path, "proc-macro", v.get("kind", ""))
        elif k == "trait_alias":
            g = v.get("generics")
            self.emit(path, "trait-alias", f"{self.generics(g)} = {self.bounds(v.get('params', ()))}")
        elif k == "extern_crate":
            self.emit(path, "extern-crate", v.get("name", ""))
        elif k == "primitive":
            self.emit(path, "primitive")
        else:
            self.emit(path, k)

    def attrs_note(self, item: dict) -> str:
        notes = []
        for a in item.get("attrs", ()):
            if a == "non_exhaustive" or (isinstance(a, dict) and "non_exhaustive" in a):
                notes.append("#[non_exhaustive]")
            elif isinstance(a, dict) and "repr" in a:
                notes.append("#[repr]" if not isinstance(a["repr"], dict) else f"#[repr({a['repr'].get('kind', '')})]")
        return (" " + " ".join(sorted(notes))) if notes else ""

    def adt(self, item: dict, path: str, k: str) -> None:
        v = item["inner"][k]
        g = v.get("generics")
        kind = v.get("kind")
        shape, private = "", False
        fields: list[tuple[str, dict]] = []
        if kind == "unit":
            shape = " (unit)"
        elif isinstance(kind, dict) and "tuple" in kind:
            shape = " (tuple)"
            for pos, fid in enumerate(kind["tuple"]):
                f = self.item(fid)
                if f is None or self.hidden(f):
                    private = True
                else:
                    fields.append((str(pos), f))
        elif isinstance(kind, dict) and "plain" in kind:
            private = kind["plain"].get("has_stripped_fields", False)
            fields = [(f["name"], f) for f in map(self.item, kind["plain"]["fields"]) if f and not self.hidden(f)]
        elif "fields" in v:  # union
            private = v.get("has_stripped_fields", False)
            fields = [(f["name"], f) for f in map(self.item, v["fields"]) if f and not self.hidden(f)]
        note = " (some fields private)" if private else ""
        self.emit(path, k, f"{self.generics(g)}{self.where_clause(g)}{shape}{self.attrs_note(item)}{note}".strip())
        for name, f in fields:
            self.emit(f"{path}::{name}", "field", self.ty(f["inner"]["struct_field"]))
        self.impls(v.get("impls", ()), path)

    def variant_line(self, var: dict, path: str) -> None:
        v = var["inner"]["variant"]
        kind = v.get("kind")
        detail = ""
        if isinstance(kind, dict) and "tuple" in kind:
            parts = []
            for fid in kind["tuple"]:
                f = self.item(fid)
                parts.append("_" if f is None or self.hidden(f) else self.ty(f["inner"]["struct_field"]))
            detail = f"({', '.join(parts)})"
        elif isinstance(kind, dict) and "struct" in kind:
            st = kind["struct"]
            parts = [
                f"{f['name']}: {self.ty(f['inner']['struct_field'])}"
                for f in map(self.item, st.get("fields", ()))
                if f and not self.hidden(f)
            ]
            if st.get("has_stripped_fields"):
                parts.append("..")
            detail = "{ " + ", ".join(parts) + " }"
        if v.get("discriminant"):
            detail += f" = {v['discriminant'].get('expr') or v['discriminant'].get('value')}"
        self.emit(path, "variant", (detail + self.attrs_note(var)).strip())

    def impl_head(self, imp: dict) -> str:
        g = imp.get("generics")
        head = f"impl{self.generics(g)} "
        if imp.get("is_unsafe"):
            head = "unsafe " + head
        if imp.get("trait"):
            head += ("!" if imp.get("is_negative") else "") + self.path(imp["trait"]) + " for "
        head += self.ty(imp["for"]) + self.where_clause(g)
        assoc = []
        for iid in imp.get("items", ()):
            it = self.item(iid)
            if it and self.kind(it) == "assoc_type" and it["inner"]["assoc_type"].get("type") is not None:
                assoc.append(f"type {it['name']} = {self.ty(it['inner']['assoc_type']['type'])}")
        if assoc:
            head += " { " + "; ".join(sorted(assoc)) + " }"
        return head

    def impls(self, ids, path: str) -> None:
        for iid in ids:
            it = self.item(iid)
            if it is None or self.hidden(it):
                continue
            imp = it["inner"]["impl"]
            if imp.get("is_synthetic") or imp.get("blanket_impl") is not None:
                continue
            if imp.get("trait") is None:
                for mid in imp.get("items", ()):
                    m = self.item(mid)
                    if m is None or m.get("visibility") != "public" or self.hidden(m):
                        continue
                    mk = self.kind(m)
                    mpath = f"{path}::{m['name']}"
                    if mk == "function":
                        self.emit(mpath, "method", self.fn_sig(m))
                    elif mk == "assoc_const":
                        self.emit(mpath, "assoc-const", self.ty(m["inner"]["assoc_const"]["type"]))
                    elif mk == "assoc_type":
                        self.emit(mpath, "assoc-type", self.ty(m["inner"]["assoc_type"].get("type")))
            else:
                self.emit(path, "trait-impl", self.impl_head(imp))

    def trait(self, item: dict, path: str) -> None:
        v = item["inner"]["trait"]
        g = v.get("generics")
        detail = f"trait {item['name']}{self.generics(g)}"
        if v.get("bounds"):
            detail += ": " + self.bounds(v["bounds"])
        detail += self.where_clause(g)
        flags = []
        if v.get("is_auto"):
            flags.append("auto")
        if v.get("is_unsafe"):
            flags.append("unsafe")
        if v.get("is_dyn_compatible") is False:
            flags.append("not dyn-compatible")
        if flags:
            detail += f" ({', '.join(flags)})"
        self.emit(path, "trait", detail.strip())
        for iid in v.get("items", ()):
            it = self.item(iid)
            if it is None or self.hidden(it):
                continue
            ik = self.kind(it)
            ipath = f"{path}::{it['name']}"
            if ik == "function":
                provided = " (provided)" if it["inner"]["function"].get("has_body") else ""
                self.emit(ipath, "trait-method", self.fn_sig(it) + provided)
            elif ik == "assoc_type":
                at = it["inner"]["assoc_type"]
                s = f"type {it['name']}{self.generics(at.get('generics'))}"
                if at.get("bounds"):
                    s += ": " + self.bounds(at["bounds"])
                if at.get("type") is not None:
                    s += f" = {self.ty(at['type'])}"
                self.emit(ipath, "trait-type", s)
            elif ik == "assoc_const":
                ac = it["inner"]["assoc_const"]
                s = f"const {it['name']}: {self.ty(ac['type'])}"
                if ac.get("value") is not None:
                    s += " (provided)"
                self.emit(ipath, "trait-const", s)
        # implementations on types that are not this crate's own (those list it themselves),
        # blanket ones included: they are part of what the trait promises
        for iid in v.get("implementations", ()):
            it = self.item(iid)
            if it is None or self.hidden(it):
                continue
            imp = it["inner"]["impl"]
            if imp.get("is_synthetic"):
                continue
            for_ = imp.get("for", {})
            if "resolved_path" in for_:
                summary = self.paths.get(str(for_["resolved_path"].get("id")))
                if summary and summary["crate_id"] == 0:
                    continue
            self.emit(path, "implementor", self.impl_head(imp))


def main() -> int:
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} CRATE.json", file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        doc = json.load(f)
    fv = doc.get("format_version")
    print(f"public_api.py: rustdoc JSON format_version {fv}", file=sys.stderr)
    if fv not in KNOWN_FORMAT_VERSIONS:
        print(
            f"public_api.py: warning: written against format_version {sorted(KNOWN_FORMAT_VERSIONS)}; "
            "check the listing for '<...>' placeholders",
            file=sys.stderr,
        )
    lines = Api(doc).walk()
    sys.stdout.write("".join(line + "\n" for line in lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
