"""Figure 3 (inventory refresh) and figure 4 (matrix page and API on a big inventory).

Figure 3 polls real Glances: every project of the devcloud is a repo holding ``images`` data-less
(``queued``) records, which list exactly like active images and cost nothing to store. Glint's
concurrent poll (:func:`glint.inventory.poller.poll_repos`) is compared with the same function
called for one repo after another, with the CPU-seconds every process of the stack spent meanwhile
(``bench/cpu.py``): on 2 cores both polls are bound by CPU. Then a repo whose Keystone never
answers (a loopback socket that accepts and stays silent) joins the poll: the others must finish
as fast as without it. The three polls alternate in rotated rounds, like the routes of figure 1.

Figure 4 fills the database directly (like tests/inventory/test_scale.py) and times the matrix
page and the API in Django's WSGI handler, counting SQL queries at two sizes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from bench.cpu import CpuMeter, CpuUse, median_use, stack_processes
from bench.report import median, p95
from bench.stack import RAW, Stack, clone_rows, glance_time

__all__ = ["fill_projects", "matrix_figures", "poll_figures"]


def fill_projects(stack: Stack, clouds: list[str], images: int) -> None:
    """Give every cloud project ``images`` queued image records (only those still missing).

    Each project's first record is made through Glance's API; the others are copies of it
    written straight into that Glance's database, with their own ids, names and times. A
    ``POST /v2/images`` costs Glance ~25 ms of CPU, so 6,000 of them took 1.5-2.5 minutes of
    the 2 cores, and more threads cannot make CPU-bound requests faster. The copies list exactly
    like API-made records, because a listing is read from those rows and nothing else.
    """

    def fill(cloud: str) -> None:
        with stack.driver(cloud) as driver:
            have = sorted(r.id for r in driver.list_images() if r.name.startswith("bench-inv-"))
            if not have:
                have = [driver.create_image({"name": "bench-inv-0000", **RAW}).id]
        start, rows = dt.datetime.now(dt.UTC), []
        for n in range(len(have), images):
            stamp = glance_time(start + dt.timedelta(microseconds=n))
            rows.append(
                {
                    "id": str(uuid.uuid4()),
                    "name": f"bench-inv-{n:04d}",
                    "created_at": stamp,
                    "updated_at": stamp,
                }
            )
        clone_rows(stack.dc.glance_database(cloud), "images", "id", have[0], rows)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(fill, clouds))


@contextlib.contextmanager
def _silent_keystone():
    """A loopback port that accepts connections and never answers: a cloud slowed to a stop."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v3"


def _import_repos(stack: Stack, group, clouds: list[str]):
    from glint.repos import services

    results = services.import_clouds_yaml(stack.dc.clouds_yaml.read_text(), group, names=clouds)
    failed = [r for r in results if getattr(r, "status", "") == "failed"]
    if failed:
        raise RuntimeError(f"repo import failed: {failed}")
    return list(group.repos.filter(name__in=clouds).order_by("pk"))


def _silent_repo(group, url: str):
    from glint.repos.choices import AuthType
    from glint.repos.models import Repo

    return Repo.objects.create(
        group=group,
        name="bench-silent",
        auth_url=url,
        auth_type=AuthType.PASSWORD,
        username="u",
        password="p",
        project_name="p",
        project_domain_name="Default",
        user_domain_name="Default",
    )


def _poll_with_silent(repos, group, timeout: float) -> tuple[float, float, list[str]]:
    """Poll ``repos`` plus a silent repo: seconds until the last of ``repos`` was recorded, until
    the silent repo's own listing was given up (its deadline), and the errors of ``repos``."""
    from django.utils import timezone

    from glint.inventory.poller import poll_repos
    from glint.repos.models import Repo

    with _silent_keystone() as url:
        silent = _silent_repo(group, url)
        started = timezone.now()
        results = poll_repos([silent, *repos], timeout=timeout)
    silent_result = next(r for r in results if r.repo_id == silent.pk)
    errors = [r.error for r in results if not r.ok and r is not silent_result]
    silent.delete()
    recorded = Repo.objects.filter(pk__in=[r.pk for r in repos]).values_list(
        "last_poll_at", flat=True
    )
    return max((at - started).total_seconds() for at in recorded), silent_result.duration, errors


def poll_figures(
    report, stack: Stack, clouds: list[str], images: int, runs: int, slow_timeout: float
) -> None:
    """Sequential poll, concurrent poll, and concurrent poll with a silent repo, in rotated rounds.

    Every poll of the silent step has ``slow_timeout`` as its deadline, the healthy repos' too:
    it must be well above a healthy listing, or a busy moment on the machine fails the step.
    """
    from glint.accounts.services import add_group
    from glint.inventory.poller import poll_repos

    started = time.perf_counter()
    fill_projects(stack, clouds, images)
    report.printer(
        f"  ({len(clouds)} projects × {images} images ready in "
        f"{time.perf_counter() - started:.0f}s)"
    )
    group = add_group("bench-poll")
    repos = _import_repos(stack, group, clouds)
    first = poll_repos(repos)  # the first poll writes every row; the timed ones see no change
    listed = sorted({r.images for r in first})
    if not all(r.ok for r in first):
        raise RuntimeError(f"a poll failed: {[r.error for r in first if not r.ok]}")
    processes = stack_processes(stack.dc)
    times: dict[str, list[float]] = {
        "sequential": [],
        "concurrent": [],
        "silent": [],
        "deadline": [],
    }
    cpu: dict[str, list[CpuUse]] = {"sequential": [], "concurrent": []}
    errors: list[str] = []

    def sequential() -> None:
        for repo in repos:
            poll_repos([repo])

    def timed(key: str, run) -> None:
        with CpuMeter(processes) as meter:
            run()
        times[key].append(meter.use.wall)
        cpu[key].append(meter.use)

    def silent() -> None:
        others, deadline, failed = _poll_with_silent(repos, group, slow_timeout)
        if failed:  # a healthy repo missed the deadline too: this round says nothing
            errors.extend(failed)
            return
        times["silent"].append(others)
        times["deadline"].append(deadline)

    steps = [
        lambda: timed("sequential", sequential),
        lambda: timed("concurrent", lambda: poll_repos(repos)),
        silent,
    ]
    for round_no in range(runs):
        shift = round_no % len(steps)
        for step in steps[shift:] + steps[:shift]:
            step()
    _poll_rows(
        report,
        f"{len(repos)} repos x {listed[0] if len(listed) == 1 else listed} images",
        times,
        cpu,
        slow_timeout,
        errors,
    )


