"""Django in the bench's own process, on a throw-away data directory (figures 3 and 4).

The inventory poll and the matrix views are measured where they run in production (the poller
and the WSGI handler), without the network and TLS of a live server in the way.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

__all__ = ["setup_django"]


def setup_django(data_dir: Path) -> None:
    """Configure Django on ``data_dir`` (SQLite) and migrate. Call once, before importing models."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for key in [k for k in os.environ if k.startswith("GLINT_")]:
        del os.environ[key]
    os.environ["GLINT_DATA_DIR"] = str(data_dir)
    os.environ["GLINT_CLOUD_DEV_LOOPBACK"] = "127.0.0.1"  # the devcloud's clouds (development only)
    os.environ["DJANGO_SETTINGS_MODULE"] = "glint.settings"
    import django
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    django.setup()
    setup_test_environment()  # the test client's host name; query capture needs no DEBUG
    call_command("migrate", verbosity=0)
    logging.getLogger("glint").setLevel(logging.WARNING)  # one audit line per repo and user added
