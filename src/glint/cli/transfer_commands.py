"""``glint upload`` and ``glint download``: images in and out of Glint, streamed, with progress.

``upload`` hashes the file first (sha256: so Glint checks the bytes that arrive against the file,
end to end), creates the upload (``POST /api/v1/uploads/``) and streams the file as the raw body
of ``PUT upload_url`` with its ``Content-Length``: nothing is read into memory on either side.
The upload answers once every target has verified its copy; ``--wait`` also follows automatic
retries of targets that failed. A connection that breaks mid-upload (or a server that restarts)
is resumed: ``HEAD upload_url`` tells the byte Glint holds (``Upload-Offset``) and ``PATCH``
sends the rest from there, the progress bar going on from that byte; ``--resume ID`` does the
same in a later run. ``upload --url`` has Glint fetch a web link instead (or the target clouds
themselves, when the link has a checksum; see ``GLINT_CLOUD_PULL``): nothing is sent from
here, and ``--wait`` follows the job.

``download`` writes ``FILE.part`` and renames it to ``FILE`` once the digest the server gave
(``Repr-Digest``: sha-256, else the cloud's sha-512) matches. A broken transfer is resumed with
``Range`` from the byte it reached, both within one run and when the command is run again.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import sys
import time
from pathlib import Path

import click
import requests

from glint.cli.api_client import _reason
from glint.cli.client_commands import api, group_option, resolve_group
from glint.cli.job_commands import (
    _matrix,
    resolve_image,
    resolve_repos,
    wait_for,
    wait_option,
)
from glint.cli.output import shown
from glint.clouds import CHUNK_SIZE
from glint.replication.conversion import CONVERSION_FORMATS

#: (connect, read) seconds for the upload's PUT: it answers once every target has verified its
#: copy, which for a large image takes a while after the last byte.
PUT_TIMEOUT = (10, 3600)
#: Tries of one download before giving up (each resumes where the last one stopped).
DOWNLOAD_ATTEMPTS = 5
#: Broken connections of one upload before giving up (each resumes from Glint's offset).
UPLOAD_ATTEMPTS = 5
#: Seconds between looks at an upload that is not ready to resume yet, and how long to look: a
#: server that died holds it until its job's lease expires (GLINT_JOB_LEASE_SECONDS, 60).
RESUME_WAIT, RESUME_PATIENCE = 2.0, 300.0
_FILENAME = re.compile(r'filename="([^"]+)"')


def _sha256_of(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with (
        click.progressbar(length=size, label=f"Hashing {path.name}", file=sys.stderr) as bar,
        path.open("rb") as handle,
    ):
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


class _ProgressFile:
    """The file as a request body: requests streams an object with ``read`` and sends its
    ``len`` as ``Content-Length`` (a generator would be sent chunked)."""

    def __init__(self, handle, size: int, bar):
        self._handle, self._size, self._bar = handle, size, bar

    def __len__(self) -> int:
        return self._size

    def read(self, amount: int = -1) -> bytes:
        data = self._handle.read(amount)
        self._bar.update(len(data))
        return data


def _properties(values: tuple[str, ...]) -> dict[str, str]:
    result = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--property")
        result[key] = text
    return result


@click.command()
@click.argument(
    "file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--url", help="Upload from this http(s) link instead of a FILE.")
@click.option("--checksum", help="With --url: the link's expected sha256:HEX or sha512:HEX.")
@click.option(
    "--checksum-url", help="With --url: a SHA256SUMS-style file that lists the link's checksum."
)
@click.option(
    "--checksum-entry", help="The entry to read in --checksum-url (default: the link's file name)."
)
@click.option("--name", help="The image's name (default: the file's or the link's name).")
@click.option(
    "--to", "repos", multiple=True, help="A repo to upload to (name or id); repeat for more."
)
@click.option(
    "--resume",
    "resume_id",
    type=int,
    metavar="ID",
    help="Send the rest of interrupted upload ID (FILE must be its file; the repos are its own).",
)
@click.option(
    "--format",
    "disk_format",
    help="Disk format (default: detected from the file; a contradiction is refused).",
)
@click.option("--container-format", default="bare", show_default=True)
@click.option(
    "--visibility",
    type=click.Choice(["private", "shared", "community", "public"]),
    default="private",
    show_default=True,
)
@click.option("--min-disk", type=int, default=0, help="GB.")
@click.option("--min-ram", type=int, default=0, help="MB.")
@click.option("--property", "properties", multiple=True, help="KEY=VALUE; repeat for more.")
@click.option(
    "--conflict-policy",
    type=click.Choice(["report", "skip", "replace", "rename-old"]),
    default="report",
    show_default=True,
    help="When a repo already has the name with other content.",
)
@group_option
@wait_option
def upload(
    file,
    url,
    checksum,
    checksum_url,
    checksum_entry,
    name,
    repos,
    resume_id,
    disk_format,
    container_format,
    visibility,
    min_disk,
    min_ram,
    properties,
    conflict_policy,
    group,
    wait,
):
    """Upload FILE (or a web link, --url) to repos at once, verified; a repo that fails is retried
    from Glint's cache. A broken upload is resumed (by itself, or later with --resume)."""
    if resume_id is not None:
        if not file or url:
            raise click.UsageError("--resume needs the upload's FILE (and no --url)")
        _resume_file(api(), resume_id, file, wait)
        return
    if not repos:
        raise click.UsageError("name a repo to upload to with --to")
    if bool(file) == bool(url):
        raise click.UsageError("give either a FILE or --url, not both or neither")
    if file and (checksum or checksum_url or checksum_entry):
        raise click.UsageError(
            "--checksum, --checksum-url and --checksum-entry go with --url "
            "(a FILE's sha256 is computed here)"
        )
    client = api()
    matrix = _matrix(client, resolve_group(client, group))
    targets = resolve_repos(matrix, repos)
    body = {
        "group": matrix["group"],
        "targets": [str(r["id"]) for r in targets],
        "container_format": container_format,
        "visibility": visibility,
        "min_disk": min_disk,
        "min_ram": min_ram,
        "properties": _properties(properties),
        "conflict_policy": conflict_policy,
    }
    optional = {
        "name": name,
        "disk_format": disk_format,
        "checksum": checksum,
        "checksum_url": checksum_url,
        "checksum_entry": checksum_entry,
    }
    body.update({key: value for key, value in optional.items() if value})
    if url:
        _upload_link(client, body, url, wait)
    else:
        _upload_file(client, body, file, wait)


