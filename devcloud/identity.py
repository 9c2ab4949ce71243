"""Keystone v3 REST calls devcloud makes as an operator: regions, catalog, projects, users.

Plain ``requests`` against the documented API, from the project venv (devcloud's own CLI never
imports Keystone). The admin token is renewed on a 401, because ``--token-expiration`` may be
shorter than the set-up itself.
"""

from __future__ import annotations

import secrets

import requests

from .errors import DevcloudError

DOMAIN = "default"  # the id of the "Default" domain that bootstrap creates


def new_password() -> str:
    """A random password, well below bcrypt's 72-byte limit.

    Hex, not url-safe base64: a value starting with ``-`` would be taken for an option by
    ``keystone-manage bootstrap --bootstrap-password``.
    """
    return secrets.token_hex(20)


def _auth_body(username: str, password: str, project: str | None) -> dict:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": username, "domain": {"id": DOMAIN}, "password": password}
                },
            }
        }
    }
    if project:
        body["auth"]["scope"] = {"project": {"name": project, "domain": {"id": DOMAIN}}}
    return body


class KeystoneClient:
    """A user's project-scoped session against one Keystone.

    Args:
        auth_url: the Keystone's ``.../v3`` URL.
        username, password: a user in the Default domain.
        project: the project to scope to.
        verify: the CA file for TLS, or True.
    """

    def __init__(
        self, auth_url: str, username: str, password: str, project: str, verify: str | bool = True
    ):
        self.auth_url = auth_url.rstrip("/")
        self.username, self.password, self.project = username, password, project
        self.http = requests.Session()
        self.http.trust_env = False  # never through a proxy: everything is on loopback
        self.http.verify = verify
        self.token: str | None = None
        self.user_id: str | None = None
        self.project_id: str | None = None

    def send(self, method: str, url: str, **kwargs) -> requests.Response:
        try:
            return self.http.request(method, url, timeout=30, **kwargs)
        except requests.RequestException as err:
            raise DevcloudError(f"{method} {url} failed: {err}") from err

    def authenticate(self) -> None:
        response = self.send(
            "POST",
            f"{self.auth_url}/auth/tokens",
            json=_auth_body(self.username, self.password, self.project),
        )
        if response.status_code != 201:
            raise DevcloudError(
                f"authenticating {self.username} at {self.auth_url} failed: "
                f"{response.status_code} {response.text[:500]}"
            )
        self.token = response.headers["X-Subject-Token"]
        body = response.json()["token"]
        self.user_id = body["user"]["id"]
        self.project_id = body["project"]["id"]

    def request(
        self, method: str, path: str, expect: tuple[int, ...] = (200, 201, 204), **kwargs
    ) -> dict:
        for attempt in (1, 2):
            if self.token is None:
                self.authenticate()
            response = self.send(
                method, f"{self.auth_url}{path}", headers={"X-Auth-Token": self.token}, **kwargs
            )
            if response.status_code == 401 and attempt == 1:
                self.token = None  # expired under a short --token-expiration: renew once
                continue
            break
        if response.status_code not in expect:
            raise DevcloudError(
                f"{method} {self.auth_url}{path} failed: "
                f"{response.status_code} {response.text[:500]}"
            )
        return response.json() if response.content else {}

    # Operator calls (the bootstrap admin) ------------------------------------------------

    def find_id(self, collection: str, name: str) -> str | None:
        """The id of the named project/user/role/service, or None."""
        key = collection.rsplit("/", 1)[-1]
        items = self.request("GET", f"/{collection}", params={"name": name})[key]
        return items[0]["id"] if items else None

    def create_project(self, name: str) -> str:
        return self.request(
            "POST",
            "/projects",
            json={"project": {"name": name, "domain_id": DOMAIN, "description": "devcloud"}},
        )["project"]["id"]

    def create_user(self, name: str, password: str, project_id: str | None = None) -> str:
        user = {"name": name, "domain_id": DOMAIN, "password": password}
        if project_id:
            user["default_project_id"] = project_id
        return self.request("POST", "/users", json={"user": user})["user"]["id"]

    def grant(self, role: str, user_id: str, project_id: str) -> None:
        role_id = self.find_id("roles", role)
        self.request("PUT", f"/projects/{project_id}/users/{user_id}/roles/{role_id}")

    def create_region(self, region: str) -> None:
        self.request("POST", "/regions", json={"region": {"id": region}}, expect=(201, 409))

    def ensure_service(self, kind: str, name: str) -> str:
        service_id = self.find_id("services", name)
        if service_id:
            return service_id
        return self.request(
            "POST", "/services", json={"service": {"type": kind, "name": name, "enabled": True}}
        )["service"]["id"]

    def create_endpoints(self, service_id: str, region: str, url: str) -> None:
        for interface in ("public", "internal", "admin"):
            self.request(
                "POST",
                "/endpoints",
                json={
                    "endpoint": {
                        "service_id": service_id,
                        "region_id": region,
                        "interface": interface,
                        "url": url,
                        "enabled": True,
                    }
                },
            )

    # A user's own calls -------------------------------------------------------------------

    def create_application_credential(self, name: str) -> tuple[str, str]:
        """An application credential for this user's scoped project: (id, secret)."""
        if self.token is None:
            self.authenticate()
        cred = self.request(
            "POST",
            f"/users/{self.user_id}/application_credentials",
            json={"application_credential": {"name": name, "description": "devcloud"}},
        )
        return cred["application_credential"]["id"], cred["application_credential"]["secret"]
