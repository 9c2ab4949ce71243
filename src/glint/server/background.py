"""Work that ``glint serve`` runs in-process beside the web server (the embedded mode).

Each worker lives in its own app and is found by name, imported only when the server starts, so
``glint serve`` works before the worker exists and a new worker needs one line here. A worker's
start function returns at once, leaving daemon threads behind.
"""

from __future__ import annotations

import importlib
import logging

__all__ = ["BACKGROUND_WORKERS", "start_background_workers"]

logger = logging.getLogger("glint.server")

# (module, start function) pairs.
BACKGROUND_WORKERS = (
    ("glint.inventory.poller", "start_poller"),
    ("glint.plans.keep_everywhere", "start_keeper"),
    ("glint.jobs.dispatch", "start_dispatcher"),
    ("glint.transfers.repair", "start_repair"),
    ("glint.subscriptions.refresher", "start_refresher"),
)


def start_background_workers() -> list[str]:
    """Start every background worker that exists; returns the names of those started."""
    started = []
    for module_name, function_name in BACKGROUND_WORKERS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise  # the worker exists but one of its own imports is broken
            continue
        start = getattr(module, function_name, None)
        if start is None:
            continue
        start()
        started.append(f"{module_name}.{function_name}")
    logger.info("background workers started: %s", ", ".join(started) or "none")
    return started
