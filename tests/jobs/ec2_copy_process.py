"""One copy from a Glance image into EC2 in a process of its own, for a test to kill -9 mid-write.

Run by ``test_reconcile``. Reads JSON on stdin (never argv: it holds keys): ``{"source":
clouds.yaml entry, "image": source image id, "ec2": Ec2Connection fields}``; prints one JSON
line ``{"image_created": id}`` each time the engine reports what it created at the target (the
snapshot first), as a job's observer would record it.
"""

from __future__ import annotations

import json
import sys

from glint.clouds import RepoConnection, get_driver
from glint.clouds.ec2 import Ec2Connection
from glint.replication import CopyObserver, CopySource, CopyTarget, copy_image
from tests.ec2_peer import DEV


class Report(CopyObserver):
    def image_created(self, target_key: str, image_id: str) -> None:
        print(json.dumps({"image_created": image_id}), flush=True)


def main() -> None:
    request = json.load(sys.stdin)
    source = get_driver(RepoConnection.from_clouds_yaml(request["source"]))
    target = get_driver(Ec2Connection(**request["ec2"], endpoint_policy=DEV))
    copy_image(
        CopySource(source, request["image"], "dead-job"),
        [CopyTarget("ec2", target)],
        observer=Report(),
    )


if __name__ == "__main__":
    main()
