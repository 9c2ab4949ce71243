"""Deployment configuration: environment variables over an optional TOML file over defaults.

Settings are read once, checked, and handed to ``glint.settings``. Nothing else reads the
environment directly, so a newcomer finds every knob here. Each knob has one line in ``DEFAULTS``.

Precedence: ``GLINT_<NAME>`` environment variable, then the TOML file named by ``GLINT_CONFIG``
(keys are the lower-case names), then the default.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cryptography.fernet import Fernet

DEFAULTS: dict[str, object] = {
    "data_dir": "~/.local/share/glint",
    "database_url": "",  # empty: SQLite in the data directory
    "debug": False,
    "allowed_hosts": ["*"],
    "trusted_proxies": [],  # addresses whose X-SSL-Client-* headers are believed
    "poll_interval": 300,  # seconds between inventory refreshes of one repo
    "poll_timeout": 60,  # seconds one repo's listing may take before it counts as failed
    "poll_workers": 8,  # repos polled at once
    # who runs jobs: "embedded" (threads of glint serve) or "celery" (glint worker)
    "job_runner": "embedded",
    "broker_url": "",  # the Celery broker when job_runner is "celery", e.g. redis://127.0.0.1:6379/0
    "job_workers": 4,  # jobs run at once by the embedded dispatcher
    "job_per_repo_limit": 2,  # running jobs that write to one repo at once
    "job_per_source_limit": 2,  # running jobs that read from one repo at once
    "job_retry_limit": 5,  # tries of one target before a transient error fails it for good
    "job_retry_base": 30,  # seconds before the first automatic retry; doubles with each try
    "job_retry_max": 1800,  # longest wait between automatic retries (seconds)
    "job_lease_seconds": 60,  # a worker silent this long has died: its job is queued again
    "job_orphan_grace": 900,  # seconds an unclaimed Glint-made queued/saving image is left alone
    "cache_dir": "",  # the content cache (spool, uploads); empty: <data_dir>/cache
    "cache_quota_bytes": 50 * 2**30,  # the most the content cache may hold
    "upload_max_bytes": 100 * 2**30,  # largest image accepted by upload or web link (0: no limit)
    "upload_resume_hours": 24,  # an interrupted upload may be resumed this long; then it fails
    # address ranges web links may reach although not public, e.g. a site mirror
    "fetch_allow_cidrs": [],
    "cloud_pull": True,  # let a target cloud with web-download fetch a checksummed web link itself
    "cloud_pull_hosts": [],  # web-link host names the clouds may fetch from themselves
    "cloud_allow_cidrs": [],  # private ranges cloud endpoints may be in, e.g. 10.0.0.0/8
    "cloud_dev_loopback": [],  # DEVELOPMENT ONLY: loopback addresses cloud endpoints may have
    "tls_cert": "",  # server certificate (PEM) for `glint serve`
    "tls_key": "",
    "tls_client_ca": "",  # CA file that client certificates must chain to
    "tls_client_ca_dir": "",  # IGTF-style CA directory (<hash>.0, <hash>.r0)
    "listen": "127.0.0.1",  # address `glint serve` binds (0.0.0.0 or :: to accept remote clients)
    "port": 8443,
    "workers": 0,  # `glint serve` worker processes; 0: the number of cores
    "log_level": "INFO",
    "log_format": "plain",  # or "json": one JSON object a line (glint.logs)
    # API calls per person (n/second|minute|hour|day); "off" for none. 300/minute is 5/s, a fifth
    # or less of what one `glint serve` worker answers (README "Deployment"), so one person's
    # script cannot take the whole server.
    "api_rate_limit": "300/minute",
    "token_issuers": "",  # bearer-token issuers: a TOML array of tables, or JSON in the environment
}


class ConfigError(Exception):
    """A configuration value is missing or malformed; the message names it."""


@dataclass(frozen=True)
class DatabaseConfig:
    engine: str
    name: str
    user: str = ""
    password: str = ""
    host: str = ""
    port: str = ""


def _coerce(name: str, value: object, default: object) -> object:
    """Turn an environment string into the type of the default."""
    if not isinstance(value, str):
        return value
    if isinstance(default, bool):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"GLINT_{name.upper()} must be true or false, not {value!r}")
    if isinstance(default, int):
        try:
            return int(value)
        except ValueError:
            raise ConfigError(
                f"GLINT_{name.upper()} must be a whole number, not {value!r}"
            ) from None
    if isinstance(default, list):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def load(environ: os._Environ | dict | None = None) -> dict[str, object]:
    """Return the effective configuration as a plain dict of ``DEFAULTS`` keys."""
    environ = os.environ if environ is None else environ
    file_values: dict[str, object] = {}
    config_file = environ.get("GLINT_CONFIG")
    if config_file:
        try:
            file_values = tomllib.loads(Path(config_file).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read GLINT_CONFIG {config_file}: {exc}") from None
        unknown = set(file_values) - set(DEFAULTS)
        if unknown:
            raise ConfigError(f"unknown setting(s) in {config_file}: {', '.join(sorted(unknown))}")
    values = {}
    for name, default in DEFAULTS.items():
        raw = environ.get(f"GLINT_{name.upper()}", file_values.get(name, default))
        values[name] = _coerce(name, raw, default)
    values["data_dir"] = str(Path(str(values["data_dir"])).expanduser().resolve())
    return values


def _list(value: object) -> list[str]:
    items = value if isinstance(value, list) else str(value).split(",")
    return [text for text in (str(item).strip() for item in items) if text]


def _ranges(name: str, value: object) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The setting ``name`` as address ranges (``10.1.2.0/24``, ``fd00::/8``, ``127.0.0.1``)."""
    networks = []
    for cidr in _list(value):
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            raise ConfigError(f"GLINT_{name.upper()}: {cidr!r} is not an address range") from None
    return networks


