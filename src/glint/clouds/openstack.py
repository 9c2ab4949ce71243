"""OpenStack driver: Keystone v3 for identity, the Glance v2 API for images.

Why raw keystoneauth calls instead of openstacksdk's image proxy: the SDK's ``create_image``
reads the whole data source to compute checksums before uploading (it cannot stream a
generator), and its listing hides the filters this driver needs. A keystoneauth
:class:`~keystoneauth1.session.Session` still gives us what matters from the SDK stack: v3
password and application-credential plugins, the service catalog, and tokens that are renewed
before each request when they are close to expiry (so the call after a transfer longer than the
token lifetime simply re-authenticates; Glance checks the token once, when a request starts, so
the transfer itself is not cut off).

Every keystoneauth exception and HTTP status is turned into a :mod:`glint.clouds.errors` class
in one place, the "Error translation" section below.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import socket
import tempfile
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import urllib3
from keystoneauth1 import exceptions as ksa_exc
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3

from glint.clouds import errors
from glint.clouds.addresses import checked_session
from glint.clouds.base import (
    CHUNK_SIZE,
    Capabilities,
    CloudDriver,
    ImageReader,
    ImageRecord,
    ProjectInfo,
    RepoConnection,
    register_driver,
)
from glint.clouds.tokens import TOKENS

__all__ = ["OpenStackDriver", "normalise_auth_url", "translate_error", "error_for_response"]

#: Glance's images per page when the caller gives no hint (Glance caps it at api_limit_max).
DEFAULT_PAGE_SIZE = 200

#: Seconds what an image endpoint said of its import methods and stores serves the later drivers
#: of this process (:data:`_DISCOVERED`): a copy asks for every target, and those change only when
#: an operator reconfigures the cloud (two round trips a target and job saved).
DISCOVERY_SECONDS = 300.0

#: Image endpoint URL -> (monotonic time asked, import methods, stores).
_DISCOVERED: dict[str, tuple[float, tuple[str, ...], tuple[str, ...]]] = {}

#: Glance image attributes that are not properties (the schema's base attributes).
CORE_FIELDS = frozenset(
    {
        "id",
        "name",
        "status",
        "visibility",
        "protected",
        "os_hidden",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "owner",
        "size",
        "virtual_size",
        "min_ram",
        "min_disk",
        "disk_format",
        "container_format",
        "created_at",
        "updated_at",
        "tags",
        "self",
        "file",
        "schema",
        "direct_url",
        "locations",
        "stores",
    }
)

# ``visibility=all`` returns public, community, our own, and shared images we accepted, but
# only those with os_hidden=false (Glance 33: glance/db/sqlalchemy/api.py, image_get_all). What it
# leaves out takes one more query per gap, results merged by id (docs/architecture.md
# "Listing"): the hidden ones, and shared images still pending our acceptance. The second item is
# the member status an image found by that query has for us.
_LIST_QUERIES: tuple[tuple[dict[str, str], str | None], ...] = tuple(
    (dict(query, **hidden), member_status)
    for query, member_status in (
        ({"visibility": "all"}, None),
        ({"visibility": "shared", "member_status": "pending"}, "pending"),
    )
    for hidden in ({}, {"os_hidden": "true"})
)

_JSON_PATCH = "application/openstack-images-v2.1-json-patch"


class _TokenLifeMixin:
    """Renew a token when a quarter of its life is left, at most keystoneauth's 120 s.

    keystoneauth renews a token before a request once it has less than
    ``MIN_TOKEN_LIFE_SECONDS`` (120 s) to live. Where Keystone issues tokens that live only a
    minute or two, that means a new token, and a token validation by Glance, before every
    request. Glance checks a token only when a request starts, so a margin relative to the
    token's lifetime is enough.
    """

    def _needs_reauthenticate(self) -> bool:
        ref = self.auth_ref
        if ref is not None and ref.expires and ref.issued:
            lifetime = (ref.expires - ref.issued).total_seconds()
            self.MIN_TOKEN_LIFE_SECONDS = int(min(120, max(1, lifetime / 4)))
        return super()._needs_reauthenticate()


class _Password(_TokenLifeMixin, v3.Password):
    pass


class _ApplicationCredential(_TokenLifeMixin, v3.ApplicationCredential):
    pass


def normalise_auth_url(auth_url: str) -> str:
    """Return the Keystone v3 URL for an auth URL given with or without a version suffix.

    ``https://k:5000``, ``https://k:5000/``, ``https://k:5000/v3/`` and (legacy configs)
    ``https://k:5000/v2.0`` all become ``https://k:5000/v3``.
    """
    url = auth_url.strip().rstrip("/")
    url = re.sub(r"/v2\.0$", "", url)
    if not re.search(r"/v3(\.\d+)?$", url):
        url += "/v3"
    return url


# Error translation


def _reason(exc: BaseException) -> str:
    """A short, secret-free description of a low-level connection failure."""
    text = str(exc)
    for pattern, reason in (
        (r"Connection refused", "connection refused"),
        (
            r"Name or service not known|nodename nor servname|Temporary failure in name resolution"
            r"|getaddrinfo failed",
            "host name does not resolve",
        ),
        (r"timed out|Timeout", "timed out"),
        (r"Connection reset|RemoteDisconnected|Connection aborted", "connection closed by peer"),
        (r"No route to host|Network is unreachable", "no route to host"),
    ):
        if re.search(pattern, text):
            return reason
    match = re.search(r"certificate verify failed: ([^()\]]+)", text)
    if match:
        return "certificate verify failed: " + match.group(1).strip(" ,'\"")
    return text.rsplit(": ", 1)[-1][:200]


def _url_in(text: str) -> str | None:
    match = re.search(r"https?://[^\s:/]+(?::\d+)?[^\s:]*", text)
    return match.group(0) if match else None


def translate_error(exc: Exception, url: str | None = None) -> errors.CloudError:
    """Turn a keystoneauth (or requests) exception into the matching typed error.

    Args:
        exc: The exception raised while talking to the cloud.
        url: The URL being requested, if known (named in the message).

    Returns:
        The typed error to raise instead (chain it with ``from exc``).
    """
    if isinstance(exc, errors.CloudError):
        return exc
    url = url or _url_in(str(exc)) or "the cloud"
    if isinstance(exc, (ksa_exc.SSLError, requests.exceptions.SSLError)):
        host = urlsplit(url).hostname or url
        reason = _reason(exc)
        if "certificate verify failed" in reason:
            return errors.TLSVerificationFailed(
                f"the CA bundle configured for this repo does not verify the TLS certificate of "
                f"{host} ({url}): {reason}. Give the CA certificate that signed the server's "
                f"certificate."
            )
        return errors.TLSVerificationFailed(f"TLS connection to {host} ({url}) failed: {reason}")
    if isinstance(
        exc,
        (ksa_exc.ConnectionError, requests.exceptions.ConnectionError, requests.exceptions.Timeout),
    ):
        return errors.EndpointUnreachable(f"cannot reach {url}: {_reason(exc)}")
    if isinstance(exc, ksa_exc.EndpointNotFound):
        return errors.CatalogError(f"service catalog: {exc}")
    if isinstance(exc, ksa_exc.DiscoveryFailure):
        return errors.EndpointUnreachable(f"no Keystone v3 API found at {url}: {exc}")
    if isinstance(exc, ksa_exc.HttpError):
        status = exc.http_status
        if status == 401:
            return errors.AuthenticationFailed(
                f"the identity service at {url} rejected the credentials (HTTP 401)", status=401
            )
        if status and status >= 500:
            return errors.ServiceUnavailable(
                f"the identity service at {url} failed (HTTP {status})", status=status
            )
        if status == 404:
            return errors.EndpointUnreachable(
                f"no Keystone v3 API at {url} (HTTP 404): check auth_url", status=404
            )
        return errors.AuthenticationFailed(
            f"the identity service at {url} refused to issue a token (HTTP {status}): "
            f"{exc.message}",
            status=status,
        )
    if isinstance(exc, ksa_exc.AuthorizationFailure):
        return errors.AuthenticationFailed(f"authentication at {url} failed: {exc}")
    if isinstance(exc, (ksa_exc.ClientException, requests.exceptions.RequestException)):
        return errors.CloudError(f"request to {url} failed: {exc}")
    return errors.CloudError(f"request to {url} failed: {type(exc).__name__}: {exc}")


def _never_connected(exc: BaseException) -> bool:
    """Whether the request behind ``exc`` never reached the server: its connection could not be
    opened (refused, or timed out while connecting), so nothing of it was sent."""
    pending, visited = [exc], set()
    while pending:
        seen = pending.pop()
        if id(seen) in visited:
            continue
        visited.add(id(seen))
        if isinstance(seen, urllib3.exceptions.ConnectTimeoutError):  # NewConnectionError is one
            return True
        # requests and urllib3 keep the underlying error in args[0] and .reason, not as a cause.
        nested = [seen.__cause__, seen.__context__, getattr(seen, "reason", None), *seen.args[:1]]
        pending += [e for e in nested if isinstance(e, BaseException)]
    return False


def _error_text(resp: requests.Response) -> str:
    """The human part of a Glance error body: webob answers JSON whose message may hold HTML
    line breaks, or a small HTML page."""
    try:
        body = resp.json()
    except ValueError:
        body = re.sub(r"<(title|h1)>.*?</\1>", " ", resp.text or "", flags=re.S | re.I)
    if isinstance(body, dict):
        inner = [v for v in body.values() if isinstance(v, dict) and "message" in v]
        body = body.get("message") or (inner[0]["message"] if inner else json.dumps(body))
    return " ".join(re.sub(r"<[^>]+>", " ", str(body)).split())[:500]


#: Glance 33 refuses data its format inspector does not accept with 415 and "Image disk_format
#: qcow2 does not match stream data raw" (or "Image failed safety checks", "Image format
#: inspection failed"); older releases answered 400. (glance/location.py, api/v2/image_data.py)
_FORMAT_REFUSED = re.compile(
    r"does not match stream data|failed safety check|format inspection failed", re.IGNORECASE
)


def error_for_response(resp: requests.Response, what: str) -> errors.CloudError:
    """Turn a failed Glance response into the matching typed error.

    Args:
        resp: The response with a status >= 400 (or an unexpected one).
        what: What was being done, for the message (e.g. ``"upload data of image X"``).
    """
    status = resp.status_code
    detail = _error_text(resp)
    message = f"{what}: HTTP {status}" + (f": {detail}" if detail else "")
    if status in (400, 415) and _FORMAT_REFUSED.search(detail):
        return errors.FormatRefused(message, status=status)
    cls = {
        401: errors.AuthenticationFailed,
        403: errors.Forbidden,
        404: errors.NotFound,
        409: errors.Conflict,
        413: errors.QuotaExceeded,
    }.get(status)
    if cls is None:
        cls = errors.ServiceUnavailable if status >= 500 else errors.InvalidRequest
    return cls(message, status=status)


# Driver


@register_driver
class OpenStackDriver(CloudDriver):
    """A Glance v2 image service reached through Keystone v3.

    Holds one keystoneauth session (one connection pool, one token). Not thread-safe: create one
    per worker thread. The token is shared with later drivers for the same credentials
    (:mod:`glint.clouds.tokens`).
    """

    kind = "openstack"
    label = "OpenStack (Keystone v3, Glance v2)"

    def __init__(self, connection: RepoConnection):
        super().__init__(connection)
        self._auth_url = normalise_auth_url(connection.auth_url)
        self._ca_file: str | None = None
        if connection.ca_bundle and connection.verify_tls:
            fd, self._ca_file = tempfile.mkstemp(prefix="glint-ca-", suffix=".pem")  # mode 0600
            with os.fdopen(fd, "w") as handle:
                handle.write(connection.ca_bundle)
            self._finalizer = weakref.finalize(self, _unlink, self._ca_file)
        self._auth = self._auth_plugin(scoped=True)
        self._reused_token = TOKENS.restore(self._auth)
        self._kept_auth = self._auth.auth_ref
        self._session = self._new_session(self._auth)
        self._image_base: str | None = None
        self._seen_hash_algo: str | None = None
        self._closed = False

    # Session and authentication

    def _verify(self) -> bool | str:
        if not self.connection.verify_tls:
            return False
        return self._ca_file or True

    def _new_session(self, auth: Any) -> ksa_session.Session:
        policy = self.connection.endpoint_policy
        return ksa_session.Session(
            auth=auth,
            session=checked_session(policy) if policy else None,
            verify=self._verify(),
            timeout=self.connection.read_timeout,
            app_name="glint",
        )

    def _auth_plugin(self, *, scoped: bool) -> Any:
        conn = self.connection
        if conn.uses_application_credential:
            return _ApplicationCredential(
                auth_url=self._auth_url,
                application_credential_id=conn.application_credential_id,
                application_credential_secret=conn.application_credential_secret,
            )
        user_domain = {
            "user_domain_name": conn.user_domain_name,
            "user_domain_id": conn.user_domain_id,
        }
        if not (conn.user_domain_name or conn.user_domain_id):
            user_domain["user_domain_id"] = "default"  # what the openstack CLI assumes too
        kwargs: dict[str, Any] = dict(
            auth_url=self._auth_url, username=conn.username, password=conn.password, **user_domain
        )
        if scoped:
            if conn.project_id:
                kwargs["project_id"] = conn.project_id
            else:
                kwargs["project_name"] = conn.project_name
                kwargs["project_domain_name"] = conn.project_domain_name
                kwargs["project_domain_id"] = conn.project_domain_id
                if not (conn.project_domain_name or conn.project_domain_id):
                    kwargs["project_domain_id"] = "default"
        return _Password(**kwargs)

    def _auth_failure(self, exc: ksa_exc.HttpError) -> errors.CloudError:
        """Tell a wrong password from a project the user cannot use.

        Keystone answers 401 to both. When password auth fails with a project scope, try the
        same credentials unscoped: if that works, the password is right and the project is
        unknown (or the user has no role on it).
        """
        if self.connection.uses_application_credential or exc.http_status not in (401, 404):
            return translate_error(exc, self._auth_url)
        probe = self._new_session(self._auth_plugin(scoped=False))
        try:
            probe.get_auth_headers()
        except ksa_exc.HttpError:
            return errors.AuthenticationFailed(
                f"the identity service at {self._auth_url} rejected the username or password "
                f"of {self.connection.username!r}",
                status=exc.http_status,
            )
        except Exception as probe_exc:  # noqa: BLE001 - report what the probe met instead
            return translate_error(probe_exc, self._auth_url)
        finally:
            probe.session.close()
        project = self.connection.project_id or self.connection.project_name
        domain = self.connection.project_domain_name or self.connection.project_domain_id
        where = f" in domain {domain!r}" if domain and not self.connection.project_id else ""
        return errors.ProjectNotFound(
            f"{self.connection.username!r} can log in at {self._auth_url}, but project "
            f"{project!r}{where} does not exist or the user has no role on it",
            status=exc.http_status,
        )

    def _ks(self, func: Any, *args: Any, url: str | None = None, **kwargs: Any) -> Any:
        """Call into keystoneauth, translating its exceptions."""
        try:
            return func(*args, **kwargs)
        except ksa_exc.HttpError as exc:
            # Service calls pass raise_exc=False, so an HTTP error here came from Keystone.
            raise self._auth_failure(exc) from exc
        except ksa_exc.ConnectionError as exc:
            raise translate_error(exc, _url_in(str(exc)) or url) from exc
        except (ksa_exc.ClientException, requests.exceptions.RequestException) as exc:
            raise translate_error(exc, url or self._auth_url) from exc

    def _base(self) -> str:
        """The image endpoint from the catalog, without a version suffix."""
        if self._image_base is None:
            conn = self.connection
            endpoint = self._ks(
                self._session.get_endpoint,
                service_type="image",
                interface=conn.interface,
                region_name=conn.region,
                url=self._auth_url,
            )
            if not endpoint:
                raise errors.CatalogError(
                    f"the service catalog from {self._auth_url} has no image endpoint for "
                    f"region {conn.region!r} and interface {conn.interface!r}"
                )
            self._image_base = re.sub(r"/v2(\.\d+)?$", "", endpoint.rstrip("/"))
        return self._image_base

    def _request(
        self,
        method: str,
        path: str,
        what: str,
        *,
        expect: tuple[int, ...] = (200,),
        stream: bool = False,
        log: bool = True,
        allow_reauth: bool = True,
        **kwargs: Any,
    ) -> requests.Response:
        """Send one authenticated request to Glance; raise a typed error for other statuses.

        Args:
            method: HTTP method.
            path: Path below the image endpoint (``/v2/...``).
            what: What is being done, for error messages.
            expect: Statuses that count as success.
            stream: Leave the body unread (the caller streams it).
            log: False for data transfers (keystoneauth must not try to log a body).
            allow_reauth: False when the body cannot be sent twice (an iterator).
            **kwargs: Passed on to keystoneauth / requests.
        """
        if self._closed:
            raise errors.CloudError(f"{what}: this driver was closed")
        kwargs.update(
            headers={"Accept": "application/json", **kwargs.pop("headers", {})},
            stream=stream,
            log=log,
            allow_reauth=allow_reauth,
            timeout=(self.connection.connect_timeout, self.connection.read_timeout),
        )
        try:
            resp = self._send(method, path, **kwargs)
        except errors.EndpointUnreachable as exc:
            if not (self._reused_token and _never_connected(exc)):
                raise
            # The catalog that came with a reused token may name an endpoint that has moved:
            # authenticate again for a fresh one. Nothing was sent, so repeating is safe.
            self._drop_reused_token()
            resp = self._send(method, path, **kwargs)
        self._keep_token()
        if resp.status_code not in expect:
            try:
                raise error_for_response(resp, what)
            finally:
                resp.close()
        return resp

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = self._base() + path
        try:
            return self._ks(self._session.request, url, method, raise_exc=False, url=url, **kwargs)
        except errors.EndpointRefused as exc:
            if _origin(exc.url) != _origin(url):
                raise  # a renewal of the token, at Keystone
            conn = self.connection
            raise errors.CatalogEndpointRefused(
                f"the service catalog of {self._auth_url} names {self._image_base} as the image "
                f"endpoint for region {conn.region!r} and interface {conn.interface!r}, and Glint "
                f"does not connect there: {exc.reason}",
                url=exc.url,
                reason=exc.reason,
            ) from None

    def _keep_token(self) -> None:
        """Leave a new token for the next driver with these credentials (:mod:`.tokens`)."""
        if self._auth.auth_ref is not self._kept_auth:
            self._kept_auth = self._auth.auth_ref
            TOKENS.remember(self._auth)

    def _drop_reused_token(self) -> None:
        TOKENS.forget(self._auth)
        self._auth.invalidate()
        self._image_base = None
        self._reused_token = False

    def _project_id(self) -> str | None:
        return self._ks(self._session.get_project_id, url=self._auth_url)

    # Records

    def _record(self, doc: Mapping[str, Any], member_status: str | None = None) -> ImageRecord:
        if (
            member_status is None
            and doc.get("visibility") == "shared"
            and doc.get("owner") != self._project_id()
        ):
            member_status = "accepted"  # a plain listing only shows accepted shared images
        if doc.get("status") == "active" and doc.get("os_hash_algo"):
            self._seen_hash_algo = doc["os_hash_algo"]
        return ImageRecord(
            id=doc["id"],
            name=doc.get("name"),
            status=doc.get("status", "queued"),
            size=doc.get("size"),
            virtual_size=doc.get("virtual_size"),
            disk_format=doc.get("disk_format"),
            container_format=doc.get("container_format"),
            checksum=doc.get("checksum"),
            hash_algo=doc.get("os_hash_algo"),
            hash_value=doc.get("os_hash_value"),
            owner=doc.get("owner"),
            visibility=doc.get("visibility"),
            protected=bool(doc.get("protected")),
            os_hidden=bool(doc.get("os_hidden")),
            min_disk=doc.get("min_disk") or 0,
            min_ram=doc.get("min_ram") or 0,
            tags=tuple(doc.get("tags") or ()),
            properties={k: v for k, v in doc.items() if k not in CORE_FIELDS},
            created_at=doc.get("created_at"),
            updated_at=doc.get("updated_at"),
            member_status=member_status,
        )

    # Protocol

    def check(self) -> ProjectInfo:
        self._drop_reused_token()  # a check tests the credentials: never with a reused token
        access = self._ks(self._auth.get_access, self._session, url=self._auth_url)
        self._request("GET", "/v2/images?limit=1", "list images").close()
        return ProjectInfo(
            project_id=access.project_id, project_name=access.project_name, user_id=access.user_id
        )

    def project_id(self) -> str:
        return self._project_id() or self.check().project_id

    def list_images(self, *, page_size: int | None = None) -> list[ImageRecord]:
        seen: dict[str, ImageRecord] = {}
        for query, member_status in _LIST_QUERIES:
            for doc in self._paginate(dict(query, limit=str(page_size or DEFAULT_PAGE_SIZE))):
                if doc["id"] not in seen:
                    seen[doc["id"]] = self._record(doc, member_status)
        return list(seen.values())

    def _paginate(self, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        """Follow Glance's ``next`` links; only their query string is used, because ``next``
        is relative to Glance's own root, which may differ from the catalog URL's path."""
        query = "&".join(f"{quote(k)}={quote(v)}" for k, v in params.items())
        while query:
            body = self._request("GET", f"/v2/images?{query}", "list images").json()
            yield from body.get("images", [])
            query = urlsplit(body["next"]).query if body.get("next") else ""

    def get_image(self, image_id: str) -> ImageRecord:
        doc = self._request("GET", f"/v2/images/{quote(image_id)}", f"get image {image_id}").json()
        member_status = None
        project_id = self._project_id()
        if doc.get("visibility") == "shared" and doc.get("owner") != project_id:
            resp = self._request(
                "GET",
                f"/v2/images/{quote(image_id)}/members/{project_id}",
                f"get membership of image {image_id}",
                expect=(200, 403, 404),
            )
            if resp.status_code == 200:
                member_status = resp.json().get("status")
        return self._record(doc, member_status)

    def open_read(self, image_id: str, offset: int = 0) -> ImageReader:
        if offset < 0:
            raise ValueError("offset must be >= 0")
        what = f"download image {image_id}"
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        resp = self._request(
            "GET",
            f"/v2/images/{quote(image_id)}/file",
            what,
            expect=(200, 204, 206, 416),
            stream=True,
            log=False,
            headers=headers,
        )
        if resp.status_code == 204:
            resp.close()
            raise errors.ImageNotReady(f"{what}: the image has no data (HTTP 204)", status=204)
        if resp.status_code == 416:
            resp.close()
            size = self.get_image(image_id).size
            if size is not None and offset == size:
                return _GlanceReader(None, image_id, offset=offset, size=size)
            raise errors.InvalidRequest(
                f"{what}: offset {offset} is beyond the image's {size} bytes", status=416
            )
        return _GlanceReader(resp, image_id, offset=offset)

    def create_image(self, fields: Mapping[str, Any]) -> ImageRecord:
        body = {k: (list(v) if k == "tags" else v) for k, v in fields.items()}
        resp = self._request(
            "POST", "/v2/images", f"create image {fields.get('name')!r}", expect=(201,), json=body
        )
        return self._record(resp.json())

    def write_data(
        self, image_id: str, chunks: Iterable[bytes], size: int | None = None
    ) -> ImageRecord:
        what = f"upload data of image {image_id}"
        body = _UploadBody(chunks, size, what)
        try:
            self._request(
                "PUT",
                f"/v2/images/{quote(image_id)}/file",
                what,
                expect=(204,),
                data=body if size else iter(body),
                log=False,
                allow_reauth=False,
                headers={"Content-Type": "application/octet-stream"},
            ).close()
        except Exception as exc:
            if body.source_error is not None:  # the caller's stream failed, not the cloud
                raise body.source_error from exc
            if isinstance(exc, errors.EndpointUnreachable) and body.sent:
                raise errors.TransferInterrupted(
                    f"{what}: the connection broke after {body.sent} bytes: {exc}"
                ) from exc
            raise
        return self.get_image(image_id)

    def delete(self, image_id: str) -> None:
        self._request(
            "DELETE", f"/v2/images/{quote(image_id)}", f"delete image {image_id}", expect=(204,)
        ).close()

    def set_properties(
        self,
        image_id: str,
        set: Mapping[str, Any] | None = None,  # noqa: A002
        remove: Iterable[str] = (),
    ) -> ImageRecord:
        what = f"update properties of image {image_id}"
        current = self._request("GET", f"/v2/images/{quote(image_id)}", what).json()
        ops = [
            {"op": "replace" if key in current else "add", "path": _pointer(key), "value": value}
            for key, value in (set or {}).items()
        ]
        ops += [{"op": "remove", "path": _pointer(key)} for key in remove if key in current]
        if not ops:
            return self._record(current)
        resp = self._request(
            "PATCH",
            f"/v2/images/{quote(image_id)}",
            what,
            data=json.dumps(ops),
            headers={"Content-Type": _JSON_PATCH},
        )
        return self._record(resp.json())

    def capabilities(self) -> Capabilities:
        methods, stores = self._discover()
        return Capabilities(
            import_methods=methods,
            hash_algo=self._seen_hash_algo,
            can_stream_write=True,
            can_range_read=True,
            stores=stores,
        )

    def _discover(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The endpoint's import methods and stores, asked at most every
        :data:`DISCOVERY_SECONDS` in this process."""
        base, now = self._base(), time.monotonic()
        seen = _DISCOVERED.get(base)
        if seen is not None and now - seen[0] < DISCOVERY_SECONDS:
            return seen[1], seen[2]
        info = self._request("GET", "/v2/info/import", "read import methods").json()
        methods = tuple(info.get("import-methods", {}).get("value") or ())
        resp = self._request("GET", "/v2/info/stores", "read stores", expect=(200, 404, 410))
        stores = tuple(s["id"] for s in resp.json().get("stores", [])) if resp.ok else ()
        resp.close()
        _DISCOVERED[base] = (now, methods, stores)
        return methods, stores

    def import_web_download(self, image_id: str, url: str) -> None:
        body = {"method": {"name": "web-download", "uri": url}}
        self._request(
            "POST",
            f"/v2/images/{quote(image_id)}/import",
            f"start web-download import of image {image_id}",
            expect=(202,),
            json=body,
        ).close()

    def close(self) -> None:
        self._closed = True
        self._session.session.close()
        if self._ca_file:
            self._finalizer()


