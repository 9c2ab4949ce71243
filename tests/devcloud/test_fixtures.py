"""The session fixtures deliver what the rest of the suite relies on (devcloud/pytest_plugin.py)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import openstack.config
import openstack.connection
import pytest
import requests

from devcloud.identity import KeystoneClient
from devcloud.pytest_plugin import TLS_TOKEN_EXPIRATION

pytestmark = pytest.mark.devcloud


def connect(dc, cloud: str):
    path = dc.admin_clouds_yaml if cloud.endswith("-admin") else dc.clouds_yaml
    region = openstack.config.OpenStackConfig(config_files=[str(path)], load_envvars=False).get_one(
        cloud=cloud
    )
    return openstack.connection.Connection(config=region)


def wait_for_status(conn, image_id: str, statuses=("active", "killed"), timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        image = conn.image.get_image(image_id)
        if image.status in statuses or time.monotonic() > deadline:
            return image
        time.sleep(0.3)


def test_layout(devcloud):
    names = devcloud.cloud_names()
    for i in (1, 2, 3):
        for project in (f"devcloud-{i}", f"devcloud-{i}-p2"):
            assert project in names and f"{project}-appcred" in names
            entry = devcloud.cloud_config(project)
            assert entry["region_name"] == f"devcloud-{i}"
            assert entry["auth"]["project_name"] == project
            assert "cacert" not in entry
    assert devcloud.admin_cloud_names() == [
        "devcloud-1-admin",
        "devcloud-2-admin",
        "devcloud-3-admin",
    ]
    assert devcloud.ca_file is None
    # clouds 1 and 3 share keystone-1, cloud 2 has keystone-2
    assert devcloud.keystone_url("devcloud-1") == devcloud.keystone_url("devcloud-3-p2")
    assert devcloud.keystone_url("devcloud-1") != devcloud.keystone_url("devcloud-2")
    assert [devcloud.hash_algo(f"devcloud-{i}") for i in (1, 2, 3)] == [
        "sha512",
        "sha512",
        "sha256",
    ]
    assert len({devcloud.glance_url(f"devcloud-{i}") for i in (1, 2, 3)}) == 3
    assert devcloud.store_dir("devcloud-2-appcred").is_dir()
    assert devcloud.glance_url("devcloud-2").startswith("http://127.0.0.1:")


def test_many_first_logins_at_once_all_succeed(devcloud):
    """A day's first login writes the user's ``last_active_at``; logins at once must wait for the
    write lock, not fail with "database is locked" (devcloud/sqlite.py)."""
    keystone = devcloud.state.keystones()[0]
    users = [
        devcloud.cloud_config(c)["auth"]
        for c in devcloud.cloud_names()
        if not c.endswith("-appcred") and devcloud.keystone_url(c) == f"{keystone.url}/v3"
    ]
    database = f"{keystone.home}/keystone.sqlite"

    def login(auth: dict) -> None:
        KeystoneClient(
            auth["auth_url"], auth["username"], auth["password"], auth["project_name"]
        ).authenticate()

    for _ in range(3):
        with sqlite3.connect(database, timeout=30) as db:  # every login is a first one again
            db.execute("UPDATE user SET last_active_at = NULL")
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(login, users * 4))  # raises DevcloudError on any failed login


def test_many_image_updates_at_once_all_succeed(devcloud):
    """Glance reads an image and updates it in one transaction; updates at once must wait for
    the write lock, not fail with a 500 "database is locked" (devcloud/sqlite.py)."""
    conn = connect(devcloud, "devcloud-1")
    images = [
        conn.image.create_image(
            name=f"devcloud-test-{uuid.uuid4().hex[:8]}",
            disk_format="raw",
            container_format="bare",
            allow_duplicates=True,
        )
        for _ in range(16)
    ]

    def update(
        image,
    ) -> None:  # one image per thread: Glance answers 409 to racing updates of one image
        client = connect(devcloud, "devcloud-1")
        for round_ in range(5):
            client.image.update_image(image, devcloud_round=str(round_))

    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(update, images))  # an HTTP 500 raises here
    finally:
        for image in images:
            conn.image.delete_image(image.id)


@pytest.mark.parametrize("cloud", ["devcloud-1", "devcloud-3-p2-appcred"])
def test_upload_lands_in_store_with_the_glance_hash(devcloud, cloud):
    conn = connect(devcloud, cloud)
    data = os.urandom(256 * 1024)
    image = conn.image.create_image(
        name=f"devcloud-test-{uuid.uuid4().hex[:8]}",
        disk_format="raw",
        container_format="bare",
        data=data,
        allow_duplicates=True,
    )
    try:
        image = wait_for_status(conn, image.id)
        algo = devcloud.hash_algo(cloud)
        assert image.status == "active"
        assert image.hash_algo == algo
        assert image.hash_value == hashlib.new(algo, data).hexdigest()
        assert (devcloud.store_dir(cloud) / image.id).read_bytes() == data
    finally:
        conn.image.delete_image(image.id)


def test_admin_can_make_an_image_public(devcloud):
    user, admin = connect(devcloud, "devcloud-2"), connect(devcloud, "devcloud-2-admin")
    image = user.image.create_image(
        name=f"devcloud-test-{uuid.uuid4().hex[:8]}",
        disk_format="raw",
        container_format="bare",
        data=b"\0" * 4096,
        allow_duplicates=True,
    )
    try:
        admin.image.update_image(image.id, visibility="public")
        assert user.image.get_image(image.id).visibility == "public"
        seen = {i.id for i in connect(devcloud, "devcloud-2-p2").image.images()}
        assert image.id in seen
    finally:
        admin.image.delete_image(image.id)


@pytest.fixture
def loopback_http(tmp_path):
    """A plain HTTP server on a free loopback port, serving tmp_path."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("cloud", ["devcloud-1", "devcloud-3"])
