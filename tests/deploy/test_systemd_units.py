"""The systemd units of ``deploy/systemd`` are valid (``systemd-analyze verify``, with the command
path of this checkout), keep their hardening, and the README's production checklist names every
file they use."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
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
    # verify checks that ExecStart's command exists: point it at this checkout's glint.
    local = tmp_path / unit.name
    local.write_text(text.replace(INSTALLED, str(Path(sys.executable).parent / "glint")))
    result = subprocess.run(
        [shutil.which("systemd-analyze") or "systemd-analyze", "verify", str(local)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_the_checklist_names_every_file_the_units_use():
    readme = (ROOT / "README.md").read_text()
    checklist = readme.partition("### Production checklist")[2].partition("\n## ")[0]
    assert checklist, "the README has a production checklist"
    for unit in UNITS:
        paths = set(re.findall(r"(?<![\w$])(/(?:etc|opt|var)/[\w./-]+)", unit.read_text()))
        assert paths, unit.name
        for path in paths:
            assert path.rstrip("/") in checklist, f"{unit.name} uses {path}: not in the checklist"
