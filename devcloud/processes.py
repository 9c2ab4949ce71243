"""Starting, probing and stopping the service processes.

Every service runs in its own session (``start_new_session=True``), so its process group holds
the gunicorn master and all its workers: killing the group leaves nothing behind, and a later
process (``devcloud down`` from another shell) can do it knowing only the group id from
``state.json``. Liveness is read from ``/proc`` rather than ``kill(pid, 0)`` because a killed
child of a still-running parent (a test session) stays a zombie until reaped, and a zombie is no
service.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from .errors import DevcloudError

# How long a service gets to answer after it was started. Keystone and Glance import a lot;
# on a busy 2-core CI machine with five of them starting at once this takes ~10-20 s.
START_TIMEOUT = 120.0
# Grace between SIGTERM and SIGKILL. gunicorn is given a shorter --graceful-timeout than this.
STOP_GRACE = 5.0
LOG_TAIL_LINES = 40

# Popen objects of the services this process started, so they can be reaped (no zombies).
_children: dict[int, subprocess.Popen] = {}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn(argv: list[str], env: dict[str, str], log_file: Path, cwd: Path) -> int:
    """Start ``argv`` in a new session with stdout/stderr appended to ``log_file``; return its
    pid."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        log.write(f"\n==== devcloud: starting {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _children[proc.pid] = proc
    return proc.pid


def run(
    argv: list[str],
    env: dict[str, str],
    log_file: Path,
    cwd: Path,
    what: str,
    timeout: float = 300,
    abort=None,
) -> None:
    """Run a set-up command to completion, logging to ``log_file``; raise with its tail on failure.

    ``abort`` (a ``threading.Event``) kills the command early when another service failed or
    ``up`` was interrupted: set-up commands take seconds, more on a loaded machine.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        log.write(f"\n==== devcloud: {what}: {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                rc = proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if abort is not None and abort.is_set():
                    raise DevcloudError(f"{what}: abandoned, another service failed") from None
                if time.monotonic() > deadline:
                    rc = f"timeout after {timeout:.0f} s"
                    break
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if rc != 0:
        raise DevcloudError(
            f"{what} failed (exit {rc}). Last lines of {log_file}:\n" + log_tail(log_file)
        )


def _reap(pid: int) -> None:
    proc = _children.get(pid)
    if proc is not None and proc.poll() is not None:
        del _children[pid]


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # Fields after the command name, which is in parentheses and may contain spaces.
        fields = stat[stat.rindex(")") + 2 :].split()
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state not in ("Z", "X"):
            members.append(int(entry))
    return members


def alive(pid: int | None) -> bool:
    """True while the service started as ``pid`` (a group leader) or any of its group runs."""
    if not pid:
        return False
    _reap(pid)
    return bool(group_members(pid))


def stop_group(pgid: int | None, grace: float = STOP_GRACE) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``grace`` seconds."""
    stop_groups([pgid], grace)


def stop_groups(pgids, grace: float = STOP_GRACE) -> None:
    """Stop several process groups at once (each takes ~1 s to shut down; don't queue them)."""
    pending = [p for p in pgids if p]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pgid in list(pending):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                pass
            except PermissionError:  # the id now belongs to a process that is not ours
                pending.remove(pgid)
        deadline = time.monotonic() + grace
        while pending and time.monotonic() < deadline:
            pending = [p for p in pending if alive(p)]
            if pending:
                time.sleep(0.05)
        if not pending:
            return
    raise DevcloudError(f"process groups {pending} survived SIGKILL")


def log_tail(log_file: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = Path(log_file).read_text(errors="replace")
    except OSError:
        return f"(no log at {log_file})"
    return "".join(text.splitlines(True)[-lines:])


def answers(url: str, ca_file: str | None) -> bool:
    """True if an HTTP(S) server answers ``url`` with any status below 500."""
    context = ssl.create_default_context(cafile=ca_file) if url.startswith("https") else None
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    try:
        with opener.open(url, timeout=5) as response:
            return response.status < 500
    except urllib.error.HTTPError as err:
        return err.code < 500
    except (OSError, ssl.SSLError):
        return False


def wait_until_answers(
    name: str,
    pid: int,
    url: str,
    log_file: Path,
    ca_file: str | None,
    timeout: float = START_TIMEOUT,
    abort=None,
) -> None:
    """Poll ``url`` until it answers; fail at once if the process died, or after ``timeout``.

    ``abort`` (a ``threading.Event``) ends the wait early when another service already failed.
    """
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        if answers(url, ca_file):
            return
        if abort is not None and abort.is_set():
            raise DevcloudError(f"{name}: start abandoned, another service failed")
        if not alive(pid):
            raise DevcloudError(
                f"{name} exited before answering on {url}. "
                f"Last lines of {log_file}:\n{log_tail(log_file)}"
            )
        if time.monotonic() > deadline:
            raise DevcloudError(
                f"{name} did not answer on {url} within {timeout:.0f} s. "
                f"Last lines of {log_file}:\n{log_tail(log_file)}"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)


def service_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment a service runs with: ours, plus its own settings, never through a proxy."""
    env = dict(os.environ)
    for var in (
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "PYTHONPATH",
        "VIRTUAL_ENV",
        "PYTHONHOME",
    ):
        env.pop(var, None)
    env["no_proxy"] = env["NO_PROXY"] = "127.0.0.1,localhost"
    env.update(extra)
    return env
