"""Glint's benchmarks: ``python -m bench`` (see bench/README.md for what bounds each figure)."""
