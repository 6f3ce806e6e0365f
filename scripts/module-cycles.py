#!/usr/bin/env python3
"""Import cycles among the modules of one crate.

Usage: python3 scripts/module-cycles.py CRATE/src [-v] [--known "MOD MOD ..."]...

Builds the module graph from `crate::`, `super::` and child-module paths (in `use` lines and
inline; comments, string literals and a trailing `#[cfg(test)]` module are ignored) and prints
its strongly connected components of more than one module: each is an import cycle. `-v` lists
the edges inside each cycle. Exit status 1 when a cycle exists. (A stand-in for
`cargo modules dependencies --acyclic`, which needs rust-analyzer's crates to build.)
`--known "A B C"` names a cycle that is known and documented: a cycle of exactly those modules
is printed as known and does not fail; any other cycle, or a known one that grew, still fails.
"""
import os, re, sys
root = sys.argv[1]  # crate src dir
def modname(path):
    rel = os.path.relpath(path, root)[:-3]
    parts = rel.split(os.sep)
    if parts[-1] in ("mod", "lib"): parts = parts[:-1]
    return "::".join(parts) or "crate"
mods = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith(".rs"):
            p = os.path.join(d, f); mods[modname(p)] = p
def strip(src):
    src = re.sub(r'//[^\n]*', '', src)
    src = re.sub(r'/\*.*?\*/', '', src, flags=re.S)
    src = re.sub(r'"(?:\\.|[^"\\])*"', '""', src)
    # drop #[cfg(test)] mod tests { ... } at end of file (unit tests are not the module's layering)
    i = src.find('#[cfg(test)]')
    return src if i < 0 else src[:i]
def resolve(path):
    # longest known module prefix
    parts = path.split("::")
    for n in range(len(parts), 0, -1):
        cand = "::".join(parts[:n])
        if cand in mods: return cand
    return None
edges = {m: set() for m in mods}
for m, p in mods.items():
    src = strip(open(p).read())
    parent = m.rsplit("::", 1)[0] if "::" in m else "crate"
    refs = []
    for mm in re.finditer(r'crate::((?:\w+::)*\w+)', src): refs.append(mm.group(1))
    for mm in re.finditer(r'\bsuper::((?:\w+::)*\w+)', src):
        refs.append((parent + "::" if parent != "crate" else "") + mm.group(1))
    # `use crate::{a, b::c}` groups
    for mm in re.finditer(r'crate::\{([^}]*)\}', src):
        for item in mm.group(1).split(","):
            item = item.strip().split(" as ")[0]
            if item: refs.append(item)
    prefix = "" if m == "crate" else m + "::"
    for child in mods:
        if child.startswith(prefix) and child != m and "::" not in child[len(prefix):]:
            short = child[len(prefix):]
            if re.search(r'(?<![\w:])' + short + r'::', src):
                refs.append(child)
    for r in refs:
        t = resolve(r)
        if t and t != m and t != "crate" and not m.startswith(t + "::"):
            edges[m].add(t)
# Tarjan
idx, low, st, on, out, c = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: out.append(sorted(comp))
for v in sorted(mods):
    if v not in idx: sc(v)
print(f"{len(mods)} modules, {sum(len(e) for e in edges.values())} edges, {len(out)} cycle(s)")
for comp in out:
    print("cycle:", " ".join(comp))
    if "-v" in sys.argv:
        for a in comp:
            print("   ", a, "->", sorted(e for e in edges[a] if e in comp))
known = [sorted(sys.argv[i + 1].split()) for i, a in enumerate(sys.argv) if a == "--known"]
unknown = [comp for comp in out if comp not in known]
for comp in out:
    if comp in known:
        print("known cycle (documented, not failing):", " ".join(comp))
sys.exit(1 if unknown else 0)
