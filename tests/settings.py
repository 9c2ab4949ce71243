"""Settings for the test suite: the product's settings with a throw-away data directory.

``GLINT_DATABASE_URL`` is honoured, so CI runs the suite on a real PostgreSQL. The devcloud's
clouds run on 127.0.0.1, which Glint refuses as a cloud endpoint unless the development-only
``GLINT_CLOUD_DEV_LOOPBACK`` allows it: 127.0.0.1 alone, so 127.0.0.2 stays refused.
"""

import atexit
import os
import shutil
import tempfile

if "GLINT_DATA_DIR" not in os.environ:
    _data_dir = tempfile.mkdtemp(prefix="glint-test-")
    os.environ["GLINT_DATA_DIR"] = _data_dir
    atexit.register(shutil.rmtree, _data_dir, ignore_errors=True)

os.environ.setdefault("GLINT_CLOUD_DEV_LOOPBACK", "127.0.0.1")

from glint.settings import *  # noqa: E402,F403
