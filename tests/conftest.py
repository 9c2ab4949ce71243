import sys
from pathlib import Path

# devcloud is a plain package at the repo root, not installed: make it importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

pytest_plugins = ["devcloud.pytest_plugin"]