def _upload_link(client, body: dict, url: str, wait: bool) -> None:
    created = client.post("uploads/", {**body, "url": url})
    click.echo(
        f"upload {created['id']} of {shown(created['name'])} from {shown(created['url'])}; "
        f"job {created['job']}: {created['job_state']}"
    )
    if wait:
        sys.exit(wait_for(client, [created["job"]]))


def _upload_file(client, body: dict, file: Path, wait: bool) -> None:
    size = file.stat().st_size
    sha256 = _sha256_of(file, size)
    created = client.post(
        "uploads/", {"name": file.name, **body, "size": size, "checksum": f"sha256:{sha256}"}
    )
    _send_file(client, created["id"], file, size, wait)


def _resume_file(client, upload_id: int, file: Path, wait: bool) -> None:
    """Send the rest of an interrupted upload, once FILE is known to be its file."""
    upload = client.get(f"uploads/{upload_id}/")
    size = file.stat().st_size
    if upload["size"] not in (None, size):
        raise click.ClickException(
            f"{file} is {size} bytes but upload {upload_id} is {upload['size']}: not its file"
        )
    if upload["checksum"] and upload["checksum"] != f"sha256:{_sha256_of(file, size)}":
        raise click.ClickException(
            f"{file} is not the file of upload {upload_id} (its sha256 differs)"
        )
    offset = _offset(client, _data_path(upload_id))
    click.echo(f"resuming at byte {offset}", err=True)
    _send_file(client, upload_id, file, size, wait, offset)


def _data_path(upload_id: int) -> str:
    return f"uploads/{upload_id}/data"


