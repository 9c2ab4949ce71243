"""Glint: keep virtual-machine images in step across many cloud projects.

The package is laid out by layer (see ARCHITECTURE.md "Shape of the code"):

* ``clouds/`` and ``replication/`` are plain Python and never import Django;
* ``accounts/``, ``repos/``, ``inventory/``, ``jobs/``, ``audit/`` are Django apps, one per
  domain concept;
* ``web/``, ``api/``, ``cli/`` and ``server/`` are the faces people and tools use.

Project plumbing (settings, root URLs, WSGI entry point, configuration loading) lives at the top of
this package.
"""

__version__ = "3.0.0.dev0"