def test_web_download_from_any_loopback_port(devcloud, cloud, loopback_http):
    root, base_url = loopback_http
    data = os.urandom(512 * 1024)
    (root / "image.raw").write_bytes(data)
    conn = connect(devcloud, cloud)
    assert "web-download" in conn.image.get_import_info().import_methods["value"]
    image = conn.image.create_image(
        name=f"devcloud-test-{uuid.uuid4().hex[:8]}",
        disk_format="raw",
        container_format="bare",
        allow_duplicates=True,
    )
    try:
        conn.image.import_image(image, method="web-download", uri=f"{base_url}/image.raw")
        image = wait_for_status(conn, image.id)
        assert image.status == "active", image.properties.get("os_glance_failed_import")
        assert image.checksum == hashlib.md5(data).hexdigest()
        algo = devcloud.hash_algo(cloud)
        assert image.hash_value == hashlib.new(algo, data).hexdigest()
    finally:
        conn.image.delete_image(image.id)


def test_tls_fixture(devcloud_tls):
    dc = devcloud_tls
    assert dc.ca_file and dc.ca_file.is_file()
    assert dc.token_expiration == TLS_TOKEN_EXPIRATION
    assert set(dc.cloud_names()) == {
        "devcloud-1",
        "devcloud-1-appcred",
        "devcloud-1-p2",
        "devcloud-1-p2-appcred",
    }
    entry = dc.cloud_config("devcloud-1")
    assert entry["cacert"] == str(dc.ca_file)
    assert entry["auth"]["auth_url"].startswith("https://127.0.0.1:")
    assert dc.glance_url("devcloud-1").startswith("https://127.0.0.1:")

    # Without the CA, TLS verification fails; with it, the catalog holds HTTPS endpoints only.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(dc.keystone_url("devcloud-1"), timeout=10)
    conn = connect(dc, "devcloud-1")
    catalog = conn.session.auth.get_access(conn.session).service_catalog.catalog
    urls = [e["url"] for service in catalog for e in service["endpoints"]]
    assert urls and all(url.startswith("https://") for url in urls)
    assert list(conn.image.images()) is not None  # Glance validated the token over TLS


def test_tls_tokens_expire(devcloud_tls):
    conn = connect(devcloud_tls, "devcloud-1")
    access = conn.session.auth.get_access(conn.session)
    lifetime = (access.expires - access.issued).total_seconds()
    # Keystone truncates issued_at to the second: up to one second less than configured.
    assert TLS_TOKEN_EXPIRATION - 1 <= lifetime <= TLS_TOKEN_EXPIRATION