def _send_file(client, upload_id: int, file: Path, size: int, wait: bool, offset: int = 0) -> None:
    """Send FILE from ``offset`` (resuming as needed), then say how the upload ended."""
    with click.progressbar(length=size, label=f"Uploading {file.name}", file=sys.stderr) as bar:
        bar.update(offset)
        response = _send_resuming(client, _data_path(upload_id), file, size, bar, offset)
    if response.status_code >= 400:
        raise click.ClickException(
            f"upload {upload_id}: HTTP {response.status_code}: {_reason(response)}"
        )
    result = response.json()
    click.echo(
        f"upload {result['id']} of {shown(result['name'])}: {result['state']} "
        f"({result['disk_format']}, "
        f"sha256 {result['sha256'] or '?'}); job {result['job']}: {result['job_state']}"
    )
    if wait and result["job"]:
        sys.exit(wait_for(client, [result["job"]]))


def _send_resuming(
    client, path: str, file: Path, size: int, bar, offset: int = 0
) -> requests.Response:
    """Send the file from ``offset``, and after a broken connection the rest from the offset
    Glint reports."""
    breaks, deadline = 0, None
    while True:
        try:
            response = _send(client, path, file, size, offset, bar)
        except requests.exceptions.RequestException as exc:
            breaks += 1
            if breaks >= UPLOAD_ATTEMPTS:
                raise click.ClickException(
                    f"the upload broke off {breaks} times ({type(exc).__name__}); Glint keeps what "
                    f"arrived: run this again with --resume {path.split('/')[1]}, or cancel it"
                ) from None
            click.echo(f"\nupload broke off ({type(exc).__name__}); resuming", err=True)
        else:
            if response.status_code != 409 or _code(response) not in ("busy", "offset_mismatch"):
                return response
            # The server has not yet noticed the break (or restarted and holds the upload).
        deadline = deadline or time.monotonic() + RESUME_PATIENCE
        if time.monotonic() > deadline:
            raise click.ClickException(
                "Glint did not let the upload resume in time; run the command again"
            )
        time.sleep(RESUME_WAIT)
        offset = _offset(client, path)
        click.echo(f"resuming at byte {offset}", err=True)
        bar.pos = offset
        bar.update(0)


def _send(client, path: str, file: Path, size: int, offset: int, bar) -> requests.Response:
    """``PUT`` the whole file, or ``PATCH`` its bytes from ``offset`` (``Upload-Offset``)."""
    headers = {"Content-Type": "application/octet-stream"}
    if offset:
        headers["Upload-Offset"] = str(offset)
    with file.open("rb") as handle:
        handle.seek(offset)
        return client.session.request(
            "PATCH" if offset else "PUT",
            client.base + path,
            timeout=PUT_TIMEOUT,
            data=_ProgressFile(handle, size - offset, bar),
            headers=headers,
        )


def _offset(client, path: str) -> int:
    """The byte Glint holds the upload up to, asked until the server answers (it may be
    restarting)."""
    deadline = time.monotonic() + RESUME_PATIENCE
    while True:
        try:
            return int(client.request("HEAD", path).headers["Upload-Offset"])
        except click.ClickException:
            if time.monotonic() > deadline:
                raise
            time.sleep(RESUME_WAIT)


def _code(response: requests.Response) -> str:
    try:
        return response.json().get("code", "")
    except ValueError:
        return ""


def _expected_digest(response: requests.Response) -> tuple[str, str] | None:
    """The strongest digest of ``Repr-Digest`` (RFC 9530) this command can check: (hashlib name,
    hex)."""
    found = {}
    for item in response.headers.get("Repr-Digest", "").split(","):
        algo, _, value = item.strip().partition("=")
        if algo in ("sha-256", "sha-512") and value.startswith(":") and value.endswith(":"):
            found[algo.replace("-", "")] = base64.b64decode(value[1:-1]).hex()
    return next(((algo, found[algo]) for algo in ("sha256", "sha512") if algo in found), None)


