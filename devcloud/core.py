"""``up`` and the ``Devcloud`` handle: the whole devcloud, start to finish.

``up`` is ordered for a 2-core CI machine: every Keystone and Glance is prepared (database,
keys) and started in parallel threads, since each spends seconds importing; only the REST set-up
(catalog, projects, users, application credentials) waits until its Keystone answers. Any failure
stops everything started so far before the error propagates, so a failed ``up`` leaves no process.
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import clouds_yaml, ec2, glance, gunicorn, identity, keystone, pki, processes
from .errors import DevcloudError
from .state import STATE_FILE, Service, State
from .venv import ensure_venv

CLOUDS_YAML = "clouds.yaml"
ADMIN_CLOUDS_YAML = "admin-clouds.yaml"
# Test hook: name a service (``keystone-1``, ``devcloud-2``) to make it fail to start, so the
# clean-up after a half-done ``up`` can be tested. It starts once its Keystone answers, so
# something is always running to clean up when it fails.
BREAK_ENV = "GLINT_DEVCLOUD_BREAK"
BROKEN_APP = "devcloud_broken_on_purpose:application"


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def up(
    directory: str | os.PathLike,
    clouds: int = 1,
    keystones: int = 1,
    projects_per_cloud: int = 1,
    tls: bool = False,
    sha256_clouds=(),
    token_expiration: int | None = None,
    web_download_ports=(),
    with_ec2: bool = False,
    log=_log,
) -> Devcloud:
    """Start a devcloud in ``directory`` and return its handle.

    Args:
        directory: where configs, databases, stores, logs, ``clouds.yaml`` and ``state.json`` go.
        clouds: how many Glances (cloud ``devcloud-I`` is region ``devcloud-I``).
        keystones: how many Keystones; cloud I uses Keystone ((I-1) % keystones) + 1.
        projects_per_cloud: projects (each with its own user and application credential).
        tls: serve every endpoint over HTTPS, signed by a CA of this devcloud's own.
        sha256_clouds: indexes of the clouds whose Glance hashes with sha256, not sha512.
        token_expiration: Keystone ``[token] expiration`` in seconds (Keystone's default: 3600).
        web_download_ports: restrict web-download to these ports (default: any port on loopback).
        with_ec2: also start the EC2 peer (``devcloud/ec2.py``); with ``clouds=0`` and
            ``keystones=0`` it is the only service.

    Raises:
        DevcloudError: bad arguments, a devcloud already running there, or a service that did
            not come up (the message carries its log tail). Nothing is left running.
    """
    directory = Path(directory).resolve()
    sha256_clouds = {int(i) for i in sha256_clouds}
    openstack_only = not (with_ec2 and clouds == 0 and keystones == 0)
    if openstack_only and (clouds < 1 or keystones < 1 or projects_per_cloud < 1):
        raise DevcloudError("--clouds, --keystones and --projects-per-cloud must be at least 1")
    if keystones > clouds:
        raise DevcloudError(f"{keystones} Keystones for {clouds} clouds: some would serve nobody")
    if not sha256_clouds <= set(range(1, clouds + 1)):
        raise DevcloudError(f"--sha256-cloud {sorted(sha256_clouds)} outside 1..{clouds}")
    if token_expiration is not None and token_expiration < 1:
        raise DevcloudError("--token-expiration must be at least 1 second")
    _clear_directory(directory)

    state = State(
        dir=str(directory),
        venv=str(ensure_venv(log)) if clouds else "",
        tls=tls,
        token_expiration=token_expiration,
        projects_per_cloud=projects_per_cloud,
    )
    try:
        _up(state, clouds, keystones, sha256_clouds, tuple(web_download_ports), with_ec2, log)
    except BaseException:
        log("devcloud: up failed; stopping what it started")
        _teardown(state)
        raise
    return Devcloud(directory)


def _clear_directory(directory: Path) -> None:
    """Refuse a directory with a running devcloud; clear what a stopped one left."""
    if (directory / STATE_FILE).exists():
        old = State.load(directory)
        running = [s.name for s in old.services if processes.alive(s.pid)]
        if running:
            raise DevcloudError(
                f"a devcloud is running in {directory} ({', '.join(running)}); "
                f"run `python -m devcloud down --dir {directory}` first"
            )
        for svc in old.services:
            shutil.rmtree(svc.home, ignore_errors=True)
    for name in ("logs", "pki", STATE_FILE, CLOUDS_YAML, ADMIN_CLOUDS_YAML, ec2.EC2_JSON):
        path = directory / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    directory.mkdir(parents=True, exist_ok=True)


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (held open together, so none repeats)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def _up(
    state: State,
    clouds: int,
    keystones: int,
    sha256_clouds: set[int],
    web_download_ports: tuple[int, ...],
    with_ec2: bool,
    log,
) -> None:
    directory = Path(state.dir)
    if state.tls:
        files = pki.create_pki(directory / "pki")
        state.ca_file, state.cert_file, state.key_file = (
            str(files.ca_file),
            str(files.cert_file),
            str(files.key_file),
        )
    ports = _free_ports(keystones + clouds + int(with_ec2))
    admin_passwords, service_passwords = {}, {}
    for k in range(1, keystones + 1):
        svc = keystone.new_service(state, k, ports.pop(0))
        keystone.write_config(state, svc)
        admin_passwords[svc.name] = identity.new_password()
        state.services.append(svc)
    for i in range(1, clouds + 1):
        ks = state.service(f"keystone-{(i - 1) % keystones + 1}")
        svc = glance.new_service(
            state, i, ports.pop(0), ks.index, "sha256" if i in sha256_clouds else "sha512"
        )
        service_passwords[svc.name] = identity.new_password()
        glance.write_config(state, svc, ks, service_passwords[svc.name], web_download_ports)
        state.services.append(svc)
    if with_ec2:
        state.services.append(ec2.new_service(state, ports.pop(0)))
    broken = os.environ.get(BREAK_ENV)
    if broken:
        state.service(broken).argv[-1] = BROKEN_APP
    state.save()

    log(
        f"devcloud: starting {keystones} Keystone(s), {clouds} Glance(s)"
        f"{' and an EC2' if with_ec2 else ''} in {directory}"
    )
    abort = threading.Event()
    ready = {svc.name: threading.Event() for svc in state.services}

    def bring_up(svc: Service) -> None:
        try:
            if svc.kind == "keystone":
                keystone.prepare(state, svc, admin_passwords[svc.name], abort)
            elif svc.kind == "glance":
                glance.prepare(state, svc, abort)
                if svc.name == broken:  # see BREAK_ENV
                    ks = state.keystone_of(svc)
                    while not ready[ks.name].wait(0.2):
                        if abort.is_set():
                            return
            if abort.is_set():
                return
            _start(state, svc, abort)
            ready[svc.name].set()
        except BaseException:
            abort.set()
            raise

    _run_all(bring_up, state.services, abort)
    if with_ec2:
        ec2.configure(state, state.service(ec2.SERVICE_NAME))

    log("devcloud: creating regions, catalog, projects, users and application credentials")
    results = {}

    def configure(ks: Service) -> None:
        glances = [g for g in state.glances() if g.keystone == ks.index]
        results[ks.name] = _configure_identity(
            state, ks, admin_passwords[ks.name], glances, service_passwords
        )

    _run_all(configure, state.keystones())

    clouds_entries, admin_entries = {}, {}
    for g in state.glances():  # in cloud order, whichever Keystone finished first
        users, admins = results[state.keystone_of(g).name]
        clouds_entries.update(users[g.name])
        admin_entries.update(admins[g.name])
    _run_all(lambda g: _check_glance(state, g, clouds_entries[g.name]), state.glances())

    clouds_yaml.write(directory / ADMIN_CLOUDS_YAML, admin_entries)
    clouds_yaml.write(directory / CLOUDS_YAML, clouds_entries)
    state.complete = True
    state.save()


def _run_all(func, items, abort: threading.Event | None = None) -> None:
    """Run ``func`` on every item in parallel threads; re-raise the first failure.

    On a failure (or Ctrl-C) ``abort`` is set and every thread is waited for before the error
    propagates, so no thread can spawn a service after the caller started tearing down.
    """
    pool = ThreadPoolExecutor(max_workers=max(1, len(items)))
    try:
        futures = [pool.submit(func, item) for item in items]
        for future in futures:
            future.result()
    except BaseException:
        if abort is not None:
            abort.set()
        raise
    finally:
        pool.shutdown(wait=True)


def _start(state: State, svc: Service, abort: threading.Event | None = None) -> None:
    """Spawn the service, record its pid, and wait until it answers."""
    svc.pid = processes.spawn(
        svc.argv, processes.service_env(svc.env), Path(svc.log_file), Path(svc.cwd)
    )
    state.save()
    processes.wait_until_answers(
        svc.name, svc.pid, svc.probe_url, Path(svc.log_file), state.ca_file, abort=abort
    )


def _configure_identity(
    state: State,
    ks: Service,
    admin_password: str,
    glances: list[Service],
    service_passwords: dict[str, str],
):
    """Catalog, service users, projects, users and application credentials for ``glances``.

    Returns ``(users, admins)``: per Glance name, its clouds.yaml and admin-clouds.yaml entries.
    """
    auth_url = keystone.auth_url(ks)
    verify = state.ca_file or True
    admin = identity.KeystoneClient(
        auth_url, keystone.ADMIN_USER, admin_password, keystone.ADMIN_PROJECT, verify
    )
    identity_service = admin.ensure_service("identity", "keystone")
    image_service = admin.ensure_service("image", "glance")
    service_project = admin.create_project(glance.SERVICE_PROJECT)
    users, admins = {}, {}
    for g in glances:
        region = g.name
        admin.create_region(region)
        admin.create_endpoints(identity_service, region, auth_url)
        admin.create_endpoints(image_service, region, g.url)
        # keystonemiddleware validates user tokens as this user: Keystone's policy lets the
        # `service` role do that.
        user_id = admin.create_user(
            glance.service_user(g), service_passwords[g.name], service_project
        )
        admin.grant("service", user_id, service_project)
        users[g.name] = {}
        for p in range(1, state.projects_per_cloud + 1):
            project = region if p == 1 else f"{region}-p{p}"
            project_id = admin.create_project(project)
            username, password = f"{project}-user", identity.new_password()
            user_id = admin.create_user(username, password, project_id)
            for role in ("member", "reader"):
                admin.grant(role, user_id, project_id)
            user = identity.KeystoneClient(auth_url, username, password, project, verify)
            cred_id, secret = user.create_application_credential(f"{project}-appcred")
            users[g.name][project] = clouds_yaml.password_entry(
                auth_url, region, username, password, project, state.ca_file
            )
            users[g.name][f"{project}-appcred"] = clouds_yaml.appcred_entry(
                auth_url, region, cred_id, secret, state.ca_file
            )
        admins[g.name] = {
            f"{region}-admin": clouds_yaml.password_entry(
                auth_url,
                region,
                keystone.ADMIN_USER,
                admin_password,
                keystone.ADMIN_PROJECT,
                state.ca_file,
            )
        }
    return users, admins


def _check_glance(state: State, g: Service, entry: dict) -> None:
    """Prove the Glance accepts a project token: keystonemiddleware reaches its Keystone."""
    auth = entry["auth"]
    user = identity.KeystoneClient(
        auth["auth_url"],
        auth["username"],
        auth["password"],
        auth["project_name"],
        state.ca_file or True,
    )
    user.authenticate()
    response = user.send("GET", f"{g.url}/v2/images", headers={"X-Auth-Token": user.token})
    if response.status_code != 200:
        raise DevcloudError(
            f"{g.name} refused a valid token from keystone-{g.keystone}: "
            f"{response.status_code} {response.text[:300]}. Last lines of {g.log_file}:\n"
            + processes.log_tail(Path(g.log_file))
        )


def _teardown(state: State) -> None:
    """Stop every service of ``state``, all at once."""
    try:
        processes.stop_groups([svc.pid for svc in state.services])
    finally:
        for svc in state.services:
            if not processes.alive(svc.pid):
                svc.pid = None
        if Path(state.dir).exists():
            state.save()


class Devcloud:
    """A running (or stopped) devcloud, found by its directory.

    Every method re-reads ``state.json``, so several processes (a test session and a CLI) can
    stop and start services of the same devcloud.

    Cloud names are those of ``clouds.yaml`` (``devcloud-1``, ``devcloud-1-p2``,
    ``devcloud-1-appcred`` …) or ``admin-clouds.yaml`` (``devcloud-1-admin``); where a method
    acts on a service, it is the Glance of that cloud's region.
    """

    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory).resolve()
        self.clouds_yaml = self.dir / CLOUDS_YAML
        self.admin_clouds_yaml = self.dir / ADMIN_CLOUDS_YAML
        State.load(self.dir)  # fail early on a directory without a devcloud

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Devcloud:
        return cls(directory)

    @property
    def state(self) -> State:
        return State.load(self.dir)

    @property
    def ca_file(self) -> Path | None:
        ca = self.state.ca_file
        return Path(ca) if ca else None

    @property
    def token_expiration(self) -> int | None:
        """Keystone's token lifetime in seconds, if ``up`` set one."""
        return self.state.token_expiration

    def cloud_names(self) -> list[str]:
        """The clouds of ``clouds.yaml``, in order (the admin clouds are not included)."""
        return list(clouds_yaml.read(self.clouds_yaml))

    def admin_cloud_names(self) -> list[str]:
        return list(clouds_yaml.read(self.admin_clouds_yaml))

    def glance_names(self) -> list[str]:
        """One name per Glance: ``devcloud-1`` …"""
        return [g.name for g in self.state.glances()]

    def cloud_config(self, name: str) -> dict:
        """The clouds.yaml (or admin-clouds.yaml) entry of ``name``, a copy."""
        for path in (self.clouds_yaml, self.admin_clouds_yaml):
            entries = clouds_yaml.read(path)
            if name in entries:
                return copy.deepcopy(entries[name])
        raise DevcloudError(f"no cloud {name!r} in {self.clouds_yaml} or {self.admin_clouds_yaml}")

    def _glance(self, name: str, state: State | None = None) -> Service:
        state = state or self.state
        for g in state.glances():
            if g.name == name:
                return g
        region = self.cloud_config(name)["region_name"]
        return state.service(region)

    def glance_url(self, name: str) -> str:
        return self._glance(name).url

    def keystone_url(self, name: str) -> str:
        """The cloud's auth URL (``…/v3``), as in clouds.yaml."""
        state = self.state
        return keystone.auth_url(state.keystone_of(self._glance(name, state)))

    def glance_requests(self, name: str) -> list[str]:
        """The request lines (``GET /v2/images?…``) Glance ``name`` has received so far, oldest
        first, from its access log."""
        return gunicorn.requests_received(self._glance(name))

    def keystone_requests(self, name: str) -> list[str]:
        """The request lines (``POST /v3/auth/tokens``…) the Keystone of cloud ``name`` has
        received so far, oldest first: its own clients' and its Glances' token checks."""
        return gunicorn.requests_received(self.state.keystone_of(self._glance(name)))

    def store_dir(self, name: str) -> Path:
        """The Glance file store: image files are named by image id."""
        return Path(self._glance(name).store_dir)

    def glance_database(self, name: str) -> Path:
        """The Glance's SQLite database, for benchmarks that need image records in bulk."""
        return Path(self._glance(name).home) / "glance.sqlite"

    @property
    def ec2_peer(self) -> ec2.Ec2Peer:
        """The EC2 peer's endpoint, region and keys (``up(with_ec2=True)``)."""
        return ec2.Ec2Peer.load(self.dir)

    def hash_algo(self, name: str) -> str:
        return self._glance(name).hash_algo

    def pids(self) -> list[int]:
        """Process ids of the services that run now."""
        return [s.pid for s in self.state.services if s.pid and processes.alive(s.pid)]

    def running(self, name: str) -> bool:
        return processes.alive(self._glance(name).pid)

    def stop(self, name: str) -> None:
        """Stop the cloud's Glance (its port stays reserved in state.json for ``start``)."""
        state = self.state
        g = self._glance(name, state)
        processes.stop_group(g.pid)
        g.pid = None
        state.save()

    @contextlib.contextmanager
    def frozen(self, name: str) -> Iterator[None]:
        """Freeze the cloud's Glance (SIGSTOP to its process group) for the block: its sockets
        stay open but nothing is read or sent, as a cloud that hangs mid-transfer. SIGCONT
        after, whatever happens in the block."""
        pgid = self._glance(name).pid
        os.killpg(pgid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.killpg(pgid, signal.SIGCONT)

    def start(self, name: str) -> None:
        """Start the cloud's Glance again on the same port; return once it answers."""
        state = self.state
        g = self._glance(name, state)
        if processes.alive(g.pid):
            return
        try:
            _start(state, g)
        except BaseException:
            processes.stop_group(g.pid)
            g.pid = None
            state.save()
            raise

    def down(self) -> None:
        """Stop every service. Idempotent; the directory and its files stay for inspection."""
        _teardown(self.state)

    def __repr__(self) -> str:
        return f"Devcloud({str(self.dir)!r})"


def down(directory: str | os.PathLike) -> None:
    """Stop every service recorded in ``directory``, even of an ``up`` that failed."""
    _teardown(State.load(directory))
