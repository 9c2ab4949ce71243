"""The upload repair of ``glint serve`` (start-up and periodic): parts no resumable upload owns
are removed, interrupted uploads expire after the resume window, resumable parts stay."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from glint.jobs.runners import content_cache
from glint.transfers import repair
from glint.transfers.models import Upload, UploadState

pytestmark = pytest.mark.django_db


def _upload(group, member, state: str, **fields) -> Upload:
    upload = Upload.objects.create(
        group=group, requester=member, name=f"img-{state}", state=state, **fields
    )
    part = content_cache().upload_part(upload.part_key, 0)
    part.write(b"x" * 100)
    part.close()
    return upload


def test_repair_keeps_resumable_parts_and_removes_the_rest(group_a, member, settings):
    settings.GLINT_UPLOAD_RESUME_HOURS = 24
    now = timezone.now()
    hour = datetime.timedelta(hours=1)
    fresh = _upload(group_a, member, UploadState.INTERRUPTED, interrupted_at=now - hour)
    stale = _upload(group_a, member, UploadState.INTERRUPTED, interrupted_at=now - 25 * hour)
    receiving = _upload(group_a, member, UploadState.RECEIVING)
    done = _upload(group_a, member, UploadState.RECEIVED)
    gone = _upload(group_a, member, UploadState.FAILED)
    gone_key = gone.part_key
    gone.delete()
    cache = content_cache()
    before = set(cache.upload_part_keys())

    counts = repair.repair()

    assert set(cache.upload_part_keys()) == before - {stale.part_key, done.part_key, gone_key}
    assert {fresh.part_key, receiving.part_key} <= set(cache.upload_part_keys())
    stale.refresh_from_db()
    assert (stale.state, stale.error_code) == ("failed", "upload_expired")
    assert "within 24 h" in stale.error
    for key in (fresh.part_key, receiving.part_key):
        cache.remove_upload_part(key)
    assert counts["expired_uploads"] == 1 and counts["parts"] >= 3
