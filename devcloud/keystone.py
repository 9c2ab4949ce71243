"""One real Keystone: SQLite, fernet tokens, served by gunicorn.

Set-up is what a deployment guide does by hand: ``keystone-manage db_sync``, ``fernet_setup``,
``credential_setup`` (application credentials store their secrets encrypted with those keys) and
``bootstrap`` (the ``admin`` user, project and role, plus the ``member``/``reader`` roles).
Projects, users, regions and the catalog are created afterwards through the REST API
(``identity.py``), like any operator would.

Keystone's WSGI entry point parses ``sys.argv`` with oslo.config, and under gunicorn that is
gunicorn's own command line: the tiny module in ``WSGI_SHIM`` empties ``sys.argv[1:]`` first, and
imports the SQLite hook that lets it serve several requests at once (``sqlite.py``).
"""

from __future__ import annotations

import grp
import json
import os
import pwd
from pathlib import Path

from . import processes, sqlite
from .gunicorn import access_log, gunicorn_argv
from .state import Service, State

WSGI_MODULE = "devcloud_keystone_wsgi"
WSGI_SHIM = f'''\
"""Written by devcloud: keystone.wsgi.api parses sys.argv, which under gunicorn is gunicorn's."""
import sys

import {sqlite.HOOK_MODULE}  # noqa: F401

del sys.argv[1:]
from keystone.wsgi.api import application  # noqa: E402,F401
'''
ADMIN_USER = "admin"
ADMIN_PROJECT = "admin"


def new_service(state: State, index: int, port: int) -> Service:
    home = Path(state.dir) / f"keystone-{index}"
    scheme = "https" if state.tls else "http"
    url = f"{scheme}://127.0.0.1:{port}"
    return Service(
        name=f"keystone-{index}",
        kind="keystone",
        index=index,
        port=port,
        url=url,
        probe_url=f"{url}/v3",
        home=str(home),
        log_file=str(Path(state.dir) / "logs" / f"keystone-{index}.log"),
    )


def auth_url(svc: Service) -> str:
    return f"{svc.url}/v3"


def write_config(state: State, svc: Service) -> Path:
    """Write ``keystone.conf`` and the WSGI shim; fill in how to start the service."""
    home = Path(svc.home)
    home.mkdir(parents=True, exist_ok=True)
    token = ""
    if state.token_expiration is not None:
        token = f"expiration = {state.token_expiration}\n"
    conf = home / "keystone.conf"
    conf.write_text(f"""\
[DEFAULT]
use_stderr = true
public_endpoint = {svc.url}/

[database]
connection = {sqlite.connection_url(home / "keystone.sqlite")}

[identity]
# bcrypt's minimum cost: every user, login and application credential hashes a secret, and at
# the default cost of 12 that alone adds seconds to each `up`. Never do this in production.
password_hash_rounds = 4

[token]
provider = fernet
{token}
[fernet_tokens]
key_repository = {home}/fernet-keys

[fernet_receipts]
key_repository = {home}/fernet-keys

[credential]
key_repository = {home}/credential-keys
""")
    (home / f"{WSGI_MODULE}.py").write_text(WSGI_SHIM)
    sqlite.write_hook(home)
    svc.argv = gunicorn_argv(
        Path(state.venv),
        f"{WSGI_MODULE}:application",
        svc.port,
        cert_file=state.cert_file,
        key_file=state.key_file,
        pythonpath=str(home),
        access_log=str(access_log(svc)),
    )
    svc.env = {"OS_KEYSTONE_CONFIG_FILES": str(conf)}
    svc.cwd = str(home)
    return conf


# All four keystone-manage steps in one interpreter: importing keystone takes ~3 s, the steps
# themselves well under one. oslo.config refuses a second parse unless CONF is cleared first.
PREPARE_SCRIPT = """\
import json
import sys
import keystone.conf
from keystone.cmd.manage import main

config_file, steps = sys.argv[1], json.loads(sys.argv[2])
for args in steps:
    print("==== devcloud: keystone-manage", args[0], flush=True)
    keystone.conf.CONF.clear()
    sys.argv = ["keystone-manage", "--config-file", config_file, *args]
    main()
"""


def prepare(state: State, svc: Service, admin_password: str, abort=None) -> None:
    """Create the database, the fernet and credential key repositories and the bootstrap admin.

    ``bootstrap`` also creates the ``reader``/``member``/``manager``/``admin``/``service`` roles
    (each implying the previous one) and the ``Default`` domain.
    """
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    owner = ["--keystone-user", user, "--keystone-group", group]
    steps = [
        ["db_sync"],
        ["fernet_setup", *owner],
        ["credential_setup", *owner],
        [
            "bootstrap",
            "--bootstrap-username",
            ADMIN_USER,
            "--bootstrap-password",
            admin_password,
            "--bootstrap-project-name",
            ADMIN_PROJECT,
            "--bootstrap-role-name",
            "admin",
        ],
    ]
    argv = [
        str(Path(state.venv) / "bin" / "python"),
        "-c",
        PREPARE_SCRIPT,
        str(Path(svc.home) / "keystone.conf"),
        json.dumps(steps),
    ]
    processes.run(
        argv,
        processes.service_env(svc.env),
        Path(svc.log_file),
        Path(svc.home),
        what=f"{svc.name}: keystone-manage db_sync/fernet_setup/credential_setup/bootstrap",
        abort=abort,
    )
    sqlite.use_wal(Path(svc.home) / "keystone.sqlite")
