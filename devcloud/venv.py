"""The cached virtualenv that runs Keystone, Glance and gunicorn.

The services live in their own virtualenv, never in the project's: Keystone and Glance pull in
~130 packages (oslo.*, eventlet, SQLAlchemy pins) that must not leak into Glint's own dependency
set. Building it takes about a minute, so it is cached and reused across runs, keyed by a hash of
``constraints/devcloud.txt`` and the Python version: a new pin or a new interpreter gives a new
venv, anything else reuses the old one.

The venv is built in a temporary directory beside its final place and renamed into place only
once ``pip`` succeeded, so a half-built venv (Ctrl-C, full disk, registry time-out) is never
reused. Because it is renamed, nothing may rely on the absolute paths pip writes into console
scripts' shebangs: devcloud always runs ``<venv>/bin/python -m ...`` or ``-c ...`` instead.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .errors import DevcloudError

REPO_ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = REPO_ROOT / "constraints" / "devcloud.txt"
# The top-level requirements; every transitive version comes from CONSTRAINTS.
REQUIREMENTS = ("glance", "keystone", "gunicorn")
# Written last, inside the temp dir, so its presence proves a complete build.
COMPLETE_MARKER = ".devcloud-complete"


def cache_root() -> Path:
    """Where cached venvs live: ``$GLINT_DEVCLOUD_CACHE`` or ``~/.cache/glint/devcloud``."""
    env = os.environ.get("GLINT_DEVCLOUD_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "glint" / "devcloud"


def venv_key() -> str:
    """Hash of the pins and the interpreter: what makes two venvs interchangeable."""
    digest = hashlib.sha256()
    digest.update(CONSTRAINTS.read_bytes())
    digest.update(sys.version.encode())
    digest.update(sys.platform.encode())
    return digest.hexdigest()[:16]


def ensure_venv(log=lambda msg: None) -> Path:
    """Return the path of a complete devcloud venv, building it first if needed.

    Concurrent callers (two test sessions, a CLI and a test) serialise on a lock file, so the
    venv is built once.
    """
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    key = venv_key()
    final = root / f"venv-{key}"
    if (final / COMPLETE_MARKER).exists():
        return final
    with open(root / f"venv-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / COMPLETE_MARKER).exists():
            return final
        if final.exists():  # incomplete leftover of an older scheme: never reuse it
            shutil.rmtree(final)
        log(f"devcloud: building the service virtualenv in {final} (about a minute, once)")
        tmp = Path(tempfile.mkdtemp(prefix=f".venv-{key}-", dir=root))
        build_log = root / f"venv-{key}.build.log"
        try:
            _build(tmp, build_log)
            (tmp / COMPLETE_MARKER).write_text(key + "\n")
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final


def _build(path: Path, build_log: Path) -> None:
    with open(build_log, "w") as out:
        steps = [
            [sys.executable, "-m", "venv", str(path)],
            [
                str(path / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "-c",
                str(CONSTRAINTS),
                *REQUIREMENTS,
            ],
        ]
        for argv in steps:
            out.write("$ " + " ".join(argv) + "\n")
            out.flush()
            rc = subprocess.call(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
            if rc != 0:
                tail = "".join(build_log.read_text(errors="replace").splitlines(True)[-30:])
                raise DevcloudError(
                    f"building the devcloud virtualenv failed ({argv[2:4]} exited {rc}); "
                    f"log {build_log}:\n{tail}"
                )
