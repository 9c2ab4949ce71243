"""Settings for the test suite: the product's settings with a throw-away data directory.

``GLINT_DATABASE_URL`` is honoured, so CI runs the suite on a real PostgreSQL.
"""

import atexit
import os
import shutil
import tempfile

if "GLINT_DATA_DIR" not in os.environ:
    _data_dir = tempfile.mkdtemp(prefix="glint-test-")
    os.environ["GLINT_DATA_DIR"] = _data_dir
    atexit.register(shutil.rmtree, _data_dir, ignore_errors=True)

from glint.settings import *  # noqa: E402,F403
