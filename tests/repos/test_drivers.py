"""Every driver is opened in one place, ``glint.repos.drivers`` (its docstring says why there)."""

from __future__ import annotations

import ast
from pathlib import Path

import glint

ADAPTER = Path(glint.__file__).parent / "repos" / "drivers.py"


def test_get_driver_is_called_from_the_adapter_only():
    root = Path(glint.__file__).parent
    callers = []
    for path in root.rglob("*.py"):
        if path == ADAPTER:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if name == "get_driver":
                    callers.append(f"{path.relative_to(root)}:{node.lineno}")
    assert callers == [], f"open drivers with glint.repos.drivers, not get_driver: {callers}"
