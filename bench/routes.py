"""The four ways to get one image from a source cloud into N target clouds, each timed.

- ``glint``: a copy job through the real ``glint serve``, planned and applied through the REST
  API like the matrix does, timed until the job is ``done`` (every target verified): until
  the job's own end, which a poll every second then reads (``Glint.timed_copy``).
- the limit: reading the source alone, and PUTting the same bytes from a local file into the N
  targets at once through the driver's ``write_data`` (raw keystoneauth requests; the image
  records are created before the clock starts). The limit is the slower of the two.
- ``staged`` (Glint v2's way): download to disk, then upload to each target, one after another.
- ``manual``: ``openstack image save``, then ``openstack image create`` per target.

Every route leaves no image behind in the targets (the next run needs a clean slate, and the
Glance stores would fill the disk). Each route times exactly its measured part with the
``CpuMeter`` it is given, which also counts the CPU every process of the stack spent meanwhile.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

from bench.cpu import CpuMeter
from bench.memory import RssSampler
from bench.stack import RAW, Glint, Stack, file_chunks
from bench.tools import tool

__all__ = ["glint_copy", "glint_upload", "manual", "read_source", "staged", "write_targets"]


def _name(route: str) -> str:
    return f"bench-{route}-{uuid.uuid4().hex[:8]}"


def glint_copy(
    glint: Glint,
    stack: Stack,
    source: str,
    source_name: str,
    targets: list[str],
    meter: CpuMeter | None = None,
) -> tuple[float, int]:
    """Seconds for a verified copy job, and the growth of ``glint serve``'s RSS while it ran."""
    meter = meter or CpuMeter({})
    glint.clear_cache()
    row, version = glint.row(source_name, {source})
    with RssSampler(glint.pid) as rss, meter:
        seconds = glint.timed_copy(row, version, targets)
    for cloud in targets:
        stack.delete_named(cloud, source_name)
    return seconds, rss.growth


def read_source(stack: Stack, source: str, image_id: str, meter: CpuMeter) -> float:
    """Seconds to read the source image once, bytes dropped."""
    with stack.driver(source) as driver:
        with meter, driver.open_read(image_id) as reader:
            for _chunk in reader:
                pass
        return meter.use.wall


def write_targets(stack: Stack, path: Path, targets: list[str], meter: CpuMeter) -> float:
    """Seconds to PUT a local file into every target at once (records made before the clock)."""
    drivers = [stack.driver(cloud) for cloud in targets]
    ids = [d.create_image({"name": _name("limit"), **RAW}).id for d in drivers]
    errors: list[BaseException] = []

    def put(driver, image_id):
        try:
            driver.write_data(image_id, file_chunks(path), size=path.stat().st_size)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=put, args=pair) for pair in zip(drivers, ids)]
    with meter:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for driver, image_id in zip(drivers, ids):
        driver.delete(image_id)
        driver.close()
    if errors:
        raise errors[0]
    return meter.use.wall


def staged(
    stack: Stack, source: str, image_id: str, targets: list[str], scratch: Path, meter: CpuMeter
) -> float:
    """Seconds to download to disk, then upload to each target in turn (Glint v2's route)."""
    name = _name("staged")
    ids = {}
    with tempfile.NamedTemporaryFile(dir=scratch, suffix=".img") as spool, meter:
        with stack.driver(source) as driver, driver.open_read(image_id) as reader:
            for chunk in reader:
                spool.write(chunk)
        spool.flush()
        for cloud in targets:
            ids[cloud] = stack.upload(cloud, Path(spool.name), name)
    for cloud, new_id in ids.items():
        stack.delete_quietly(cloud, [new_id])
    return meter.use.wall


# What `openstack image save` / `image create --file` do, for when python-openstackclient is not
# installed (the smoke test may not reach PyPI): the same openstacksdk calls, from a fresh
# interpreter, so start-up is paid per step as it is with the CLI.
_SDK_SAVE = (
    "import openstack,sys; openstack.connect(cloud=sys.argv[1])"
    ".image.download_image(sys.argv[2], output=sys.argv[3])"
)
_SDK_CREATE = (
    "import openstack,sys; openstack.connect(cloud=sys.argv[1])"
    ".image.create_image(name=sys.argv[2], filename=sys.argv[3], disk_format='raw', "
    "container_format='bare', allow_duplicates=True, wait=True)"
)


def manual(
    stack: Stack, source: str, image_id: str, targets: list[str], scratch: Path, meter: CpuMeter
) -> tuple[float, str]:
    """Seconds for ``openstack image save`` then ``openstack image create`` per target; and how
    it ran (the CLI, or the same SDK calls when the CLI is not installed)."""
    osc = tool("openstack")
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(stack.dc.clouds_yaml)}
    env.pop("OS_CLOUD", None)
    name = _name("manual")
    with tempfile.TemporaryDirectory(dir=scratch) as work:
        image = str(Path(work) / "image.raw")
        if osc:
            steps = [[str(osc), "--os-cloud", source, "image", "save", "--file", image, image_id]]
            steps += [
                [
                    str(osc),
                    "--os-cloud",
                    cloud,
                    "image",
                    "create",
                    "--disk-format",
                    "raw",
                    "--container-format",
                    "bare",
                    "--file",
                    image,
                    name,
                    "-f",
                    "value",
                    "-c",
                    "id",
                ]
                for cloud in targets
            ]
        else:
            python = sys.executable
            steps = [[python, "-c", _SDK_SAVE, source, image_id, image]]
            steps += [[python, "-c", _SDK_CREATE, cloud, name, image] for cloud in targets]
        with meter:
            for step in steps:
                result = subprocess.run(
                    step, env=env, capture_output=True, text=True, timeout=1800, check=False
                )
                if result.returncode:
                    raise RuntimeError(f"{' '.join(step[:6])} failed: {result.stderr[-800:]}")
    for cloud in targets:
        stack.delete_named(cloud, name)
    return (
        meter.use.wall,
        "openstack CLI" if osc else "openstacksdk calls (openstackclient not installed)",
    )


def glint_upload(
    glint: Glint, stack: Stack, path: Path, targets: list[str], meter: CpuMeter
) -> float:
    """Seconds for an upload through the API (create, then PUT the file) until every target has
    it."""
    glint.clear_cache()
    name = _name("upload")
    size = path.stat().st_size
    with meter:
        upload = glint.post(
            "uploads/",
            {
                "group": glint.group,
                "name": name,
                "targets": targets,
                "size": size,
                "disk_format": "raw",
                "container_format": "bare",
            },
        )
        with path.open("rb") as body:
            response = glint.session.put(
                upload["upload_url"],
                data=body,
                timeout=1800,
                headers={"Content-Type": "application/octet-stream"},
            )
    result = response.json()
    if response.status_code != 200:
        raise RuntimeError(f"PUT {upload['upload_url']}: HTTP {response.status_code}: {result}")
    for cloud in targets:
        stack.delete_named(cloud, name)
    if result.get("job_state") != "done":
        raise RuntimeError(
            f"upload ended {result.get('state')}/{result.get('job_state')}: {result.get('error')}"
        )
    return meter.use.wall
