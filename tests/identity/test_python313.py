"""The TLS sign-in tests again, under Python 3.13, whose ``ssl`` differs where grid users notice.

Python 3.13 turns on ``VERIFY_X509_STRICT`` in default contexts (refusing proxies without an
Authority Key Identifier) and made ``get_verified_chain`` public; ``glint serve`` must behave the
same on both. ``scripts/setup-python`` builds ``.venv313`` when pyenv has a 3.13; without it this
test is skipped and says why.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYTHON313 = REPO / ".venv313" / "bin" / "python"
TLS_SIGN_IN_TESTS = [
    "tests/identity/test_igtf_directory.py",
    "tests/server/test_direct_tls.py",
    "tests/server/test_crl.py",
    "tests/server/test_proxy_mode.py",
]


@pytest.mark.skipif(
    not PYTHON313.exists(),
    reason=f"no Python 3.13 environment at {PYTHON313} (scripts/setup-python)",
)
def test_tls_sign_in_under_python_3_13():
    version = subprocess.run(
        [str(PYTHON313), "-c", "import sys; print(*sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert version == ["3", "13"]
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "GLINT_"))
    }
    result = subprocess.run(
        [str(PYTHON313), "-m", "pytest", "-q", "-p", "no:cacheprovider", *TLS_SIGN_IN_TESTS],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-2000:]
