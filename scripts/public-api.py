#!/usr/bin/env python3
"""Renders the fotp crate's public Rust API from rustdoc JSON, one sorted line per item.

Usage: public-api.py target/doc/fotp.json > docs/public-api.txt

Why not `cargo public-api`: it is not installed on CI machines and pins a rustdoc JSON format
to a nightly; rustdoc's JSON output of the stable toolchain (RUSTC_BOOTSTRAP=1) read by this
script needs nothing beyond Python. Lines name items by the path users write (`fotp::Client`),
with signatures, fields, variants, trait methods and trait impls (auto traits and blanket impls
left out: they follow from the rest).
"""
import json
import sys

AUTO = {"Send", "Sync", "Unpin", "UnwindSafe", "RefUnwindSafe", "Freeze", "StructuralPartialEq"}


def main() -> None:
    d = json.load(open(sys.argv[1]))
    idx = d["index"]
    paths = d["paths"]
    out: set[str] = set()

    def item(i):
        return idx.get(str(i))

    def kind(it):
        return next(iter(it["inner"]))

    def name_of(i, fallback):
        p = paths.get(str(i))
        if p and p["crate_id"] == 0:
            return public_path.get(i, "::".join(p["path"]))
        return fallback

    def args(a):
        if not a:
            return ""
        if "angle_bracketed" in a:
            parts = []
            for g in a["angle_bracketed"]["args"]:
                if "type" in g:
                    parts.append(ty(g["type"]))
                elif "lifetime" in g:
                    parts.append(g["lifetime"])
                elif "const" in g:
                    parts.append(g["const"].get("expr", "_"))
            for c in a["angle_bracketed"].get("constraints", []):
                b = c["binding"]
                if "equality" in b:
                    parts.append(f"{c['name']} = {ty(b['equality']['type'])}")
                else:
                    parts.append(f"{c['name']}: " + " + ".join(bound(x) for x in b["constraint"]))
            return "<" + ", ".join(parts) + ">" if parts else ""
        if "parenthesized" in a:
            p = a["parenthesized"]
            o = p.get("output")
            return "(" + ", ".join(ty(t) for t in p["inputs"]) + ")" + (f" -> {ty(o)}" if o else "")
        return ""

    def path(p):
        return name_of(p["id"], p["path"]) + args(p.get("args"))

    def bound(b):
        if "trait_bound" in b:
            return path(b["trait_bound"]["trait"])
        if "outlives" in b:
            return b["outlives"]
        return "?"

    def ty(t):
        if t is None:
            return "()"
        k = next(iter(t))
        v = t[k]
        if k == "resolved_path":
            return path(v)
        if k == "generic":
            return v
        if k == "primitive":
            return v
        if k == "borrowed_ref":
            lt = (v["lifetime"] + " ") if v["lifetime"] else ""
            return "&" + lt + ("mut " if v["is_mutable"] else "") + ty(v["type"])
        if k == "raw_pointer":
            return ("*mut " if v["is_mutable"] else "*const ") + ty(v["type"])
        if k == "tuple":
            return "(" + ", ".join(ty(x) for x in v) + ")"
        if k == "slice":
            return "[" + ty(v) + "]"
        if k == "array":
            return f"[{ty(v['type'])}; {v['len']}]"
        if k == "impl_trait":
            return "impl " + " + ".join(bound(b) for b in v)
        if k == "dyn_trait":
            return "dyn " + " + ".join(path(p["trait"]) for p in v["traits"])
        if k == "qualified_path":
            return f"<{ty(v['self_type'])}>::{v['name']}"
        if k == "function_pointer":
            return "fn(...)"
        return k

    def generics(g):
        ps = []
        for p in g.get("params", []):
            k = p["kind"]
            if "lifetime" in k:
                continue
            if "type" in k:
                bs = k["type"].get("bounds", [])
                if k["type"].get("is_synthetic"):
                    continue
                ps.append(p["name"] + (": " + " + ".join(bound(b) for b in bs) if bs else ""))
            elif "const" in k:
                ps.append(f"const {p['name']}: {ty(k['const']['type'])}")
        return "<" + ", ".join(ps) + ">" if ps else ""

    def fn_sig(name, f):
        ins = []
        for n, t in f["sig"]["inputs"]:
            ins.append("self" if n == "self" and t == {"generic": "Self"} else
                       ("&self" if n == "self" and ty(t) == "&Self" else
                        ("&mut self" if n == "self" and ty(t) == "&mut Self" else f"{n}: {ty(t)}")))
        o = f["sig"].get("output")
        h = f.get("header", {})
        pre = ("const " if h.get("is_const") else "") + ("unsafe " if h.get("is_unsafe") else "")
        return f"{pre}fn {name}{generics(f['generics'])}({', '.join(ins)})" + (f" -> {ty(o)}" if o else "")

    public_path: dict[int, str] = {}

    def walk_module(mod_id, prefix):
        for i in item(mod_id)["inner"]["module"]["items"]:
            it = item(i)
            if it is None:
                continue
            k = kind(it)
            if k == "use":
                u = it["inner"]["use"]
                if u["id"] is not None and item(u["id"]) is not None:
                    public_path[u["id"]] = f"{prefix}::{u['name']}"
            elif k == "module":
                public_path[i] = f"{prefix}::{it['name']}"
                walk_module(i, f"{prefix}::{it['name']}")
            else:
                public_path[i] = f"{prefix}::{it['name']}"

    walk_module(d["root"], "fotp")

    def emit_impls(owner, ids):
        for i in ids:
            im = item(i)["inner"]["impl"]
            if im.get("blanket_impl") is not None or im.get("is_synthetic"):
                continue
            tr = im.get("trait")
            if tr is not None:
                if tr["path"].split("::")[-1] in AUTO:
                    continue
                out.add(f"impl {path(tr)} for {owner}")
                continue
            for j in im["items"]:
                m = item(j)
                if m is None or m.get("visibility") != "public":
                    continue
                mk = kind(m)
                if mk == "function":
                    out.add(f"pub {fn_sig(owner + '::' + m['name'], m['inner']['function'])}")
                elif mk == "assoc_const":
                    out.add(f"pub const {owner}::{m['name']}: {ty(m['inner']['assoc_const']['type'])}")

    for i, p in sorted(public_path.items(), key=lambda x: x[1]):
        it = item(i)
        k = kind(it)
        v = it["inner"][k]
        if k == "function":
            out.add("pub " + fn_sig(p, v))
        elif k == "constant":
            out.add(f"pub const {p}: {ty(v['type'])}")
        elif k == "static":
            out.add(f"pub static {p}: {ty(v['type'])}")
        elif k == "type_alias":
            out.add(f"pub type {p}{generics(v['generics'])} = {ty(v['type'])}")
        elif k == "struct":
            sk = v["kind"]
            out.add(f"pub struct {p}{generics(v['generics'])}")
            if isinstance(sk, dict) and "plain" in sk:
                for f in sk["plain"]["fields"]:
                    fi = item(f)
                    out.add(f"pub {p}::{fi['name']}: {ty(fi['inner']['struct_field'])}")
                if sk["plain"]["has_stripped_fields"]:
                    out.add(f"{p} has private fields")
            emit_impls(p, v["impls"])
        elif k == "enum":
            out.add(f"pub enum {p}{generics(v['generics'])}")
            for vid in v["variants"]:
                vi = item(vid)
                vk = vi["inner"]["variant"]["kind"]
                disc = vi["inner"]["variant"].get("discriminant")
                s = f"pub {p}::{vi['name']}"
                if isinstance(vk, dict) and "tuple" in vk:
                    s += "(" + ", ".join(ty(item(f)["inner"]["struct_field"]) if f is not None else "_" for f in vk["tuple"]) + ")"
                elif isinstance(vk, dict) and "struct" in vk:
                    s += " { " + ", ".join(item(f)["name"] + ": " + ty(item(f)["inner"]["struct_field"]) for f in vk["struct"]["fields"]) + " }"
                if disc:
                    s += f" = {disc['value']}"
                out.add(s)
            emit_impls(p, v["impls"])
        elif k == "trait":
            out.add(f"pub trait {p}" + (": " + " + ".join(bound(b) for b in v["bounds"]) if v["bounds"] else ""))
            for j in v["items"]:
                m = item(j)
                mk = kind(m)
                if mk == "function":
                    prov = " (provided)" if m["inner"]["function"].get("has_body") else ""
                    out.add(f"pub {fn_sig(p + '::' + m['name'], m['inner']['function'])}{prov}")
            for im in v.get("implementations", []):
                imp = item(im)["inner"]["impl"]
                out.add(f"impl {p} for {ty(imp['for'])}")
        elif k == "module":
            out.add(f"pub mod {p}")
        else:
            out.add(f"pub {k} {p}")

    for line in sorted(out):
        print(line)


if __name__ == "__main__":
    main()
