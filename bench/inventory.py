"""Figure 3 (inventory refresh) and figure 4 (matrix page and API on a big inventory).

Figure 3 polls real Glances: every project of the devcloud is a repo holding ``images`` data-less
(``queued``) records, which list exactly like active images and cost nothing to store. Glint's
concurrent poll (:func:`glint.inventory.poller.poll_repos`) is compared with the same function
called for one repo after another. Then a repo whose Keystone never answers (a loopback socket
that accepts and stays silent) joins the poll: the others must finish as fast as without it.

Figure 4 fills the database directly (like tests/inventory/test_scale.py) and times the matrix
page and the API in Django's WSGI handler, counting SQL queries at two sizes.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import time
from concurrent.futures import ThreadPoolExecutor

from bench.report import median, p95
from bench.stack import RAW, Stack

__all__ = ["fill_projects", "matrix_figures", "poll_figures"]


def fill_projects(stack: Stack, clouds: list[str], images: int) -> None:
    """Give every cloud project ``images`` queued image records (only those still missing)."""

    def fill(cloud: str) -> None:
        with stack.driver(cloud) as driver:
            have = sum(1 for r in driver.list_images() if r.name.startswith("bench-inv-"))
            for i in range(have, images):
                driver.create_image({"name": f"bench-inv-{i:04d}", **RAW})

    with ThreadPoolExecutor(max_workers=8) as pool:
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


def poll_figures(report, stack: Stack, clouds: list[str], images: int, runs: int, slow_timeout: float) -> None:
    from glint.accounts.services import add_group
    from glint.inventory.poller import poll_repos
    from glint.repos.choices import AuthType
    from glint.repos.models import Repo

    started = time.perf_counter()
    fill_projects(stack, clouds, images)
    report.printer(f"  ({len(clouds)} projects × {images} images ready in {time.perf_counter() - started:.0f}s)")
    group = add_group("bench-poll")
    repos = _import_repos(stack, group, clouds)
    first = poll_repos(repos)  # the first poll writes every row; the timed ones see no change
    listed = sorted({r.images for r in first})
    if not all(r.ok for r in first):
        raise RuntimeError(f"a poll failed: {[r.error for r in first if not r.ok]}")
    sequential, concurrent = [], []
    for _ in range(runs):
        t = time.perf_counter()
        for repo in repos:
            poll_repos([repo])
        sequential.append(time.perf_counter() - t)
        t = time.perf_counter()
        poll_repos(repos)
        concurrent.append(time.perf_counter() - t)
    label = f"{len(repos)} repos x {listed[0] if len(listed) == 1 else listed} images"
    report.info(f"inventory: sequential poll of {label}", median(sequential), unit="s")
    report.info(f"inventory: concurrent poll of {label}", median(concurrent), unit="s")
    report.target("inventory: concurrent speed-up over sequential", median(sequential) / median(concurrent),
                  ">=", 5, unit="x")

    with _silent_keystone() as url:
        slow = Repo.objects.create(group=group, name="bench-silent", auth_url=url, auth_type=AuthType.PASSWORD,
                                   username="u", password="p", project_name="p", project_domain_name="Default",
                                   user_domain_name="Default")
        t0 = time.perf_counter()
        from django.utils import timezone
        wall0 = timezone.now()
        results = poll_repos([slow, *repos], timeout=slow_timeout)
        total = time.perf_counter() - t0
    others_done = max((Repo.objects.get(pk=r.pk).last_poll_at - wall0).total_seconds() for r in repos)
    slow_result = next(r for r in results if r.repo_id == slow.pk)
    report.info("inventory: silent repo ends after (its timeout)", total, unit="s",
                note=f"timeout {slow_timeout:g}s, ok={slow_result.ok}")
    report.target("inventory: others' poll with a silent repo / without", others_done / median(concurrent),
                  "<=", 1.5, unit="x", note=f"others done after {others_done:.2f}s")


def _big_inventory(group, rows: int, repos: int):
    """``rows`` images in each of ``repos`` offline repos, straight into the database."""
    from django.utils import timezone

    from glint.inventory.models import Image, RepoInventory
    from glint.repos.choices import AuthType
    from glint.repos.models import Repo

    made = Repo.objects.bulk_create([
        Repo(group=group, name=f"repo-{i:02d}", auth_url="http://127.0.0.1:9/v3", auth_type=AuthType.PASSWORD,
             username="u", password="p", project_name=f"p{i}", project_domain_name="Default",
             user_domain_name="Default") for i in range(repos)])
    RepoInventory.objects.bulk_create([RepoInventory(repo=r, project_id=f"project-{r.pk}") for r in made])
    now = timezone.now()
    images = []
    for row in range(rows):
        data = f"image {row}".encode()
        md5, sha512 = hashlib.md5(data).hexdigest(), hashlib.sha512(data).hexdigest()
        for repo in made:
            images.append(Image(
                repo=repo, image_id=f"{repo.pk}-{row}", name=f"image-{row:04d}", status="active", size=len(data),
                disk_format="qcow2", container_format="bare", checksum=md5, os_hash_algo="sha512",
                os_hash_value=sha512, owner=f"project-{repo.pk}", visibility="private", fingerprint="x",
                first_seen=now, last_seen=now, created_at=now))
    Image.objects.bulk_create(images, batch_size=2000)


def _time_requests(client, path: str, count: int) -> tuple[list[float], int, float]:
    """Times of ``count`` requests (after a first, cold one), queries of the last, and the cold time."""
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
        _big_inventory(group, rows, repos)
        client = client_for(make_user(f"Bench Viewer {rows}", group=group, role="member"))
        for what, path in (("page", f"/images/?group={group.pk}"),
                           ("API", f"/api/v1/images/?group={group.pk}&limit=50")):
            times, count, cold = _time_requests(client, path, requests)
            queries[(what, rows)] = count
            label = f"matrix {what}, {rows} images x {repos} repos"
            report.info(f"{label}: median", median(times) * 1000, unit=" ms")
            report.info(f"{label}: p95", p95(times) * 1000, unit=" ms")
            report.info(f"{label}: first request (cold)", cold * 1000, unit=" ms")
            report.info(f"{label}: SQL queries", count)
    small, big = sizes
    for what in ("page", "API"):
        report.target(f"matrix {what}: SQL queries at {big} rows minus at {small}",
                      queries[(what, big)] - queries[(what, small)], "<=", 0)