def _origin(url: str) -> tuple[str | None, int | None]:
    parts = urlsplit(url)
    return parts.hostname, parts.port or {"http": 80, "https": 443}.get(parts.scheme)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _pointer(key: str) -> str:
    """A JSON pointer to a top-level image attribute (RFC 6901 escaping)."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


# Streams


class _UploadBody:
    """The caller's chunks as an upload body. Counts bytes, drops empty chunks (an empty chunk
    would end a chunked body early), and remembers an exception the caller's iterator raised so
    it is not mistaken for a network failure.

    With a known ``size`` the body has that length, so requests sends it with ``Content-Length``
    and each chunk goes out as it is (chunked framing copies every chunk into a new buffer: one
    more MiB per target in flight, and CPU). A stream that runs longer or shorter than announced
    then fails the request with :class:`~glint.clouds.errors.SizeMismatch`, before the cloud has
    all its bytes. The chunk that completes the size is held until the caller's stream has ended:
    with its last byte the cloud activates the image, so a check the caller makes at the end of
    its stream (the source's hash) must still be able to stop it, as it can stop the closing
    chunk of a chunked body. Without a size (or with 0, which requests would take for "no body")
    pass ``iter(body)``: requests sends that chunked.
    """

    def __init__(self, chunks: Iterable[bytes], size: int | None, what: str):
        self._chunks, self._size, self._what = chunks, size, what
        self.sent = 0
        self.source_error: BaseException | None = None

    def __len__(self) -> int:
        return self._size or 0  # only read when the body is passed with a size (see above)

    def __iter__(self) -> Iterator[bytes]:
        iterator = iter(self._chunks)
        while (chunk := self._next(iterator)) is not None:
            total = self.sent + len(chunk)
            if self._size is not None and (
                total > self._size or (total == self._size and self._next(iterator) is not None)
            ):
                self._refuse(f"the stream gave more than the {self._size} bytes announced")
            self.sent = total
            # With a size the chunk is sent as it is; chunked framing needs bytes to join.
            yield chunk if self._size is not None or isinstance(chunk, bytes) else bytes(chunk)
        if self._size is not None and self.sent != self._size:
            self._refuse(f"the stream ended after {self.sent} bytes, {self._size} announced")

    def _next(self, iterator: Iterator[bytes]) -> bytes | None:
        """The caller's next non-empty chunk; None at its end."""
        while True:
            try:
                chunk = next(iterator)
            except StopIteration:
                return None
            except BaseException as exc:
                self.source_error = exc
                raise
            if chunk:
                return chunk

    def _refuse(self, said: str) -> None:
        self.source_error = errors.SizeMismatch(f"{self._what}: {said}")
        raise self.source_error


class _GlanceReader(ImageReader):
    """Streams ``GET /v2/images/{id}/file``; breaks become :class:`TransferInterrupted` that
    say where to resume."""

    def __init__(
        self, resp: requests.Response | None, image_id: str, *, offset: int, size: int | None = None
    ):
        self._resp = resp
        self.image_id = image_id
        self.offset = offset
        self.position = offset
        self.size = size
        self._skip = 0
        if resp is not None:
            length = resp.headers.get("Content-Length")
            content_range = resp.headers.get("Content-Range", "")
            match = re.match(r"bytes \d+-\d+/(\d+)", content_range)
            if resp.status_code == 206 and match:
                self.size = int(match.group(1))
            elif length is not None:
                self.size = int(length)
            if resp.status_code == 200 and offset:
                # The server ignored Range: skip to the offset rather than fail the copy.
                self._skip = offset

    def __iter__(self) -> Iterator[bytes]:
        if self._resp is None:
            return
        yield from self._counted(self._resp.iter_content(CHUNK_SIZE))

    def chunks_into(self, buffer: Callable[[], bytearray]) -> Iterator[bytes | memoryview]:
        raw = self._resp.raw if self._resp is not None else None
        body = getattr(raw, "_fp", None)  # the http.client response under urllib3's
        plain = raw is not None and raw.headers.get("Content-Encoding", "identity") == "identity"
        if not (plain and isinstance(body, http.client.HTTPResponse)) or self._skip:
            yield from self
            return

        def read() -> Iterator[memoryview]:
            # Straight from the socket into the caller's buffer: no chunk allocated, no copy.
            while n := body.readinto(into := buffer()):
                yield memoryview(into)[:n]

        yield from self._counted(read())

    def _counted(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        try:
            for chunk in chunks:
                if self._skip:
                    dropped = min(self._skip, len(chunk))
                    self._skip -= dropped
                    chunk = chunk[dropped:]
                    if not chunk:
                        continue
                self.position += len(chunk)
                yield chunk
        except (
            requests.exceptions.RequestException,
            urllib3.exceptions.HTTPError,
            http.client.HTTPException,
            OSError,
        ) as exc:
            raise errors.TransferInterrupted(
                f"download of image {self.image_id} broke off at byte {self.position}: "
                f"{_reason(exc)}; resume with offset={self.position}"
            ) from exc
        if self.size is not None and self.position != self.size:
            raise errors.TransferInterrupted(
                f"download of image {self.image_id} ended at byte {self.position} of "
                f"{self.size}; resume with offset={self.position}"
            )

    def close(self) -> None:
        if self._resp is not None:
            self._resp.close()

    def interrupt(self) -> None:
        # Shutting the socket down (not closing it) wakes a recv blocked in another thread.
        connection = self._resp.raw.connection if self._resp is not None else None
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
