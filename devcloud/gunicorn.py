"""The gunicorn command line shared by Keystone and Glance.

gunicorn with gthread workers, because uwsgi's ``--http-socket`` reset connections under
concurrent large uploads on this machine. One worker with several threads:
CI has two cores, and a Glance upload spends its time in I/O and hashing, not in Python.
"""

from __future__ import annotations

from pathlib import Path

from .state import Service

WORKERS = 1
THREADS = 8
# A 512 MiB upload takes ~8 s on loopback; a slow test reader may hold a download much longer.
REQUEST_TIMEOUT = 3600
# Below processes.STOP_GRACE, so a SIGTERM'd master finishes before devcloud sends SIGKILL.
GRACEFUL_TIMEOUT = 3


def gunicorn_argv(
    venv: Path,
    app: str,
    port: int,
    *,
    cert_file: str | None = None,
    key_file: str | None = None,
    pythonpath: str | None = None,
    access_log: str | None = None,
) -> list[str]:
    """argv that serves the WSGI ``app`` (``module:attribute``) on 127.0.0.1:``port``, writing
    a line per request to ``access_log`` when given (what the service really received)."""
    argv = [
        str(venv / "bin" / "python"),
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--worker-class",
        "gthread",
        "--workers",
        str(WORKERS),
        "--threads",
        str(THREADS),
        "--timeout",
        str(REQUEST_TIMEOUT),
        "--graceful-timeout",
        str(GRACEFUL_TIMEOUT),
        # gunicorn >= 25 opens a control socket in ~/.gunicorn by default: one per machine,
        # so a second instance would fight over it.
        "--no-control-socket",
        "--error-logfile",
        "-",
    ]
    if pythonpath:
        argv += ["--pythonpath", pythonpath]
    if access_log:
        argv += ["--access-logfile", access_log]
    if cert_file:
        argv += ["--certfile", cert_file, "--keyfile", key_file]
    return argv + [app]


def access_log(svc: Service) -> Path:
    """The service's request log (gunicorn's access log: method, path and query, status; no
    headers, so no token), for tests that count what a cloud received."""
    return Path(svc.home) / "access.log"


def requests_received(svc: Service) -> list[str]:
    """The request lines (``GET /v2/images?…``) ``svc`` has received so far, oldest first."""
    path = access_log(svc)
    if not path.exists():
        return []
    return [
        line.split('"')[1] for line in path.read_text(errors="replace").splitlines() if '"' in line
    ]
