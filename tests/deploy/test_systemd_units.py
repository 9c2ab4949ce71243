"""The systemd units of ``deploy/systemd`` are valid (``systemd-analyze verify``, with the command
path of this checkout), keep their hardening, and the README's production checklist names every
file they use."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "deploy" / "systemd").glob("*.service"))
INSTALLED = "/opt/glint/venv/bin/glint"
HARDENING = ("NoNewPrivileges=yes", "ProtectSystem=strict", "User=glint", "CapabilityBoundingSet=")


def test_there_is_a_web_unit_and_a_worker_unit():
    assert [u.name for u in UNITS] == ["glint-worker.service", "glint.service"]


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_a_unit_verifies_and_is_hardened(unit, tmp_path):
    text = unit.read_text()
    for line in HARDENING:
        assert re.search(rf"^{re.escape(line)}$", text, re.M), f"{unit.name} lacks {line}"
    _verify(unit.name, text, tmp_path)


def _verify(name: str, text: str, directory: Path) -> None:
    """``systemd-analyze verify`` passes, without a warning, on unit ``name`` holding ``text``."""
    # verify checks that ExecStart's command exists: point it at this checkout's glint.
    local = directory / name
    local.write_text(text.replace(INSTALLED, str(Path(sys.executable).parent / "glint")))
    result = subprocess.run(
        [shutil.which("systemd-analyze") or "systemd-analyze", "verify", str(local)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_the_checklist_names_every_file_the_units_use():
    checklist = _checklist()
    assert checklist, "the README has a production checklist"
    for unit in UNITS:
        paths = set(re.findall(r"(?<![\w$])(/(?:etc|opt|var)/[\w./-]+)", unit.read_text()))
        assert paths, unit.name
        for path in paths:
            assert path.rstrip("/") in checklist, f"{unit.name} uses {path}: not in the checklist"


def _checklist():
    readme = (ROOT / "README.md").read_text()
    return readme.partition("### Production checklist")[2].partition("\n## ")[0]


def _checklist_blocks(language):
    """The code blocks of one language in the README's production checklist."""
    blocks = re.findall(rf"```{language}\n(.*?)```", _checklist(), re.S)
    return [textwrap.dedent(b) for b in blocks]


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_the_checklists_cache_drop_in_still_verifies(unit, tmp_path):
    """A cache on shared storage must be writable under ProtectSystem=strict: the README's drop-in
    says so, and a unit with it appended (what systemd merges) still verifies."""
    (drop_in,) = _checklist_blocks("ini")
    assert re.search(r"^ReadWritePaths=/\S+$", drop_in, re.M), drop_in
    # a second [Service] section merges, as a drop-in does
    _verify(unit.name, unit.read_text() + "\n" + drop_in, tmp_path)


def test_commands_by_hand_get_the_units_settings():
    """`glint migrate` or `glint restore` run without glint.env would quietly use an empty SQLite
    database: the checklist's wrapper must give them every setting the units have."""
    (wrapper,) = [b for b in _checklist_blocks("sh") if "glint-admin()" in b]
    properties = dict(p.split("=", 1) for p in re.findall(r"-p (\S+=\S+)", wrapper))
    for unit in UNITS:
        settings = dict(
            line.split("=", 1)
            for line in unit.read_text().splitlines()
            if line.startswith(("User=", "Group=", "EnvironmentFile=", "Environment="))
        )
        assert settings and settings.items() <= properties.items(), (unit.name, properties)
    assert INSTALLED + ' "$@"' in wrapper
    bare = re.findall(r"`[^`]*(?<![-\w])glint (?:migrate|backup|restore)\b", _checklist())
    assert not bare, f"commands in the checklist without glint-admin: {bare}"
