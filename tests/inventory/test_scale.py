"""The matrix stays fast on a big inventory: 2,000 rows × 20 repos, a constant number of queries.

Its speed is measured by the benchmarks (bench/), not timed here.
"""

import hashlib

import pytest
from django.utils import timezone

from glint.inventory.models import Image, RepoInventory
from glint.inventory.poller import request_refresh
from glint.repos.choices import AuthType
from glint.repos.models import Repo

ROWS, REPOS = 2000, 20


def offline_repo(group, index):
    return Repo(
        group=group,
        name=f"repo-{index:02d}",
        auth_url="http://127.0.0.1:9/v3",
        auth_type=AuthType.PASSWORD,
        username="u",
        password="p",
        project_name=f"p{index}",
        project_domain_name="Default",
        user_domain_name="Default",
    )


@pytest.fixture
def big_inventory(group_a):
    repos = Repo.objects.bulk_create([offline_repo(group_a, i) for i in range(REPOS)])
    RepoInventory.objects.bulk_create(
        [RepoInventory(repo=r, project_id=f"project-{r.pk}") for r in repos]
    )
    now = timezone.now()
    images = []
    for row in range(ROWS):
        data = f"image {row}".encode()
        for repo in repos:
            images.append(
                Image(
                    repo=repo,
                    image_id=f"{repo.pk}-{row}",
                    name=f"image-{row:04d}",
                    status="active",
                    size=len(data),
                    disk_format="qcow2",
                    container_format="bare",
                    checksum=hashlib.md5(data).hexdigest(),
                    os_hash_algo="sha512",
                    os_hash_value=hashlib.sha512(data).hexdigest(),
                    owner=f"project-{repo.pk}",
                    visibility="private",
                    fingerprint="x",
                    first_seen=now,
                    last_seen=now,
                    created_at=now,
                )
            )
    Image.objects.bulk_create(images, batch_size=2000)
    return repos


def test_matrix_page_and_api_use_a_constant_number_of_queries(
    big_inventory, group_a, client_a, django_assert_max_num_queries
):
    client_a.get(f"/images/?group={group_a.pk}")  # warm up templates and the URL resolver
    with django_assert_max_num_queries(15):
        page = client_a.get(f"/images/?group={group_a.pk}&sort=-size&q=image-00")
    assert page.status_code == 200 and "image-0099" in page.content.decode()
    with django_assert_max_num_queries(15):
        body = client_a.get(f"/api/v1/images/?group={group_a.pk}&limit=50").json()
    assert body["count"] == ROWS and len(body["results"][0]["cells"]) == REPOS
    with django_assert_max_num_queries(15):
        assert client_a.get(f"/images/conflicts/?group={group_a.pk}").status_code == 200


def test_adding_a_repo_asks_for_its_first_poll(group_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        repo = offline_repo(group_a, 99)
        repo.save()
    assert RepoInventory.objects.get(pk=repo.pk).refresh_requested_at is not None
    assert request_refresh([repo.pk, 123456]) == 1