#: Kinds of address a web link never reaches, whatever fetch_allow_cidrs says.
_NEVER_FETCHED = ("link-local", "multicast", "unspecified", "reserved")
#: Kinds of address a cloud endpoint never has, whatever cloud_allow_cidrs says.
_NEVER_CLOUD = ("loopback", *_NEVER_FETCHED)


def fetch_allow_cidrs(value: object) -> list[str]:
    """``fetch_allow_cidrs`` checked: address ranges (``10.1.2.0/24``, ``fd00::/8``, loopback
    for a mirror on this machine), none that starts or ends in link-local (the clouds' metadata
    services), multicast, unspecified or reserved space: never fetched from, so such an entry
    would do nothing, or be a much broader allowance than meant."""
    _refuse_ranges_reaching("fetch_allow_cidrs", value, _NEVER_FETCHED, "web links")
    return _list(value)


def cloud_allow_cidrs(value: object) -> list[str]:
    """``cloud_allow_cidrs`` checked: address ranges, none that starts or ends in loopback,
    link-local, multicast, unspecified or reserved space (never allowed for a cloud)."""
    _refuse_ranges_reaching("cloud_allow_cidrs", value, _NEVER_CLOUD, "cloud endpoints")
    return _list(value)


def _refuse_ranges_reaching(name: str, value: object, kinds: tuple[str, ...], what: str) -> None:
    from glint.clouds.addresses import why_not_public

    for network in _ranges(name, value):
        for end in (network.network_address, network.broadcast_address):
            kind = why_not_public(end)
            if kind in kinds:
                hint = (
                    " (for a development cloud on this machine: GLINT_CLOUD_DEV_LOOPBACK)"
                    if kind == "loopback"
                    else ""
                )
                raise ConfigError(
                    f"GLINT_{name.upper()}: {network} reaches {kind} addresses "
                    f"({end}), which are never allowed for {what}{hint}"
                )


def cloud_dev_loopback(value: object) -> list[str]:
    """``cloud_dev_loopback`` checked: loopback addresses or ranges only (127.0.0.0/8, ::1)."""
    for network in _ranges("cloud_dev_loopback", value):
        if not (network.network_address.is_loopback and network.broadcast_address.is_loopback):
            raise ConfigError(
                f"GLINT_CLOUD_DEV_LOOPBACK takes loopback addresses only, not "
                f"{network} (private ranges go in GLINT_CLOUD_ALLOW_CIDRS)"
            )
    return _list(value)


_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*"
    r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$"
)


def cloud_pull_hosts(value: object) -> list[str]:
    """``cloud_pull_hosts`` checked: host names (lower case, no trailing dot), not addresses."""
    names = [name.lower().rstrip(".") for name in _list(value)]
    for name in names:
        if not _HOST_NAME.match(name) or re.match(r"^[0-9.]+$|^0x", name):
            raise ConfigError(
                f"GLINT_CLOUD_PULL_HOSTS: {name!r} is not a host name (links to an "
                f"address are pulled by the clouds without being listed)"
            )
    return names


JOB_RUNNERS = ("embedded", "celery")
BROKER_SCHEMES = ("redis", "rediss")


def job_runner(value: str) -> str:
    """``job_runner`` checked: one of :data:`JOB_RUNNERS`."""
    value = value.strip().lower()
    if value not in JOB_RUNNERS:
        raise ConfigError(
            f"GLINT_JOB_RUNNER must be one of {', '.join(JOB_RUNNERS)}, not {value!r}"
        )
    return value


