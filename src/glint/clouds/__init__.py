"""Cloud drivers: one protocol, one module per cloud kind (ARCHITECTURE.md "Shape of the code").

Callers use only what this package exports::

    from glint.clouds import RepoConnection, get_driver

    with get_driver(RepoConnection.from_clouds_yaml(entry)) as cloud:
        for image in cloud.list_images(): ...

Importing the package registers every built-in driver. Nothing here imports Django.
"""

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
from glint.clouds.errors import *  # noqa: F403 - the typed errors are part of the API
from glint.clouds.errors import __all__ as _error_names

__all__ = [
    "CHUNK_SIZE",
    "Capabilities",
    "CloudDriver",
    "ImageReader",
    "ImageRecord",
    "ProjectInfo",
    "RepoConnection",
    "driver_kinds",
    "get_driver",
    "register_driver",
    *_error_names,
]
