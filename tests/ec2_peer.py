"""Connections to devcloud's EC2 peer (moto on 127.0.0.1) for the tests of the EC2 kind."""

from __future__ import annotations

import re
import socket
import threading
import time
import urllib.parse
import urllib.request

import boto3

from glint.clouds.addresses import EndpointPolicy
from glint.clouds.ec2 import Ec2Connection

#: The tests' development allowance: the peer on 127.0.0.1, nothing else on loopback.
DEV = EndpointPolicy(dev_loopback=("127.0.0.1",))


def peer_connection(peer, **overrides) -> Ec2Connection:
    """Glint's connection to the peer as its ``glint`` user, through :data:`DEV`."""
    keys = peer.users["glint"]
    values = dict(
        region=peer.region,
        access_key_id=keys.access_key_id,
        secret_access_key=keys.secret_access_key,
        endpoint_url=peer.endpoint_url,
        endpoint_policy=DEV,
    )
    values.update(overrides)
    return Ec2Connection(**values)


def peer_client(peer, service: str = "ec2"):
    """A plain boto3 client of the peer, to look behind Glint's back."""
    keys = peer.users["glint"]
    return boto3.client(
        service,
        region_name=peer.region,
        aws_access_key_id=keys.access_key_id,
        aws_secret_access_key=keys.secret_access_key,
        endpoint_url=peer.endpoint_url,
    )


def register_ami(ec2, name: str, snapshot_id: str) -> str:
    """Register an HVM AMI ``name`` whose root device is ``snapshot_id``, behind Glint's back."""
    return ec2.register_image(
        Name=name,
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot_id}}],
        VirtualizationType="hvm",
    )["ImageId"]


class ThrottledProxy:
    """A TCP proxy on 127.0.0.1 in front of the peer that passes at most ``bytes_per_second``
    towards it, over all connections together: a repo whose ``endpoint_url`` is :attr:`url`
    writes snapshots slowly enough that a test can act mid-snapshot, in any process. The peer
    behind it is the real one; only the rate at which it is fed is limited.
    """

    def __init__(self, upstream_url: str, bytes_per_second: float):
        upstream = urllib.parse.urlsplit(upstream_url)
        self.upstream = (upstream.hostname, upstream.port)
        self.rate = bytes_per_second
        self._lock = threading.Lock()
        self._next_free = time.monotonic()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pace(self, size: int) -> None:
        with self._lock:
            start = max(self._next_free, time.monotonic())
            self._next_free = start + size / self.rate
        time.sleep(max(0.0, start - time.monotonic()))

    def _pipe(self, source: socket.socket, sink: socket.socket, paced: bool) -> None:
        try:
            while data := source.recv(16384):
                if paced:
                    self._pace(len(data))
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                end.close()


class Recording:
    """The requests the peer receives while the block runs, from moto's own request recorder
    (``/moto-api/recorder/``): what reached the peer, not what a client meant to send.

    ``block_puts()`` lists the block index of each PutSnapshotBlock received, in arrival order.
    """

    def __init__(self, peer):
        self.url = peer.endpoint_url.rstrip("/") + "/moto-api/recorder/"
        self.text = ""

    def _call(self, verb: str) -> str:
        with urllib.request.urlopen(urllib.request.Request(self.url + verb, method="POST")) as r:
            return r.read().decode()

    def __enter__(self) -> Recording:
        self._call("reset-recording")
        self._call("start-recording")
        return self

    def __exit__(self, *exc) -> None:
        self._call("stop-recording")
        self.text = self._call("download-recording")
        self._call("reset-recording")

    def block_reads(self) -> int:
        """How many ListSnapshotBlocks and GetSnapshotBlock requests were received."""
        return len(_BLOCK_READ.findall(self.text))

    def block_puts(self) -> list[int]:
        # Matched in the raw text: the recorder appends requests of concurrent threads, and
        # each entry has these two keys side by side.
        return [int(i) for i in _BLOCK_PUT.findall(self.text)]


_BLOCK_READ = re.compile(r'"method": "GET", "url": "[^"]*/snapshots/[^/"]+/(changed)?blocks')
_BLOCK_PUT = re.compile(r'"method": "PUT", "url": "[^"]*/snapshots/[^/"]+/blocks/(\d+)')
