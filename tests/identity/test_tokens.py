"""WLCG/OIDC bearer tokens for the API, verified against a local issuer whose keys are served on
loopback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.test import Client, override_settings

from glint.accounts.services import add_group, link_token_identity
from glint.accounts.tokens import forget_keys
from tests.clients import make_user

pytestmark = pytest.mark.django_db
AUDIENCE = "https://glint.test"


class Issuer:
    """An OIDC provider in miniature: discovery document and JWKS over HTTP on 127.0.0.1."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": issuer.url, "jwks_uri": issuer.url + "/jwks"}
                elif self.path == "/jwks":
                    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(issuer.key.public_key()))
                    body = {"keys": [{**jwk, "kid": issuer.kid, "use": "sig", "alg": "RS256"}]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, sub="alice-sub", *, key=None, algorithm="RS256", headers=None, **claims) -> str:
        now = int(time.time())
        payload = {
            "iss": self.url,
            "sub": sub,
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "wlcg.ver": "1.0",
            "wlcg.groups": ["/glint-users"],
            **claims,
        }
        return jwt.encode(
            payload,
            key or self.key,
            algorithm=algorithm,
            headers={"kid": self.kid, **(headers or {})},
        )


@pytest.fixture(scope="module")
def issuer():
    running = Issuer()
    yield running
    running.server.shutdown()


@pytest.fixture
def configured(issuer):
    forget_keys()
    settings = [{"issuer": issuer.url, "audience": AUDIENCE, "required_groups": ["/glint-users"]}]
    with override_settings(GLINT_TOKEN_ISSUERS=settings):
        user = make_user("Tina Token", group=add_group("token-group"))
        link_token_identity(user, issuer.url, "alice-sub")
        yield user
    forget_keys()


def call(token: str, path="/api/v1/whoami/"):
    return Client().get(path, HTTP_AUTHORIZATION=f"Bearer {token}")


def test_a_valid_token_signs_in_as_the_linked_person(issuer, configured):
    response = call(issuer.token())
    assert response.status_code == 200, response.content
    assert response.json()["dn"] == configured.dn


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"aud": "https://someone-else"}, "audience"),
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"nbf": int(time.time()) + 3600}, "not yet valid"),
        ({"wlcg.groups": ["/other"]}, "wlcg.groups"),
        ({"sub": "nobody-sub"}, "not a Glint user"),
        ({"iss": "https://unknown.example"}, "not trusted"),
    ],
    ids=[
        "audience",
        "expired",
        "not-yet-valid",
        "missing-group",
        "unlinked-subject",
        "unknown-issuer",
    ],
)
def test_tokens_that_fail_a_check_are_refused_with_the_reason(issuer, configured, change, reason):
    sub = change.pop("sub", "alice-sub")
    response = call(issuer.token(sub, **change))
    assert response.status_code == 401
    assert reason.lower() in response.json()["detail"].lower()


def test_a_token_signed_by_another_key_is_refused(issuer, configured):
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert call(issuer.token(key=impostor)).status_code == 401
    other_curve = ec.generate_private_key(ec.SECP256R1())
    assert call(issuer.token(key=other_curve, algorithm="ES256")).status_code == 401


def test_an_hmac_token_keyed_with_the_public_key_is_refused(issuer, configured):
    """The classic algorithm confusion: HS256 with the issuer's public key as the shared secret.

    PyJWT refuses to make such a token itself, so it is built by hand.
    """
    public_pem = issuer.key.public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    payload = jwt.decode(issuer.token(), options={"verify_signature": False})

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": issuer.kid}).encode())
    body = b64(json.dumps(payload).encode())
    signature = b64(hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest())
    assert call(f"{header}.{body}.{signature}").status_code == 401


def test_the_same_subject_from_another_issuer_is_someone_else(issuer, configured):
    other = Issuer()
    try:
        settings = [
            {"issuer": issuer.url, "audience": AUDIENCE},
            {"issuer": other.url, "audience": AUDIENCE, "jwks_uri": other.url + "/jwks"},
        ]
        with override_settings(GLINT_TOKEN_ISSUERS=settings):
            assert call(other.token("alice-sub")).status_code == 401
            assert call(issuer.token("alice-sub")).status_code == 200
    finally:
        other.server.shutdown()


def test_a_deactivated_person_is_refused(issuer, configured):
    configured.is_active = False
    configured.save()
    assert call(issuer.token()).status_code == 401


def test_tokens_open_the_api_only_not_the_pages(issuer, configured):
    assert call(issuer.token(), "/accounts/me/").status_code == 403


def test_without_configured_issuers_a_token_is_not_looked_at(issuer):
    with override_settings(GLINT_TOKEN_ISSUERS=[]):
        response = call(issuer.token())
    assert response.status_code == 403
    assert "client certificate is required" in response.json()["detail"]
