"""The network guard that every test process runs under really refuses non-loopback traffic."""

import os
import subprocess
import sys
from pathlib import Path

GUARD_DIR = Path(__file__).parent / "netguard"

PROBE = """
import socket
results = []
for host in ("example.org", "10.0.0.1", "169.254.169.254"):
    try:
        socket.getaddrinfo(host, 80)
        results.append("lookup-allowed")
    except OSError:
        results.append("lookup-refused")
s = socket.socket()
s.settimeout(1)
try:
    s.connect(("192.0.2.1", 80))
    results.append("connect-allowed")
except OSError as exc:
    results.append("connect-refused" if "network guard" in str(exc) else "connect-failed")
server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen()
c = socket.create_connection(server.getsockname(), timeout=2)
results.append("loopback-ok")
print(" ".join(results))
"""


def test_child_processes_cannot_reach_beyond_loopback():
    env = dict(os.environ, GLINT_NETGUARD="1", PYTHONPATH=str(GUARD_DIR))
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=30
    )
    assert out.stdout.split() == ["lookup-refused"] * 3 + ["connect-refused", "loopback-ok"], (
        out.stderr
    )
