"""The replication engine: verified, streaming copies of images between repos, and every other
write Glint makes to a cloud (deletes, a cancelled copy's clean-up, orphan removal, renames,
property syncs).

Plain Python: no Django, no settings (``docs/architecture.md``). The jobs app turns its rows
into the values here, calls the engine, and stores what comes back::

    from glint.replication import ContentCache, CopySource, CopyTarget, copy_image

    result = copy_image(
        CopySource(source_driver, image_id, repo_ref="12"),
        [CopyTarget("34", driver_a), CopyTarget("56", driver_b, visibility="public")],
        cache=ContentCache(cache_dir, quota_bytes=50 * 2**30),
        observer=my_observer,          # hooks run in this thread
        cancel=cancel_event,           # a threading.Event
    )
    for key, target in result.targets.items(): ...

Modules: ``copier`` (one copy from start to end), ``target_run`` (what happens at one target),
``fanout`` (one read, N concurrent writes, the spool for slow targets), ``events`` (observer
calls delivered in the caller's thread), ``hashing``, ``verify``, ``properties`` (what a copy
carries; property syncs and renames), ``deletes`` (deletes with their re-checks, clean-up,
orphans), ``policies``, ``cache``, ``conversion`` (disk formats for other clouds, through the
cache), ``copy_types`` (the values a copy is described and reported with), ``errors``;
``chunk_memory`` (how the chunks' memory goes back to the system, set once per process).

This package is the apps' one door to the layers below: it also exports what they need of the
cloud drivers (the connection and image records, the errors they catch, and ``get_driver``,
which only ``glint.repos.drivers`` calls), so no app imports ``glint.clouds`` itself.
"""

from glint.clouds import (
    CHUNK_SIZE,
    CloudDriver,
    CloudError,
    Ec2Connection,
    ImageRecord,
    NotFound,
    ProjectInfo,
    RepoConnection,
    get_driver,
)
from glint.clouds.addresses import EndpointPolicy
from glint.replication.cache import CacheEntry, ContentCache
from glint.replication.chunk_memory import ChunkPool
from glint.replication.conversion import (
    CONVERSION_FORMATS,
    FORMAT_LABELS,
    ConversionFailed,
    convert,
    needs_conversion,
    qemu_input_format,
)
from glint.replication.copier import cache_image, copy_image
from glint.replication.copy_types import (
    CopyObserver,
    CopyOptions,
    CopyResult,
    CopySource,
    CopyTarget,
    Failure,
    TargetOutcome,
    TargetResult,
    TargetState,
)
from glint.replication.deletes import (
    STUCK_STATUSES,
    DeleteOutcome,
    delete_image,
    discard_image,
    remove_orphan,
)
from glint.replication.errors import (
    CacheFull,
    CopyCancelled,
    ImageProtected,
    NameConflict,
    NotOwned,
    PullFailed,
    ReplicationError,
    SourceNotUsable,
    SourceUnsafe,
    SourceVerificationFailed,
    TargetVerificationFailed,
    UnexpectedError,
    VerificationTimeout,
)
from glint.replication.hashing import MultiHasher
from glint.replication.image_safety import unsafe_reason
from glint.replication.policies import ConflictPolicy
from glint.replication.properties import (
    PropertyRules,
    PropertySyncResult,
    copy_fields,
    rename_image,
    sync_properties,
)

__all__ = [
    "CHUNK_SIZE",
    "CONVERSION_FORMATS",
    "FORMAT_LABELS",
    "STUCK_STATUSES",
    "CacheEntry",
    "CacheFull",
    "ChunkPool",
    "CloudDriver",
    "CloudError",
    "ConflictPolicy",
    "ContentCache",
    "ConversionFailed",
    "CopyCancelled",
    "CopyObserver",
    "CopyOptions",
    "CopyResult",
    "CopySource",
    "CopyTarget",
    "DeleteOutcome",
    "Ec2Connection",
    "EndpointPolicy",
    "Failure",
    "ImageProtected",
    "ImageRecord",
    "MultiHasher",
    "NameConflict",
    "NotFound",
    "NotOwned",
    "ProjectInfo",
    "PropertyRules",
    "PullFailed",
    "PropertySyncResult",
    "ReplicationError",
    "RepoConnection",
    "SourceNotUsable",
    "SourceUnsafe",
    "SourceVerificationFailed",
    "TargetOutcome",
    "TargetResult",
    "TargetState",
    "TargetVerificationFailed",
    "UnexpectedError",
    "VerificationTimeout",
    "convert",
    "needs_conversion",
    "qemu_input_format",
    "copy_fields",
    "cache_image",
    "copy_image",
    "delete_image",
    "discard_image",
    "get_driver",
    "remove_orphan",
    "rename_image",
    "sync_properties",
    "unsafe_reason",
]
