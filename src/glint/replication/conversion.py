"""Convert an image in the content cache to the disk format another cloud imports.

docs/architecture.md "Conversions": ``qemu-img convert`` writes the new bytes, sparse, into a
spool of the cache (whose lock the child inherits, so a crash's leftover is removed like any
abandoned spool); the finished file is hashed (sha256) and renamed into the cache as the entry of
(source sha256, target format), so a second download of the same format converts nothing. A
conversion that fails or is stopped leaves neither the spool nor an entry.

The input format is always passed (``-f``): qemu-img never probes, so a raw image whose bytes
look like a qcow2 is never opened as one. Inputs that name other files (a qcow2 backing or data
file, a vmdk descriptor's extents) are refused before qemu-img opens them.

Targets: ``raw``; ``qcow2``; ``vmdk`` (stream-optimized, for VMware); ``vhd`` (qemu's ``vpc``,
fixed, virtual size rounded up to a whole MiB, as Azure requires); ``gce`` (``disk.raw`` in a
gzip-compressed GNU tar, sparse, as Compute Engine imports: made from the ``raw`` conversion).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from glint.replication.cache import CacheEntry, ContentCache, Spool
from glint.replication.errors import CopyCancelled, ReplicationError
from glint.replication.events import stopped_on
from glint.replication.image_safety import HEAD_BYTES, unsafe_reason

__all__ = [
    "CONVERSION_FORMATS",
    "FORMAT_LABELS",
    "INPUT_FORMATS",
    "ConversionFailed",
    "convert",
    "needs_conversion",
    "qemu_input_format",
]

#: Formats a cache entry can be converted to.
CONVERSION_FORMATS = ("raw", "qcow2", "vmdk", "vhd", "gce")
#: Each format as a person looks for it: by the cloud that imports it.
FORMAT_LABELS = {
    "raw": "raw disk",
    "qcow2": "qcow2 (OpenStack, KVM)",
    "vmdk": "vmdk (VMware)",
    "vhd": "vhd (Azure)",
    "gce": "disk.raw in a tar.gz (Compute Engine)",
}
#: Glance disk formats qemu-img reads, and qemu's name for each.
INPUT_FORMATS = {"raw": "raw", "qcow2": "qcow2", "vmdk": "vmdk", "vhd": "vpc", "vhdx": "vhdx"}
_OUTPUT_OPTIONS = {
    "raw": ["-O", "raw"],
    "qcow2": ["-O", "qcow2"],
    "vmdk": ["-O", "vmdk", "-o", "subformat=streamOptimized"],
}
MiB = 1024 * 1024
_PROGRESS = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")
#: Seconds qemu-img info may take (it reads headers only).
_INFO_TIMEOUT = 60

#: ``progress(done, total)``: work done so far, in the same unit as ``total``.
Progress = Callable[[int, int], None]


class ConversionFailed(ReplicationError):
    """The image could not be converted (unreadable, refused, or qemu-img failed)."""

    code = "conversion_failed"


def qemu_input_format(disk_format: str) -> str:
    """qemu-img's ``-f`` for a Glance disk format.

    Raises:
        ConversionFailed: qemu-img cannot read that format.
    """
    try:
        return INPUT_FORMATS[disk_format]
    except KeyError:
        raise ConversionFailed(
            f"a {disk_format or 'format-less'} image cannot be converted; Glint converts "
            f"{', '.join(INPUT_FORMATS)}"
        ) from None


def needs_conversion(disk_format: str, target: str) -> bool:
    """Whether bytes stored as ``disk_format`` must be converted to be ``target``: a raw or qcow2
    image already is; a vmdk or vhd is made again, in the variant the other cloud imports."""
    return not (disk_format == target and target in ("raw", "qcow2"))


def convert(
    cache: ContentCache,
    entry: CacheEntry,
    disk_format: str,
    target: str,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> CacheEntry:
    """The bytes of ``entry`` (whose disk format is ``disk_format``) as ``target``, from the
    cache when converted before. Setting ``cancel`` (from any thread) stops the converting
    process at once.

    Returns:
        ``entry`` itself when it already is ``target`` (raw or qcow2), else the conversion's
        entry (its ``hashes`` hold the sha256 of the converted bytes).

    Raises:
        ConversionFailed: Unknown target or input format, an input that names other files, or
            qemu-img (or tar) failed; nothing is left in the cache.
        CopyCancelled: ``cancel`` was set; nothing is left in the cache.
        CacheFull: No room for the result.
    """
    if target not in CONVERSION_FORMATS:
        raise ConversionFailed(
            f"unknown format {target!r}; use one of {', '.join(CONVERSION_FORMATS)}"
        )
    qemu_format = qemu_input_format(disk_format)
    if not needs_conversion(disk_format, target):
        return entry
    found = cache.converted(entry.sha256, target)
    if found is not None:
        return found
    _check_self_contained(entry.path)
    virtual_size = _virtual_size(entry.path, qemu_format)
    report = progress or (lambda done, total: None)
    if target == "gce":
        raw = convert(cache, entry, disk_format, "raw", progress=progress, cancel=cancel)
        return _produce(
            cache, entry, target, virtual_size, lambda out: _pack(raw, out, report, cancel)
        )
    return _produce(
        cache,
        entry,
        target,
        _aligned(virtual_size) + MiB if target == "vhd" else virtual_size,
        lambda out: _qemu_convert(
            entry.path, qemu_format, target, virtual_size, out, report, cancel
        ),
    )


def _check_self_contained(path: Path) -> None:
    """Refuse an input qemu-img would read other files for, before it opens it."""
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
    reason = unsafe_reason(head)
    if reason:
        raise ConversionFailed(f"the image is {reason}; Glint does not convert it")


def _virtual_size(path: Path, qemu_format: str) -> int:
    info = _run(["qemu-img", "info", "--output=json", "-f", qemu_format, str(path)], _INFO_TIMEOUT)
    data = json.loads(info)
    if data.get("backing-filename") or data.get("format-specific", {}).get("data", {}).get(
        "data-file"
    ):
        raise ConversionFailed("the image names a backing or data file; Glint does not convert it")
    return int(data["virtual-size"])


def _aligned(size: int) -> int:
    return -(-size // MiB) * MiB


def _produce(
    cache: ContentCache,
    entry: CacheEntry,
    target: str,
    reserve: int,
    write: Callable[[Spool], None],
) -> CacheEntry:
    """Run ``write`` into a new spool, hash what it wrote and commit it; discard it on any
    failure (or interruption)."""
    spool = cache.spool(reserve)
    try:
        write(spool)
        digest = _sha256(spool.path)
        return cache.commit_converted(spool.path, entry.sha256, target, {"sha256": digest})
    except BaseException:
        spool.discard()
        raise
    finally:
        spool.close()


def _qemu_convert(
    source: Path,
    qemu_format: str,
    target: str,
    virtual_size: int,
    out: Spool,
    report: Progress,
    cancel: threading.Event | None,
) -> None:
    if target == "vhd":
        # A fixed VHD of exactly the aligned size, filled by convert -n (no re-creation).
        _run(
            ["qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=fixed,force_size=on"]
            + [str(out.path), str(_aligned(virtual_size))],
            _INFO_TIMEOUT,
        )
        options = ["-n", "--target-is-zero", "-O", "vpc"]
    else:
        options = _OUTPUT_OPTIONS[target]
    command = ["qemu-img", "convert", "-p", "-f", qemu_format, *options, str(source), str(out.path)]
    _run_with_progress(command, out, lambda percent: report(int(percent * 100), 10000), cancel)


def _pack(raw: CacheEntry, out: Spool, report: Progress, cancel: threading.Event | None) -> None:
    """``disk.raw`` (the raw conversion, holes kept) in a gzip-compressed tar into ``out``."""
    command = ["tar", "--format=oldgnu", "-Sczf", str(out.path), "--transform=s|.*|disk.raw|"]
    report(0, 1)
    _run_with_progress(
        [*command, "-C", str(raw.path.parent), raw.path.name], out, lambda p: None, cancel
    )
    report(1, 1)


def _run_with_progress(
    command: list[str],
    out: Spool,
    on_percent: Callable[[float], None],
    cancel: threading.Event | None,
) -> None:
    """Run ``command`` with the spool's lock inherited, reporting qemu-img's ``-p`` percents;
    killed when ``cancel`` is set."""
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        pass_fds=(out.fileno(),),  # the spool's lock: held while the child writes
    )
    try:
        assert process.stdout is not None
        with stopped_on(cancel, process.kill):
            while chunk := process.stdout.read1(4096):
                for match in _PROGRESS.finditer(chunk):
                    on_percent(float(match.group(1)))
            stderr = process.stderr.read() if process.stderr else b""
            returncode = process.wait()
        if cancel is not None and cancel.is_set():
            raise CopyCancelled("the conversion was cancelled")
        if returncode != 0:
            raise ConversionFailed(_failure(command, stderr))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _run(command: list[str], timeout: float) -> bytes:
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise ConversionFailed(f"{command[0]} {command[1]} took over {timeout}s") from None
    if done.returncode != 0:
        raise ConversionFailed(_failure(command, done.stderr))
    return done.stdout


def _failure(command: list[str], stderr: bytes) -> str:
    text = stderr.decode("utf-8", "replace").strip().splitlines()
    return f"{command[0]} {command[1]} failed: {text[-1] if text else 'no message'}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()
