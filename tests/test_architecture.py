"""The package's structure: imports run one way, no module reaches into another's private names, modules stay small.

Read from the source (no imports run): every ``import`` and ``from ... import``
of a semkit module, at module level or inside a function, is an edge of the
import graph; a package's ``__init__`` is a module of its own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "semkit"
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _absolute(name: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = name.split(".") if _is_package(name) else name.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(name: str) -> list[tuple[str, list[str]]]:
    """(imported semkit module, names taken from it) for each import in module ``name``."""
    out = []
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name.split(".")[0] == "semkit"]
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(name, node)
            if target.split(".")[0] != "semkit":
                continue
            plain = []
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES:
                    out.append((sub, []))
                else:
                    plain.append(alias.name)
            if plain:
                out.append((target, plain))
    return [(t, names) for t, names in out if t in MODULES]


def graph() -> dict[str, set[str]]:
    return {name: {t for t, _ in imports(name)} - {name} for name in MODULES}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def private_imports() -> list[str]:
    """Imports of another module's private names or of a private module, ``module: what``."""
    out = []
    for name in MODULES:
        for target, names in imports(name):
            private = [n for n in names if n.startswith("_")]
            if any(part.startswith("_") for part in target.split(".")):
                private.append(target)
            out += [f"{name}: {target}.{n}" if n != target else f"{name}: {n}" for n in private]
    return out


#: The layers, lowest first: a module imports only from its own layer and those below (the data flow's order).
LAYERS = ["version", "validation", "registry", "scores", "space", "criterion", "store", "scene", "render", "classify",
          "function", "maps", "regions", "trust", "studies", "plot", "app", "accessor"]


def layer(name: str) -> int:
    parts = name.split(".")
    return len(LAYERS) if len(parts) == 1 else LAYERS.index(parts[1])  # the package's __init__ sits on top


def upward_imports() -> list[str]:
    """Imports of a higher layer, ``module -> module``."""
    return [f"{name} -> {target}" for name in MODULES for target, _ in imports(name)
            if layer(target) > layer(name)]


def test_every_module_has_a_layer():
    assert {n.split(".")[1] for n in MODULES if "." in n} <= set(LAYERS)


def test_imports_run_down_the_layers():
    assert upward_imports() == []


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_no_private_cross_imports():
    assert private_imports() == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_size(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines (at most {MAX_LINES}): split it by concept"


def test_public_names_do_not_shadow_modules():
    """``semkit.x`` (or ``semkit.pkg.x``) is the module x wherever a module x exists."""
    import importlib
    import types

    for name in MODULES:
        if not _is_package(name):
            continue
        package = importlib.import_module(name)
        for attr in [a for a in dir(package) if not a.startswith("_")]:
            if f"{name}.{attr}" in MODULES:
                assert isinstance(getattr(package, attr), types.ModuleType), f"{name}.{attr} shadows a module"


if __name__ == "__main__":
    print("cycles:", cycles(graph()))
    print("upward:", upward_imports())
    print("private:", "\n  ".join(private_imports()))
    print("sizes:", {n: len(p.read_text().splitlines()) for n, p in MODULES.items() if len(p.read_text().splitlines()) > MAX_LINES})
