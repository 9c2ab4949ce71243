"""A small REST client for the Glint API, used by every client command.

Errors become ``click.ClickException`` with the server's own reason, so a person sees why a call
was refused rather than a traceback.
"""

from __future__ import annotations

import os
import ssl
import time

import click
import requests

from glint.cli.config import ClientConfig
from glint.cli.output import shown

TIMEOUT = (10, 120)  # (connect, read) seconds
BUSY_STATUSES = {429, 503}  # over the rate limit, every worker busy: both say when to come back
BUSY_RETRIES = 3
BUSY_WAIT_MAX_SECONDS = 60


class GlintAPI:
    def __init__(self, config: ClientConfig):
        self.base = config.url.rstrip("/") + "/api/v1/"
        self.session = requests.Session()
        # Only this server's URL is ever contacted: no proxies or CA bundles from the environment,
        # which would otherwise override the trust chosen at login.
        self.session.trust_env = False
        if config.cert:
            self.session.cert = (config.cert, config.key) if config.key else config.cert
        if config.ca_file:
            self.session.verify = config.ca_file
        elif config.ca_dir or os.environ.get("X509_CERT_DIR"):
            self.session.verify = config.ca_dir or os.environ["X509_CERT_DIR"]

    def request(self, method: str, path: str, *, timeout=TIMEOUT, **kwargs) -> requests.Response:
        """One call; a GET refused as busy (429, 503) is tried again after its ``Retry-After``, a
        few times, so ``--watch`` and long listings slow down instead of failing."""
        for _attempt in range(BUSY_RETRIES):
            response = self._send(method, path, timeout=timeout, **kwargs)
            wait = _busy_wait(response)
            if method != "GET" or wait is None:
                break
            click.echo(
                f"server busy (HTTP {response.status_code}); trying again in {wait:g}s", err=True
            )
            time.sleep(wait)
        if response.status_code >= 400:
            raise click.ClickException(
                f"{method} {path}: HTTP {response.status_code}: {_reason(response)}"
            )
        return response

    def _send(self, method: str, path: str, *, timeout, **kwargs) -> requests.Response:
        url = self.base + path.lstrip("/")
        try:
            response = self.session.request(method, url, timeout=timeout, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise click.ClickException(f"TLS with {self.base} failed: {_tls_reason(exc)}") from None
        except requests.exceptions.ConnectionError:
            raise click.ClickException(
                f"cannot connect to {self.base}: is the server running?"
            ) from None
        except requests.exceptions.Timeout:
            raise click.ClickException(f"{self.base} did not answer in time") from None
        except OSError as exc:  # requests' own errors are OSErrors too: this is last on purpose
            raise click.ClickException(f"{exc} (moved since `glint login`? Log in again)") from None
        return response

    def get(self, path: str, **params) -> dict | list:
        return self.request(
            "GET", path, params={k: v for k, v in params.items() if v is not None}
        ).json()

    def get_all(self, path: str, **params) -> list:
        """Every item of a paginated list."""
        params = {k: v for k, v in params.items() if v is not None}
        items, url = [], path
        while url:
            page = self.request("GET", url, params=params).json()
            if isinstance(page, list):
                return page
            items.extend(page["results"])
            url, params = (page["next"][len(self.base) :] if page.get("next") else None), None
        return items

    def post(self, path: str, json: dict | None = None) -> dict:
        return self.request("POST", path, json=json or {}).json()


def _busy_wait(response: requests.Response) -> float | None:
    """Seconds a busy refusal asks the client to wait (``Retry-After`` in seconds), else None."""
    if response.status_code not in BUSY_STATUSES:
        return None
    try:
        wait = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return min(max(wait, 0.0), BUSY_WAIT_MAX_SECONDS)


def _reason(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return shown(response.reason or "no reason given")
    if isinstance(body, dict) and "detail" in body:
        return shown(body["detail"])
    return shown(body)


def _tls_reason(exc: Exception) -> str:
    text = str(exc)
    for known in (
        "CERTIFICATE_VERIFY_FAILED",
        "certificate required",
        "unknown ca",
        "certificate revoked",
    ):
        if known.lower() in text.lower():
            return known.replace("_", " ").lower() + " (check --ca-file and your certificate)"
    return (
        text
        if isinstance(exc, ssl.SSLError)
        else "handshake failed (check --ca-file and your certificate)"
    )
