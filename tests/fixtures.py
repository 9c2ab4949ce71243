"""Fixtures that several test packages share but that must not apply everywhere.

A package's ``conftest.py`` imports the ones it wants (``from tests.fixtures import …``); pytest
then applies them to that package only. Fixtures every package may ask for live in
``tests/conftest.py``.
"""

import pytest


@pytest.fixture(autouse=True)
def fresh_matrix_cache():
    """Tests write images directly and roll back; a matrix cached by one must not serve the next."""
    from glint.jobs.matrix import forget_cached_matrices

    forget_cached_matrices()
    yield
    forget_cached_matrices()
