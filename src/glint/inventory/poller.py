"""The inventory poller: lists every enabled repo's images, concurrently, on an interval and on
demand.

Shape. One coordinator (the background thread of ``glint serve``, or the caller of
:func:`poll_repos`) hands listings to a bounded pool of worker threads and writes their results to
the database itself. Workers only talk to clouds: they never touch the database, so no connection
leaks from them and SQLite sees one writer. The coordinator enforces each repo's deadline
(``GLINT_POLL_TIMEOUT``): a listing still running when its deadline passes is recorded as failed
and abandoned (the driver's own read timeout, set to the same value, ends its thread soon after),
so one slow or broken cloud never holds up the others, nor the next round.

When. A repo is due when its ``next_poll_at`` has passed (``GLINT_POLL_INTERVAL`` after a success;
an exponential back-off after failures, see ``listings.retry_delay``) or when someone asked for it
(:func:`request_refresh`: the Refresh button and API, the jobs engine when a job ends, a repo
being added or edited). A request is a database flag, so it works whichever process runs the
poller; this process's poller is also woken at once.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import Q
from django.utils import timezone

from glint.inventory import listings
from glint.inventory.models import RepoInventory
from glint.inventory.signals import inventory_changed
from glint.replication import CloudError, ImageRecord, RepoConnection
from glint.repos.drivers import open_connection
from glint.repos.models import Repo

__all__ = ["PollResult", "poll_repos", "poll_due", "request_refresh", "start_poller", "stop_poller"]

log = logging.getLogger(__name__)

#: Longest the background thread sleeps before looking for due repos again.
TICK_SECONDS = 2.0
#: Seconds a poll lease outlives the listing's own deadline (the record is written after it).
LEASE_MARGIN = 30


@dataclasses.dataclass(frozen=True)
class PollResult:
    """The outcome of polling one repo."""

    repo_id: int
    ok: bool
    duration: float
    error: str = ""
    images: int = 0
    changed: bool = False


def _list_images(conn: RepoConnection, project_id: str) -> tuple[list[ImageRecord], str]:
    """Worker-thread body: the listing, and the project id the credentials reach."""
    with open_connection(conn) as cloud:
        if not project_id:
            project_id = cloud.check().project_id
        return cloud.list_images(), project_id


def _describe(exc: BaseException) -> str:
    if isinstance(exc, CloudError):
        return f"{exc.message} ({exc.code})"
    log.warning("inventory poll failed unexpectedly", exc_info=exc)
    return f"internal error while listing images ({type(exc).__name__})"


def _known_project(repo: Repo) -> str:
    inventory = getattr(repo, "inventory", None)
    if inventory is not None and inventory.project_id:
        return inventory.project_id
    return repo.cloud_project.rpartition("#")[2] if repo.cloud_project else ""


@dataclasses.dataclass
class _Running:
    future: Future
    started: float  # monotonic
    started_at: object  # wall clock, for the refresh flag
    deadline: float
    #: Other repos of the same cloud project: the one listing is recorded for them too.
    sharing: tuple[int, ...] = ()
    #: The project lease (``listings.project_key``) this process holds for the poll, if any.
    lease: str = ""


class _Coordinator:
    """Starts listings in the pool, and records each one when it ends or its deadline passes."""

    def __init__(
        self, workers: int, timeout: float, interval: int, wake: threading.Event | None = None
    ):
        self.workers = max(1, workers)
        self.timeout = timeout
        self.interval = interval
        self.wake = wake
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="glint-poll")
        self.running: dict[int, _Running] = {}
        self.abandoned: set[Future] = set()

    def free_slots(self) -> int:
        self.abandoned = {f for f in self.abandoned if not f.done()}
        return self.workers - len(self.running) - len(self.abandoned)

    def start(
        self, repo: Repo, sharing: tuple[int, ...] = (), lease: str = ""
    ) -> PollResult | None:
        """Begin polling ``repo`` (the caller checked :meth:`free_slots` and ``running``), for
        the repos ``sharing`` its cloud project as well; the project ``lease`` taken for it is
        released once the poll is recorded.

        Returns a failed result at once when the repo's configuration cannot even be turned
        into a connection, else None.
        """
        started_at = timezone.now()
        try:
            conn = repo.connection(
                connect_timeout=min(10.0, self.timeout), read_timeout=self.timeout
            )
        except Exception as exc:  # an unusable configuration fails like a cloud error, not the loop
            error = f"repo configuration cannot be used: {exc}"
            for each in (repo.pk, *sharing):
                listings.record_failure(
                    each, error, duration=0.0, started_at=started_at, interval=self.interval
                )
            if lease:
                listings.release_project_poll(lease, _owner())
            return PollResult(repo.pk, False, 0.0, error)
        future = self.pool.submit(_list_images, conn, _known_project(repo))
        if self.wake is not None:
            future.add_done_callback(lambda _f: self.wake.set())
        now = time.monotonic()
        self.running[repo.pk] = _Running(
            future, now, started_at, now + self.timeout, sharing, lease
        )
        return None

    def collect(self) -> list[PollResult]:
        """Record every listing that ended or ran out of time."""
        results = []
        now = time.monotonic()
        for repo_id, run in list(self.running.items()):
            if run.future.done():
                del self.running[repo_id]
                results += self._record(repo_id, run)
            elif now >= run.deadline:
                del self.running[repo_id]
                self.abandoned.add(run.future)
                error = f"the cloud did not finish listing images within {self.timeout:g} s"
                results += self._fail(repo_id, run, error, now - run.started)
            else:
                continue
            if run.lease:  # recorded: the project's next poll is due an interval from now
                listings.release_project_poll(run.lease, _owner())
        return results

    def _record(self, repo_id: int, run: _Running) -> list[PollResult]:
        duration = time.monotonic() - run.started
        try:
            records, project_id = run.future.result()
        except Exception as exc:
            return self._fail(repo_id, run, _describe(exc), duration)
        results = []
        for each in (repo_id, *run.sharing):
            changed = listings.record_listing(
                each,
                records,
                project_id=project_id,
                duration=duration,
                started_at=run.started_at,
                interval=self.interval,
            )
            results.append(PollResult(each, True, duration, images=len(records), changed=changed))
        return results

    def _fail(self, repo_id: int, run: _Running, error: str, duration: float) -> list[PollResult]:
        for each in (repo_id, *run.sharing):
            listings.record_failure(
                each, error, duration=duration, started_at=run.started_at, interval=self.interval
            )
        return [PollResult(each, False, duration, error) for each in (repo_id, *run.sharing)]

    def seconds_to_next_deadline(self) -> float | None:
        if not self.running:
            return None
        return max(0.0, min(r.deadline for r in self.running.values()) - time.monotonic())

    def wait_for_any(self, timeout: float | None) -> None:
        """Sleep until a listing ends (an abandoned one frees a slot) or ``timeout`` passes."""
        futures = [r.future for r in self.running.values()] + list(self.abandoned)
        if futures:
            wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _coordinator(
    wake: threading.Event | None = None, *, workers=None, timeout=None
) -> _Coordinator:
    return _Coordinator(
        workers or settings.GLINT_POLL_WORKERS,
        timeout or settings.GLINT_POLL_TIMEOUT,
        settings.GLINT_POLL_INTERVAL,
        wake,
    )


def poll_repos(
    repos: Iterable[Repo], *, workers: int | None = None, timeout: float | None = None
) -> list[PollResult]:
    """Poll these repos now, concurrently, and return when each has a result.

    Used by tests, the CLI and the demo. No call takes longer than the slowest repo's own deadline
    (plus queueing when there are more repos than workers).

    Args:
        repos: The repos (disabled ones too: the caller chose them).
        workers: Listings at once; ``GLINT_POLL_WORKERS`` by default.
        timeout: Seconds each listing may take; ``GLINT_POLL_TIMEOUT`` by default.

    Returns:
        One result per repo, in the order they finished.
    """
    pending = _by_cloud_project({repo.pk: repo for repo in repos}.values())
    coordinator = _coordinator(workers=workers, timeout=timeout)
    results: list[PollResult] = []
    try:
        while pending or coordinator.running:
            while pending and coordinator.free_slots() > 0:
                failed = coordinator.start(*pending.pop(0))
                if failed:
                    results.append(failed)
            coordinator.wait_for_any(coordinator.seconds_to_next_deadline())
            results.extend(coordinator.collect())
    finally:
        coordinator.close()
    return results


def _by_cloud_project(repos: Iterable[Repo]) -> list[tuple[Repo, tuple[int, ...]]]:
    """Each cloud project's first repo, with the ids of the others: one listing serves them all
    (repos of two groups, or of one, that reach the same project see the same images)."""
    projects: dict[str, list[Repo]] = {}
    for repo in repos:
        projects.setdefault(repo.cloud_project or f"repo {repo.pk}", []).append(repo)
    return [(first, tuple(r.pk for r in rest)) for first, *rest in projects.values()]


def due_repos():
    """Enabled repos whose interval or back-off has passed, or whose refresh was requested."""
    now = timezone.now()
    return (
        Repo.objects.filter(enabled=True)
        .filter(
            Q(inventory__isnull=True)
            | Q(inventory__next_poll_at__isnull=True)
            | Q(inventory__next_poll_at__lte=now)
            | Q(inventory__refresh_requested_at__isnull=False)
        )
        .select_related("inventory")
        .order_by("inventory__next_poll_at", "pk")
    )


def poll_due() -> list[PollResult]:
    """One synchronous round over :func:`due_repos` (what the background thread does, at once)."""
    return poll_repos(due_repos())


def request_refresh(repo_ids: Iterable[int]) -> int:
    """Ask for these repos to be polled as soon as possible; returns how many were asked for.

    Safe to call from any process or thread, inside or outside a transaction (call it after
    commit when the change that prompted it must be visible to the poll).
    """
    ids = sorted(set(Repo.objects.filter(pk__in=list(repo_ids)).values_list("pk", flat=True)))
    if not ids:
        return 0
    RepoInventory.objects.bulk_create(
        [RepoInventory(repo_id=i) for i in ids], ignore_conflicts=True
    )
    RepoInventory.objects.filter(repo_id__in=ids).update(refresh_requested_at=timezone.now())
    if _background is not None:
        _background.wake.set()
    return len(ids)


# The background thread


class _BackgroundPoller(threading.Thread):
    def __init__(self):
        super().__init__(name="glint-poller", daemon=True)
        self.wake = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        coordinator = _coordinator(self.wake)
        try:
            while not self.stopping.is_set():
                close_old_connections()
                try:
                    self._tick(coordinator)
                except Exception:  # a database hiccup must not end polling for good
                    log.exception("inventory poller round failed; retrying")
                sleep = coordinator.seconds_to_next_deadline()
                self.wake.wait(TICK_SECONDS if sleep is None else min(sleep, TICK_SECONDS))
                self.wake.clear()
        finally:
            coordinator.close()
            connection.close()

    def _tick(self, coordinator: _Coordinator) -> None:
        results = coordinator.collect()
        for result in results:
            if not result.ok:
                log.info(
                    "repo %s poll failed: %s",
                    result.repo_id,
                    result.error,
                    extra={"repo": result.repo_id},
                )
        changed = [r.repo_id for r in results if r.changed]
        if changed:  # the matrix rebuilds its cached rows now, so the next page load need not
            inventory_changed.send(sender=_BackgroundPoller, repo_ids=changed)
        free = coordinator.free_slots()
        if free <= 0:
            return
        lease = coordinator.timeout + LEASE_MARGIN
        due = due_repos().exclude(pk__in=list(coordinator.running))[:free]
        for repo, _due_alike in _by_cloud_project(due):
            # Another Glint process on this database may be polling its project (through this
            # repo or another group's), or just has. Every other repo of the project takes this
            # listing too, due or not, so from now on they come due together and the project is
            # listed once an interval, cluster-wide.
            claimed = listings.claim_project_poll(repo, _owner(), lease, busy=coordinator.running)
            if claimed:
                coordinator.start(repo, claimed[1:], listings.project_key(repo))


def _owner() -> str:
    """This process, as the holder of the polls it takes (read when polling: after any fork)."""
    return f"{socket.gethostname()}:{os.getpid()}"


_background: _BackgroundPoller | None = None
_background_lock = threading.Lock()


def start_poller() -> threading.Thread:
    """Start the background poller of this process (idempotent); ``glint serve`` calls it."""
    global _background
    with _background_lock:
        if _background is None or not _background.is_alive():
            _background = _BackgroundPoller()
            _background.start()
        return _background


def stop_poller(timeout: float = 5.0) -> None:
    """Stop the background poller and wait up to ``timeout`` seconds for it to end."""
    global _background
    with _background_lock:
        poller, _background = _background, None
    if poller is not None:
        poller.stopping.set()
        poller.wake.set()
        poller.join(timeout)
