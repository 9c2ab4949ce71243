"""Cloud drivers: one protocol, one module per cloud kind (``docs/architecture.md``).

Callers use only what this package exports; the apps reach it through the engine's surface
(``glint.replication``) and open drivers in one place, ``glint.repos.drivers``::

    with open_driver(repo) as cloud:
        for image in cloud.list_images(): ...

Importing the package registers every built-in driver. Nothing here imports Django.
"""

from glint.clouds import ec2 as _ec2  # noqa: F401 - registers the "ec2" kind
from glint.clouds import openstack as _openstack  # noqa: F401 - registers the "openstack" kind
from glint.clouds.base import (
    CHUNK_SIZE,
    Capabilities,
    CloudDriver,
    ImageReader,
    ImageRecord,
    ProjectInfo,
    RepoConnection,
    driver_kinds,
    get_driver,
    register_driver,
)
from glint.clouds.ec2 import Ec2Connection
from glint.clouds.errors import *  # noqa: F403 - the typed errors are part of the API
from glint.clouds.errors import __all__ as _error_names

__all__ = [
    "CHUNK_SIZE",
    "Capabilities",
    "CloudDriver",
    "Ec2Connection",
    "ImageReader",
    "ImageRecord",
    "ProjectInfo",
    "RepoConnection",
    "driver_kinds",
    "get_driver",
    "register_driver",
    *_error_names,
]
