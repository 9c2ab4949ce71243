"""Glint: keep virtual-machine images in step across many cloud projects.

The package is laid out by layer (see ``docs/architecture.md``; ``tests/test_layers.py`` keeps
every import pointing down):

* ``clouds/`` (drivers), ``replication/`` (the engine) and ``matrix/`` (the matrix's rules) are
  plain Python and never import Django;
* ``accounts/``, ``repos/``, ``inventory/``, ``jobs/``, ``plans/``, ``audit/``, ``transfers/`` are
  Django apps, one per domain concept;
* ``web/``, ``api/``, ``cli/`` and ``server/`` are the faces people and tools use.

Project plumbing (settings, root URLs, WSGI entry point, configuration loading, the shared
``errors``, ``current_request``, ``filtersets`` and ``drf`` pieces) lives at the top of this
package.
"""

__version__ = "3.0.0.dev0"
