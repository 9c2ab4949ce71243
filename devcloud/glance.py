"""One real Glance: its own SQLite database and file store, served by gunicorn.

Each Glance is a cloud region of its own (``devcloud-I``) behind one of the Keystones, and
authenticates tokens with keystonemiddleware (``[paste_deploy] flavor = keystone``) as its own
service user. The settings here are the ones Glint's tests need:

- ``hashing_algorithm``: sha512 (Glance's default) or sha256, so the md5 fallback path runs
  when a source and a target publish different ``os_hash_algo``.
- ``web-download`` import: Glance refuses loopback and link-local addresses unless the host is
  in ``[import_filtering_opts] allowed_hosts``; ports are filtered by ``allowed_ports``
  (default ``[80, 443]``). An *empty* ``allowed_ports`` lets every port through (then only
  ``disallowed_ports``, empty by default, applies: ``glance/common/utils.py``,
  ``get_validated_address``), so tests can serve images from any free loopback port. oslo.config
  list values need the brackets.
- The reserved ``os_glance_staging_store`` and ``os_glance_tasks_store`` directories, which the
  interoperable import flow (glance-direct, web-download) requires with ``enabled_backends``.
"""

from __future__ import annotations

from pathlib import Path

from . import processes, sqlite
from .gunicorn import access_log, gunicorn_argv
from .state import Service, State

WSGI_MODULE = "devcloud_glance_wsgi"
WSGI_SHIM = f'''\
"""Written by devcloud: Glance's application, its writer transactions beginning IMMEDIATE."""
import {sqlite.HOOK_MODULE}  # noqa: F401

from glance.wsgi.api import application  # noqa: E402,F401
'''
STORE = "fs"
SERVICE_PROJECT = "service"


def new_service(
    state: State, index: int, port: int, keystone_index: int, hash_algo: str
) -> Service:
    home = Path(state.dir) / f"glance-{index}"
    scheme = "https" if state.tls else "http"
    url = f"{scheme}://127.0.0.1:{port}"
    return Service(
        name=f"devcloud-{index}",
        kind="glance",
        index=index,
        port=port,
        url=url,
        probe_url=f"{url}/versions",
        home=str(home),
        log_file=str(Path(state.dir) / "logs" / f"glance-{index}.log"),
        keystone=keystone_index,
        hash_algo=hash_algo,
        store_dir=str(home / "images"),
        staging_dir=str(home / "staging"),
        tasks_dir=str(home / "tasks"),
    )


def service_user(svc: Service) -> str:
    """The Keystone user this Glance validates tokens as."""
    return f"glance-{svc.index}"


def write_config(
    state: State,
    svc: Service,
    keystone: Service,
    service_password: str,
    web_download_ports: tuple[int, ...] = (),
) -> Path:
    """Write ``glance-api.conf`` into the Glance's own config dir; fill in how to start it."""
    home = Path(svc.home)
    for directory in (
        home,
        Path(svc.store_dir),
        Path(svc.staging_dir),
        Path(svc.tasks_dir),
        home / "locks",
        home / "cache",
    ):
        directory.mkdir(parents=True, exist_ok=True)
    venv = Path(state.venv)
    cafile = f"cafile = {state.ca_file}\n" if state.ca_file else ""
    ports = ", ".join(str(p) for p in web_download_ports)
    conf = home / "glance-api.conf"
    conf.write_text(f"""\
[DEFAULT]
use_stderr = true
public_endpoint = {svc.url}
worker_self_reference_url = {svc.url}
enabled_backends = {STORE}:file
hashing_algorithm = {svc.hash_algo}
enabled_import_methods = [glance-direct, web-download]
image_cache_dir = {home}/cache

[database]
connection = {sqlite.connection_url(home / "glance.sqlite")}

[glance_store]
default_backend = {STORE}

[{STORE}]
filesystem_store_datadir = {svc.store_dir}

[os_glance_staging_store]
filesystem_store_datadir = {svc.staging_dir}

[os_glance_tasks_store]
filesystem_store_datadir = {svc.tasks_dir}

[import_filtering_opts]
allowed_schemes = [http, https]
allowed_hosts = [127.0.0.1, localhost]
allowed_ports = [{ports}]

[paste_deploy]
flavor = keystone
config_file = {venv}/etc/glance/glance-api-paste.ini

[keystone_authtoken]
www_authenticate_uri = {keystone.url}/v3
auth_url = {keystone.url}/v3
auth_type = password
user_domain_name = Default
project_domain_name = Default
project_name = {SERVICE_PROJECT}
username = {service_user(svc)}
password = {service_password}
{cafile}
[oslo_concurrency]
lock_path = {home}/locks
""")
    (home / f"{WSGI_MODULE}.py").write_text(WSGI_SHIM)
    sqlite.write_hook(home)
    svc.argv = gunicorn_argv(
        venv,
        f"{WSGI_MODULE}:application",
        svc.port,
        cert_file=state.cert_file,
        key_file=state.key_file,
        pythonpath=str(home),
        access_log=str(access_log(svc)),
    )
    svc.env = {"OS_GLANCE_CONFIG_DIR": str(home)}
    svc.cwd = str(home)
    return conf


def prepare(state: State, svc: Service, abort=None) -> None:
    """Create the Glance database schema."""
    argv = [
        str(Path(state.venv) / "bin" / "python"),
        "-c",
        "import sys; from glance.cmd.manage import main; sys.argv[0] = 'glance-manage'; "
        "sys.exit(main())",
        "--config-file",
        str(Path(svc.home) / "glance-api.conf"),
        "db_sync",
    ]
    processes.run(
        argv,
        processes.service_env(svc.env),
        Path(svc.log_file),
        Path(svc.home),
        what=f"{svc.name}: glance-manage db_sync",
        abort=abort,
    )
    sqlite.use_wal(Path(svc.home) / "glance.sqlite")
