"""devcloud: real Keystone + Glance on loopback, for Glint's tests, benchmarks and demo.

Not part of the product (nothing under ``src/glint`` imports it). Its CLI and this API run in
the project's virtualenv; the services run from a separate cached virtualenv (``venv.py``).

    dc = devcloud.up(tmp, clouds=3, keystones=2, projects_per_cloud=2, sha256_clouds=(3,))
    openstack.connect(cloud="devcloud-1", config_files=[dc.clouds_yaml])  # or any clouds.yaml user
    dc.stop("devcloud-2"); dc.start("devcloud-2"); dc.down()
"""

from .core import Devcloud, down, up
from .errors import DevcloudError

__all__ = ["Devcloud", "DevcloudError", "down", "up"]