def _poll_rows(
    report,
    label: str,
    times: dict[str, list[float]],
    cpu: dict[str, list[CpuUse]],
    slow_timeout: float,
    errors: list[str],
) -> None:
    for key in ("sequential", "concurrent"):
        use = median_use(cpu[key])
        report.info(f"inventory: {key} poll of {label}", median(times[key]), unit="s")
        report.info(
            f"inventory: {key} poll, cores kept busy (CPU-s / wall-s)",
            use.cores_busy,
            note=use.note(),
        )
    report.target(
        "inventory: concurrent speed-up over sequential",
        median(times["sequential"]) / median(times["concurrent"]),
        ">=",
        5,
        unit="x",
    )
    name = "inventory: others' poll with a silent repo / without"
    if not times["silent"]:
        report.failed(
            name,
            "<= 1.5x",
            f"every round had a healthy repo past the {slow_timeout:g}s deadline: {errors[0]}",
        )
        return
    report.info(
        "inventory: silent repo given up after (its timeout)",
        median(times["deadline"]),
        unit="s",
        note=f"timeout {slow_timeout:g}s",
    )
    rounds = f"median of {len(times['silent'])}" + (
        f"; {len(errors)} healthy listing(s) timed out" if errors else ""
    )
    report.target(
        name,
        median(times["silent"]) / median(times["concurrent"]),
        "<=",
        1.5,
        unit="x",
        note=f"others recorded after {median(times['silent']):.2f}s ({rounds})",
    )


def big_inventory(group, rows: int, repos: int):
    """``rows`` images in each of ``repos`` offline repos, straight into the database."""
    from django.utils import timezone

    from glint.inventory.models import Image, RepoInventory
    from glint.repos.choices import AuthType
    from glint.repos.models import Repo

    made = Repo.objects.bulk_create(
        [
            Repo(
                group=group,
                name=f"repo-{i:02d}",
                auth_url="http://127.0.0.1:9/v3",
                auth_type=AuthType.PASSWORD,
                username="u",
                password="p",
                project_name=f"p{i}",
                project_domain_name="Default",
                user_domain_name="Default",
            )
            for i in range(repos)
        ]
    )
    RepoInventory.objects.bulk_create(
        [RepoInventory(repo=r, project_id=f"project-{r.pk}") for r in made]
    )
    now = timezone.now()
    images = []
    for row in range(rows):
        data = f"image {row}".encode()
        md5, sha512 = hashlib.md5(data).hexdigest(), hashlib.sha512(data).hexdigest()
        for repo in made:
            images.append(
                Image(
                    repo=repo,
                    image_id=f"{repo.pk}-{row}",
                    name=f"image-{row:04d}",
                    status="active",
                    size=len(data),
                    disk_format="qcow2",
                    container_format="bare",
                    checksum=md5,
                    os_hash_algo="sha512",
                    os_hash_value=sha512,
                    owner=f"project-{repo.pk}",
                    visibility="private",
                    fingerprint="x",
                    first_seen=now,
                    last_seen=now,
                    created_at=now,
                )
            )
    Image.objects.bulk_create(images, batch_size=2000)


def _time_requests(client, path: str, count: int) -> tuple[list[float], int, float]:
    """Times of ``count`` requests (after a first, cold one), queries of the last, and the cold
    time."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    t = time.perf_counter()
    response = client.get(path)
    cold = time.perf_counter() - t
    if response.status_code != 200:
        raise RuntimeError(f"GET {path}: HTTP {response.status_code}")
    times = []
    for _ in range(count):
        with CaptureQueriesContext(connection) as queries:
            t = time.perf_counter()
            response = client.get(path)
            times.append(time.perf_counter() - t)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: HTTP {response.status_code}")
    return times, len(queries.captured_queries), cold


def matrix_figures(report, sizes: tuple[int, int], repos: int, requests: int) -> None:
    from glint.accounts.services import add_group
    from tests.clients import client_for, make_user

    queries = {}
    for rows in sizes:
        group = add_group(f"bench-matrix-{rows}")
        big_inventory(group, rows, repos)
        client = client_for(make_user(f"Bench Viewer {rows}", group=group, role="member"))
        for what, path in (
            ("page", f"/images/?group={group.pk}"),
            ("API", f"/api/v1/images/?group={group.pk}&limit=50"),
        ):
            times, count, cold = _time_requests(client, path, requests)
            queries[(what, rows)] = count
            label = f"matrix {what}, {rows} images x {repos} repos"
            report.info(f"{label}: median", median(times) * 1000, unit=" ms")
            report.info(f"{label}: p95", p95(times) * 1000, unit=" ms")
            report.info(f"{label}: first request (cold)", cold * 1000, unit=" ms")
            report.info(f"{label}: SQL queries", count)
    small, big = sizes
    for what in ("page", "API"):
        report.target(
            f"matrix {what}: SQL queries at {big} rows minus at {small}",
            queries[(what, big)] - queries[(what, small)],
            "<=",
            0,
        )
