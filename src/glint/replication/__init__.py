"""The replication engine: verified, streaming copies of images between repos.

Plain Python: no Django, no settings (ARCHITECTURE.md "Shape of the code"). The jobs app turns
its rows into the values here, calls the engine, and stores what comes back::

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
calls delivered in the caller's thread), ``hashing``, ``verify``, ``properties``, ``policies``,
``cache``, ``records``, ``errors``; ``chunk_memory`` (how the chunks' memory goes back to the
system, set once per process).
"""

from glint.replication.cache import CacheEntry, ContentCache
from glint.replication.copier import copy_image
from glint.replication.errors import (
    CacheFull,
    CopyCancelled,
    NameConflict,
    PullFailed,
    ReplicationError,
    SourceNotUsable,
    SourceUnsafe,
    SourceVerificationFailed,
    TargetVerificationFailed,
    UnexpectedError,
    VerificationTimeout,
)
from glint.replication.policies import ConflictPolicy
from glint.replication.properties import (
    PropertyRules,
    PropertySyncResult,
    copy_fields,
    sync_properties,
)
from glint.replication.records import (
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

__all__ = [
    "CacheEntry",
    "CacheFull",
    "ConflictPolicy",
    "ContentCache",
    "CopyCancelled",
    "CopyObserver",
    "CopyOptions",
    "CopyResult",
    "CopySource",
    "CopyTarget",
    "Failure",
    "NameConflict",
    "PropertyRules",
    "PullFailed",
    "PropertySyncResult",
    "ReplicationError",
    "SourceNotUsable",
    "SourceUnsafe",
    "SourceVerificationFailed",
    "TargetOutcome",
    "TargetResult",
    "TargetState",
    "TargetVerificationFailed",
    "UnexpectedError",
    "VerificationTimeout",
    "copy_fields",
    "copy_image",
    "sync_properties",
]