def _hash_file(path: Path, algo: str):
    digest = hashlib.new(algo)
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest


def _open(client, path: str, offset: int) -> requests.Response:
    return client.request(
        "GET", path, stream=True, headers={"Range": f"bytes={offset}-"} if offset else {}
    )


def _wait_for_conversion(client, path: str, disk_format: str) -> None:
    """Ask for the download until Glint has the file in ``disk_format``, following the job that
    converts it."""
    while True:
        response = client.request("GET", path, stream=True)
        try:
            if response.status_code != 202:
                return
            job_id = response.json()["job"]
        finally:
            response.close()
        click.echo(f"Glint is converting the image to {disk_format} (job {job_id})", err=True)
        if wait_for(client, [job_id]) != 0:
            raise click.ClickException(
                f"the conversion to {disk_format} did not succeed (job {job_id}, above)"
            )


def _default_name(response: requests.Response, row: dict) -> Path:
    match = _FILENAME.search(response.headers.get("Content-Disposition", ""))
    return Path(shown(os.path.basename(match.group(1)) if match else row["name"]))


@click.command()
@click.argument("image")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write it (default: the image's name in this directory).",
)
@click.option(
    "--format",
    "disk_format",
    type=click.Choice(CONVERSION_FORMATS),
    help="The disk format to download it in: raw, qcow2, vmdk (VMware), vhd (Azure) or gce "
    "(Compute Engine's disk.raw in a tar.gz). Glint converts it first, with a progress line. "
    "Default: as stored.",
)
@group_option
def download(image, output, group, disk_format):
    """Download IMAGE (a name, NAME@sha256:PREFIX or a cloud image id), resuming if interrupted."""
    client = api()
    row = resolve_image(_matrix(client, resolve_group(client, group)), image)
    path = f"images/{row['id']}/download/" + (f"?format={disk_format}" if disk_format else "")
    if disk_format:
        _wait_for_conversion(client, path, disk_format)
    response = None if output else _open(client, path, 0)
    target = output or _default_name(response, row)
    part = target.with_name(target.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    if response is not None and offset:
        response.close()  # a previous run left part of it: ask again from there
        response = None
    response = response or _open(client, path, offset)
    if response.status_code != 206:
        offset = 0  # the whole image is coming (the server ignored the range, or it changed)
    total = offset + int(response.headers.get("Content-Length", 0))
    expected = _expected_digest(response)
    algo = expected[0] if expected else "sha256"
    digest = _hash_file(part, algo) if offset else hashlib.new(algo)
    if offset:
        click.echo(f"resuming at byte {offset}", err=True)
    with click.progressbar(
        length=total, label=f"Downloading {target.name}", file=sys.stderr
    ) as bar:
        bar.update(offset)
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            try:
                with part.open("ab" if offset else "wb") as out:
                    for chunk in response.iter_content(CHUNK_SIZE):
                        out.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
            except requests.exceptions.RequestException as exc:
                click.echo(f"\ntransfer broke off ({type(exc).__name__}); resuming", err=True)
            finally:
                response.close()
            offset = part.stat().st_size
            if offset >= total or attempt == DOWNLOAD_ATTEMPTS:
                break
            response = _open(client, path, offset)
            if response.status_code != 206:
                raise click.ClickException(
                    "the server did not resume the download; run the command again"
                )
    if offset != total:
        raise click.ClickException(
            f"the download stopped at byte {offset} of {total} after "
            f"{DOWNLOAD_ATTEMPTS} tries; run the command again to resume from {part}"
        )
    if expected and digest.hexdigest() != expected[1]:
        part.unlink()
        raise click.ClickException(
            f"the downloaded bytes hash to {algo} {digest.hexdigest()}, not {expected[1]} "
            f"as Glint said: the file was removed; run the command again"
        )
    part.replace(target)
    verified = (
        f", {algo} {expected[1]} verified" if expected else " (the server gave no digest to check)"
    )
    click.echo(f"{target}: {total} bytes{verified}")


def register(cli: click.Group) -> None:
    for command in (upload, download):
        cli.add_command(command)
