"""Every import points down: faces → Django apps → engine → drivers, and nothing goes round.

Read from the source (the AST of ``src/glint``), so function-level ("lazy") imports count like
any other: a lazy import that dodges a circle at import time is still a circle in the design.

The layers, top to bottom:

- faces: ``glint.web``, ``glint.api``, ``glint.cli``, ``glint.server`` (and ``glint.urls``);
- Django apps: ``accounts``, ``repos``, ``inventory``, ``jobs``, ``plans``, ``audit``,
  ``transfers``, ``subscriptions``
  (an app's own ``api/`` package is its face, and may import what the app imports);
- the engine: ``glint.replication`` and the pure matrix ``glint.matrix``: no Django, no app;
- drivers: ``glint.clouds``: nothing of Glint above them.

Shared plumbing that any layer may use: ``glint.errors``, ``glint.config``, ``glint.settings``,
``glint.current_request``, ``glint.logs``, ``glint.filtersets``, ``glint.rounds`` (the loop of the
background threads) and ``glint.drf`` (what the apps' filters and API views share). Within the
apps, inventory is polling and storage: it imports neither plans nor jobs.

Every rule holds for the whole tree: there is no list of exceptions.
"""

from __future__ import annotations

import ast
import pathlib
from collections import defaultdict

SRC = pathlib.Path(__file__).resolve().parents[1] / "src"
ROOT = SRC / "glint"

FACES = {"web", "api", "cli", "server", "urls", "wsgi"}
APPS = {
    "accounts",
    "repos",
    "inventory",
    "jobs",
    "plans",
    "audit",
    "transfers",
    "subscriptions",
}
ENGINE = {"replication", "matrix"}
DRIVERS = {"clouds"}
PLUMBING = {
    "errors",
    "config",
    "settings",
    "drf",
    "current_request",
    "logs",
    "filtersets",
    "rounds",
    "__main__",
}


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool, modules: set[str]):
    """Every module ``module`` imports, at any depth of its code, but not under TYPE_CHECKING."""
    found = set()

    def visit(node):
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in modules else target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _graph() -> dict[str, set[str]]:
    paths = [p for p in ROOT.rglob("*.py") if "migrations" not in p.parts]
    modules = {_module_name(p) for p in paths}
    graph = {}
    for path in paths:
        name = _module_name(path)
        tree = ast.parse(path.read_text(), str(path))
        graph[name] = _imports(tree, name, path.name == "__init__.py", modules)
    return graph


GRAPH = _graph()


def _part(module: str) -> str:
    """The top-level part of Glint a module belongs to (``glint.jobs.matrix`` → ``jobs``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _glint_imports():
    for module, imported in sorted(GRAPH.items()):
        for target in sorted(imported):
            if target == "glint" or target.startswith("glint."):
                yield module, target


def _broken(rule) -> list[str]:
    return [
        f"{module} imports {target}" for module, target in _glint_imports() if rule(module, target)
    ]


def test_drivers_import_nothing_of_glint_above_them():
    assert _broken(lambda m, t: _part(m) in DRIVERS and _part(t) not in DRIVERS | {"errors"}) == []


def test_the_engine_imports_no_django_and_no_app():
    engine = [m for m in GRAPH if _part(m) in ENGINE]
    uses_django = [
        f"{m} imports {t}"
        for m in engine
        for t in sorted(GRAPH[m])
        if t.split(".")[0] in ("django", "rest_framework", "django_filters")
    ]
    assert uses_django == []
    allowed = ENGINE | DRIVERS | {"errors"}
    assert _broken(lambda m, t: _part(m) in ENGINE and _part(t) not in allowed) == []


#: The parts of transfers that are plain Python (fetching links, formats, the upload source, its
#: part file and errors): they run in job workers and tests without a database.
PLAIN_TRANSFERS = {
    f"glint.transfers.{name}" for name in ("errors", "fetch", "formats", "parts", "sources")
}


def test_the_plain_parts_of_transfers_import_no_django_and_no_app():
    modules = sorted(PLAIN_TRANSFERS & GRAPH.keys())
    assert modules == sorted(PLAIN_TRANSFERS), "a plain module was renamed: update the list"
    uses_django = [
        f"{m} imports {t}"
        for m in modules
        for t in sorted(GRAPH[m])
        if t.split(".")[0] in ("django", "rest_framework", "django_filters")
    ]
    assert uses_django == []
    allowed = ENGINE | DRIVERS | {"errors"}
    assert (
        _broken(
            lambda m, t: (
                m in PLAIN_TRANSFERS and t not in PLAIN_TRANSFERS and _part(t) not in allowed
            )
        )
        == []
    )


def test_apps_import_no_face():
    assert _broken(lambda m, t: _part(m) in APPS and _part(t) in FACES) == []


def test_inventory_imports_neither_plans_nor_jobs():
    assert _broken(lambda m, t: _part(m) == "inventory" and _part(t) in ("plans", "jobs")) == []


def test_plumbing_imports_no_app_and_no_face():
    shared = {"errors", "drf", "current_request", "filtersets", "rounds"}
    assert _broken(lambda m, t: _part(m) in shared and _part(t) in APPS | FACES) == []


def _cycles(graph: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """The strongly connected components with more than one member (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def connect(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in graph:
                continue
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(tuple(sorted(component)))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_no_import_cycles_among_modules():
    glint_graph = {m: {t for t in targets if t in GRAPH} for m, targets in GRAPH.items()}
    assert _cycles(glint_graph) == []


def test_no_import_cycles_among_the_apps():
    """inventory, plans, jobs (and the others) do not import each other both ways."""
    apps = defaultdict(set)
    for module, target in _glint_imports():
        if _part(module) in APPS and _part(target) in APPS and _part(module) != _part(target):
            apps[_part(module)].add(_part(target))
    assert _cycles(dict(apps)) == []
