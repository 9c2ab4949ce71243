"""The image matrix as pure Python: rows, content keys, conflicts and the planner's rules.

No Django and no database here (``tests/test_layers.py`` holds it to that): the records come in
as plain tuples, so every rule is testable on its own. ``glint.jobs.matrix`` is the one place that
reads the database and builds a group's matrix with these functions.

- ``glint.matrix.rows``: content identity, rows and cells, Hide/Show choices, job cells;
- ``glint.matrix.conflicts``: conflict groups and their acknowledgements;
- ``glint.matrix.planning``: which of a person's cell changes become jobs.
"""
