"""Old home of the matrix's rows, kept only for ``glint.transfers`` until its branch is merged.

The rows live in ``glint.matrix.rows`` now. ``transfers/`` is being changed on another branch, so
its imports move there when the branches meet; then this module goes (``tests/test_layers.py``
lists it among the known exceptions).
"""

from glint.matrix.rows import *  # noqa: F403
from glint.matrix.rows import ALGORITHM_STRENGTH, __all__  # noqa: F401
