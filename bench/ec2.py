"""Figure 7: a Glance image copied into EC2 through Glint, against the EBS direct limit.

The image is half zeros, in 1 MiB stripes (two EBS blocks of data, two of zeros): the zeros are
never sent, so both routes PUT the same half of the blocks.

- ``glint``: a copy job Glance -> EC2 through the real ``glint serve`` (plan and apply through the
  REST API, timed until the job is ``done``: the source read, hashed, every data block PUT with
  its checksum, the snapshot completed, the AMI registered and verified).
- the limit: the same non-zero blocks PUT from a local file into a new snapshot with plain boto3
  (StartSnapshot, PutSnapshotBlock with each block's SHA-256, CompleteSnapshot), as many at once
  as the driver sends (``BLOCKS_IN_FLIGHT``).

Both run against devcloud's EC2 peer (moto, patched like EC2), booted for this figure with one
Glance beside it, and leave no AMI or snapshot behind.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import botocore.config

from bench.cpu import CpuMeter, CpuUse, median_use, stack_processes
from bench.profiling import profile_copy
from bench.report import Report, median
from bench.stack import Glint, Stack, file_chunks
from glint.clouds import get_driver
from glint.clouds.ec2 import BLOCK_SIZE, BLOCKS_IN_FLIGHT, GIB
from tests.ec2_peer import peer_connection

__all__ = ["ec2_figures"]

MiB = 2**20
ROW = "ec2: Glance -> EC2 Glint / EBS direct limit"
EC2_REPO = "ec2"
#: Data, then zeros, in stripes of this size (a whole number of EBS blocks).
STRIPE = MiB


def write_half_zeros(path: Path, size: int) -> Path:
    """``size`` bytes: random stripes alternating with zero stripes, written once."""
    if path.exists() and path.stat().st_size == size:
        return path
    with path.open("wb") as out:
        for offset in range(0, size, STRIPE):
            n = min(STRIPE, size - offset)
            out.write(os.urandom(n) if (offset // STRIPE) % 2 == 0 else bytes(n))
    return path


def ec2_figures(
    report: Report,
    dc,
    work: Path,
    size: int,
    runs: int,
    extra: dict,
    profile_dir: Path | None = None,
) -> None:
    """Time both routes in ``runs`` interleaved rounds and add the ratio row; with
    ``profile_dir``, one more Glint copy under py-spy (``profile-glint-ec2-copy.txt``)."""
    say = report.printer
    peer = dc.ec2_peer
    source = dc.glance_names()[0]
    data = write_half_zeros(work / f"ec2-image-{size}.raw", size)
    stack = Stack(dc)
    name = f"bench-ec2-{size}"
    stack.upload(source, data, name)
    glint = Glint(dc, work / "glint-ec2", [source], ec2_peer=peer)
    try:
        processes = stack_processes(dc, glint.pid)
        times: dict[str, list[float]] = {"glint": [], "limit": []}
        cpu: dict[str, list[CpuUse]] = {"glint": [], "limit": []}
        routes = [
            ("glint", lambda meter: _glint_copy(glint, peer, source, name, meter)),
            ("limit", lambda meter: _ebs_direct(peer, data, meter)),
        ]
        for round_no in range(runs):
            say(f"bench: ec2 round {round_no + 1}/{runs} ({size // MiB} MiB, half zeros)")
            for key, route in routes[round_no % 2 :] + routes[: round_no % 2]:
                meter = CpuMeter(processes)
                seconds = route(meter)
                times[key].append(seconds)
                cpu[key].append(meter.use)
                say(f"  {key}: {seconds:.2f}s ({meter.use.note(per_process=True)})")
        if profile_dir is not None:
            profile_copy(
                report,
                glint.pid,
                profile_dir / "profile-glint-ec2-copy.txt",
                lambda: _glint_copy(glint, peer, source, name, CpuMeter(processes)),
                extra,
                "profile_ec2",
            )
    finally:
        glint.stop()
    glint_s, limit_s = median(times["glint"]), median(times["limit"])
    report.info("ec2: Glint copy Glance -> EC2", glint_s, unit="s", note=_note(cpu["glint"]))
    report.info("ec2: EBS direct limit", limit_s, unit="s", note=_note(cpu["limit"]))
    report.target(
        ROW,
        glint_s / limit_s,
        "<=",
        1.2,
        unit="x",
        note=f"{size // MiB} MiB, half zeros; limit: the same non-zero blocks PUT from a local "
        f"file, {BLOCKS_IN_FLIGHT} at once, with checksums",
    )


def _note(uses: list[CpuUse]) -> str:
    return median_use(uses).note(per_process=True)


def _glint_copy(glint: Glint, peer, source: str, name: str, meter: CpuMeter) -> float:
    """Seconds of a copy job to the EC2 repo (``Glint.timed_copy``)."""
    glint.clear_cache()
    row, version = glint.row(name, {source})
    with meter:
        seconds = glint.timed_copy(row, version, [EC2_REPO])
    # The poll the job asked for lists the AMI first: deleting it before that poll ends would let
    # it land after the next round read the matrix, which then refuses the plan as stale.
    glint.row(name, {source, EC2_REPO})
    with get_driver(peer_connection(peer)) as driver:
        for record in driver.list_images():
            if record.name == name:
                driver.delete(record.id)
    return seconds


def _ebs_direct(peer, data: Path, meter: CpuMeter) -> float:
    """Seconds to PUT the blocks with data into a new snapshot, ``BLOCKS_IN_FLIGHT`` at once."""
    keys = peer.users["glint"]
    session = boto3.session.Session(
        aws_access_key_id=keys.access_key_id,
        aws_secret_access_key=keys.secret_access_key,
        region_name=peer.region,
    )
    config = botocore.config.Config(max_pool_connections=BLOCKS_IN_FLIGHT * 2)
    ebs = session.client("ebs", endpoint_url=peer.endpoint_url, config=config)
    ec2 = session.client("ec2", endpoint_url=peer.endpoint_url)
    zero = bytes(BLOCK_SIZE)
    size = data.stat().st_size

    def put(snapshot_id: str, index: int, block: bytes) -> None:
        ebs.put_snapshot_block(
            SnapshotId=snapshot_id,
            BlockIndex=index,
            BlockData=block,
            DataLength=len(block),
            Checksum=base64.b64encode(hashlib.sha256(block).digest()).decode(),
            ChecksumAlgorithm="SHA256",
        )

    with meter:
        snapshot_id = ebs.start_snapshot(VolumeSize=max(1, -(-size // GIB)))["SnapshotId"]
        sent = 0
        with ThreadPoolExecutor(BLOCKS_IN_FLIGHT) as pool:
            pending = []
            for index, block in enumerate(file_chunks(data, BLOCK_SIZE)):
                if block == zero:
                    continue
                pending.append(pool.submit(put, snapshot_id, index, block))
                sent += 1
                if len(pending) >= BLOCKS_IN_FLIGHT * 2:
                    pending.pop(0).result()
            for future in pending:
                future.result()
        ebs.complete_snapshot(SnapshotId=snapshot_id, ChangedBlocksCount=sent)
    with contextlib.suppress(Exception):
        ec2.delete_snapshot(SnapshotId=snapshot_id)
    ebs.close()
    ec2.close()
    return meter.use.wall