def broker_url(value: str, runner: str) -> str:
    """``broker_url`` checked: a ``redis://`` or ``rediss://`` URL with a host, needed by the
    Celery runner. Errors show the URL redacted, since it may carry the broker's password."""
    value = value.strip()
    if not value:
        if runner == "celery":
            raise ConfigError(
                "GLINT_JOB_RUNNER=celery needs GLINT_BROKER_URL, e.g. redis://127.0.0.1:6379/0"
            )
        return ""
    parts = urlsplit(value)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    database = parts.path.lstrip("/")
    if (
        parts.scheme not in BROKER_SCHEMES
        or not parts.hostname
        or not port_ok
        or not (database.isdigit() or not database)
    ):
        raise ConfigError(
            f"GLINT_BROKER_URL must look like redis://[:password@]host[:port][/db] "
            f"(or rediss://), not {redact_url(value)!r}"
        )
    return value


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


RATE_LIMIT = re.compile(r"^\d+/(s|sec|second|m|min|minute|h|hour|d|day)$")
RATE_LIMIT_OFF = ("", "off", "none", "0")


def api_rate_limit(value: str) -> str:
    """``api_rate_limit`` checked: ``<calls>/<second|minute|hour|day>`` or ``off``."""
    value = value.strip().lower()
    if value in RATE_LIMIT_OFF:
        return "off"
    if not RATE_LIMIT.match(value):
        raise ConfigError(
            f"GLINT_API_RATE_LIMIT must look like 1200/minute (or off), not {value!r}"
        )
    return value


TOKEN_ISSUER_KEYS = {
    "issuer",
    "audience",
    "jwks_uri",
    "groups_claim",
    "required_groups",
    "algorithms",
}


def token_issuers(value: object) -> list[dict]:
    """The ``token_issuers`` setting as a list of dicts (see ``glint.accounts.tokens``).

    In TOML: ``[[token_issuers]]`` tables. In ``GLINT_TOKEN_ISSUERS``: the same as a JSON list.
    Each needs ``issuer`` and ``audience``; ``jwks_uri`` (default: from OIDC discovery),
    ``groups_claim`` (default ``wlcg.groups``), ``required_groups`` and ``algorithms`` are optional.
    """
    if isinstance(value, str):
        if not value.strip():
            return []
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ConfigError(f"GLINT_TOKEN_ISSUERS is not a JSON list: {exc}") from None
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        raise ConfigError("token_issuers must be a list of tables, each with issuer and audience")
    for entry in value:
        unknown = set(entry) - TOKEN_ISSUER_KEYS
        if unknown:
            raise ConfigError(f"unknown token_issuers key(s): {', '.join(sorted(unknown))}")
        if not entry.get("issuer") or not entry.get("audience"):
            raise ConfigError("every token_issuers entry needs an issuer and an audience")
    return value


def parse_database_url(url: str, data_dir: Path) -> DatabaseConfig:
    """Parse ``sqlite:///path`` or ``postgresql://user:pass@host:port/name``."""
    if not url:
        return DatabaseConfig("django.db.backends.sqlite3", str(data_dir / "glint.sqlite3"))
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        if not path or path == "/":
            raise ConfigError("GLINT_DATABASE_URL sqlite:/// needs a file path")
        return DatabaseConfig("django.db.backends.sqlite3", path)
    if parts.scheme in ("postgres", "postgresql"):
        return DatabaseConfig(
            "django.db.backends.postgresql",
            name=unquote(parts.path.lstrip("/")),
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            host=unquote(parts.hostname or ""),
            port=str(parts.port or ""),
        )
    raise ConfigError(
        f"GLINT_DATABASE_URL scheme {parts.scheme!r} is not supported (sqlite, postgresql)"
    )


def read_or_create_secret(path: Path, make: callable) -> str:
    """Return the secret stored at ``path``, creating it (mode 0600) on first run.

    The file is created with O_EXCL so two processes starting at once agree on one secret.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(make() + "\n")
    return path.read_text().strip()


#: The files of the data directory that hold keys: Django's secret key, and the keys that decrypt
#: every repo's credentials (a backup carries both; see ``glint backup``).
SECRET_KEY_FILE, CREDENTIAL_KEYS_FILE = "secret_key", "credential_keys"


def secret_key(data_dir: Path) -> str:
    return read_or_create_secret(data_dir / SECRET_KEY_FILE, lambda: secrets.token_urlsafe(50))


def credential_keys(data_dir: Path) -> list[str]:
    """Fernet keys for repo credentials, newest first (one per line; see ``glint keys rotate``)."""
    stored = read_or_create_secret(
        data_dir / CREDENTIAL_KEYS_FILE, lambda: Fernet.generate_key().decode()
    )
    return [line.strip() for line in stored.splitlines() if line.strip()]
