"""The package's shape, checked from source: no import cycle, no private name crossing modules,
no function too long to read in one go. Function-level (lazy) imports count like top-level ones."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mobilekit"
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


def _imports(tree: ast.AST, mods: dict[str, Path]) -> list[tuple[str, str]]:
    """(imported module, imported name or "") for every mobilekit import anywhere in ``tree``."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "mobilekit":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.append((sub, "") if sub in mods else (node.module, alias.name))
        elif isinstance(node, ast.Import):
            out += [(a.name, "") for a in node.names if a.name.split(".")[0] == "mobilekit"]
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: {m for m, _ in _imports(ast.parse(path.read_text()), mods) if m in mods and m != name}
            for name, path in mods.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_mobilekit_modules():
    graph = _graph()
    assert len(graph) > 40 and "mobilekit.pipeline.stages" in graph["mobilekit.pipeline"]
    assert _cycles(graph) == []


def test_no_private_name_is_imported_across_modules():
    mods = _modules()
    private = []
    for name, path in mods.items():
        for module, imported in _imports(ast.parse(path.read_text()), mods):
            if imported.startswith("_") and not imported.startswith("__"):
                private.append(f"{name} imports {module}.{imported}")
    assert private == []


def test_no_private_module_is_imported_as_a_name():
    """``from mobilekit import files`` hands a private module around as an object; import its public names."""
    found = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "mobilekit":
                found += [f"{name}: from {node.module} import {a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
    assert found == []


def test_no_function_longer_than_80_lines():
    long = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {lines} lines")
    assert long == []


def test_nothing_outside_the_package_imports_a_private_module():
    """Tests, benchmarks, converters and scripts use the public surface (mobilekit.backend for the lazy
    TensorFlow import, mobilekit.files for atomic writes), never ``mobilekit._x``."""
    root = PACKAGE.parent
    found = []
    for folder in ("tests", "benchmarks", "converters", "scripts"):
        for path in (root / folder).rglob("*.py"):
            if path == Path(__file__).resolve():
                continue
            text = path.read_text()
            for node in ast.walk(ast.parse(text)):
                names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                         [a.name for a in node.names] if isinstance(node, ast.Import) else [])
                if isinstance(node, ast.ImportFrom) and node.module == "mobilekit":
                    names += [f"mobilekit.{a.name}" for a in node.names]
                found += [f"{path.relative_to(root)}: {n}" for n in names
                          if n.startswith("mobilekit.") and any(p.startswith("_") and not p.startswith("__")
                                                                for p in n.split(".")[1:])]
            found += [f"{path.relative_to(root)}: {m}" for m in ("mobilekit._tf", "mobilekit._io", "mobilekit._checks")
                      if m in text]  # in strings run by a subprocess, too
    assert found == []
