"""WLCG / OIDC bearer tokens for the API, next to certificates (research/x509.md §6).

A token is accepted when:

- its ``iss`` is one of the configured issuers (``GLINT_TOKEN_ISSUERS``), compared exactly;
- its signature verifies with a key from that issuer's JWKS (``jwks_uri``, or the one OIDC discovery
  names at ``<issuer>/.well-known/openid-configuration``), with an allowed algorithm
  (RS256/ES256 by default; never ``none`` or HMAC, whose "key" would be public);
- ``aud`` holds the issuer's configured audience; ``exp`` is in the future and ``nbf``/``iat`` not
  ahead of us (60 s of clock skew allowed);
- when ``required_groups`` is set, the groups claim (``wlcg.groups`` by default) holds one of them;
- ``(iss, sub)`` is linked to an active Glint user
  (``glint user add --dn DN --token ISSUER SUBJECT``). The subject alone is never enough: two
  issuers can hand out the same ``sub``.

Keys are fetched on first use and cached per issuer by PyJWT's ``PyJWKClient`` (refetched when a
token names an unknown ``kid``, so key rotation needs no restart).
"""

from __future__ import annotations

import json
import threading
import urllib.request
from dataclasses import dataclass

import jwt

from glint.accounts.models import TokenIdentity, User

__all__ = ["TokenError", "TokenIssuer", "user_for_token"]

DEFAULT_ALGORITHMS = ("RS256", "ES256")
CLOCK_SKEW_SECONDS = 60
FETCH_TIMEOUT_SECONDS = 10
JWKS_CACHE_SECONDS = 600


class TokenError(Exception):
    """The token is not accepted; the message says why (safe to show: it holds no token
    material)."""


@dataclass(frozen=True)
class TokenIssuer:
    issuer: str
    audience: str
    jwks_uri: str = ""
    groups_claim: str = "wlcg.groups"
    required_groups: tuple[str, ...] = ()
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS

    @classmethod
    def from_setting(cls, entry: dict) -> TokenIssuer:
        return cls(
            issuer=entry["issuer"],
            audience=entry["audience"],
            jwks_uri=entry.get("jwks_uri", ""),
            groups_claim=entry.get("groups_claim", "wlcg.groups"),
            required_groups=tuple(entry.get("required_groups", ())),
            algorithms=tuple(
                alg
                for alg in entry.get("algorithms", DEFAULT_ALGORITHMS)
                if not alg.startswith("HS")
            ),
        )


_clients: dict[str, jwt.PyJWKClient] = {}
_clients_lock = threading.Lock()


def _discover_jwks_uri(issuer: str) -> str:
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_SECONDS) as response:
            return json.load(response)["jwks_uri"]
    except (OSError, ValueError, KeyError) as exc:
        raise TokenError(f"cannot discover the keys of issuer {issuer}: {exc}") from None


def _jwks_client(issuer: TokenIssuer) -> jwt.PyJWKClient:
    with _clients_lock:
        client = _clients.get(issuer.issuer)
    if client is None:
        uri = issuer.jwks_uri or _discover_jwks_uri(issuer.issuer)
        client = jwt.PyJWKClient(uri, lifespan=JWKS_CACHE_SECONDS, timeout=FETCH_TIMEOUT_SECONDS)
        with _clients_lock:
            client = _clients.setdefault(issuer.issuer, client)
    return client


def forget_keys() -> None:
    """Drop cached JWKS clients (tests that restart an issuer; configuration changes)."""
    with _clients_lock:
        _clients.clear()


def verify_token(token: str, issuers: list[TokenIssuer]) -> dict:
    """The claims of a valid token.

    Raises:
        TokenError: unknown issuer, bad signature, wrong audience, expired, missing group.
    """
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise TokenError("the bearer token is not a JWT") from None
    issuer = next((i for i in issuers if i.issuer == unverified.get("iss")), None)
    if issuer is None:
        raise TokenError("the token's issuer is not trusted by this Glint")
    try:
        key = _jwks_client(issuer).get_signing_key_from_jwt(token)
        algorithm = jwt.get_unverified_header(token).get("alg")
        if algorithm not in issuer.algorithms or algorithm != key.algorithm_name:
            # An ES256 header on an RSA key (say) must be a clean refusal, not a crash in the
            # library.
            raise TokenError(
                f"the token's algorithm {algorithm} does not match its key or is not allowed"
            )
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[algorithm],
            audience=issuer.audience,
            issuer=issuer.issuer,
            leeway=CLOCK_SKEW_SECONDS,
            options={"require": ["exp", "iss", "sub", "aud"]},
        )
    except jwt.PyJWKClientError as exc:
        raise TokenError(f"no key of issuer {issuer.issuer} verifies this token: {exc}") from None
    except jwt.PyJWTError as exc:
        raise TokenError(f"the token is not valid: {exc}") from None
    if issuer.required_groups:
        groups = claims.get(issuer.groups_claim) or []
        if isinstance(groups, str):
            groups = groups.split()
        if not set(groups) & set(issuer.required_groups):
            raise TokenError(
                f"the token's {issuer.groups_claim} holds none of "
                f"{', '.join(issuer.required_groups)}"
            )
    return claims


def user_for_token(token: str, issuer_settings: list[dict]) -> User:
    """The active Glint user a valid token signs in as.

    Raises:
        TokenError: the token is not valid, or no active user is linked to its (issuer, subject).
    """
    claims = verify_token(token, [TokenIssuer.from_setting(entry) for entry in issuer_settings])
    link = (
        TokenIdentity.objects.select_related("user")
        .filter(issuer=claims["iss"], subject=claims["sub"], user__is_active=True)
        .first()
    )
    if link is None:
        raise TokenError(
            f"the token is valid, but subject {claims['sub']} of {claims['iss']} "
            "is not a Glint user"
        )
    return link.user
