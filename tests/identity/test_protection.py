"""CSRF, security headers, cookies, the API rate limit and request ids."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from django.test import override_settings

from glint.accounts.models import Group
from glint.accounts.services import add_group
from glint.audit.models import AuditRecord
from tests.clients import CertificateClient, certificate_for, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin():
    add_group("alpha")
    return make_user("Ada Admin", admin=True)


def strict_client(user) -> CertificateClient:
    """A browser-like client: Django's CSRF checks apply as they do for real browsers."""
    return CertificateClient(
        certificate_for(user.dn.rsplit("/CN=", 1)[1])[0], enforce_csrf_checks=True
    )


def csrf_token_of(client, url="/accounts/me/") -> str:
    page = client.get(url).content.decode()
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def test_a_form_post_without_the_csrf_token_is_refused_and_audited(admin):
    client = strict_client(admin)
    response = client.post("/accounts/groups/", {"name": "forged"})
    assert response.status_code == 403
    assert not Group.objects.filter(name="forged").exists()
    assert AuditRecord.objects.filter(
        action="request.refused", user=admin, details__path="/accounts/groups/"
    ).exists()
    token = csrf_token_of(client)
    assert (
        client.post(
            "/accounts/groups/", {"name": "genuine", "csrfmiddlewaretoken": token}
        ).status_code
        == 302
    )


def test_an_htmx_call_needs_the_token_header_the_page_puts_in_hx_headers(admin):
    client = strict_client(admin)
    page = client.get("/accounts/me/").content.decode()
    token = re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', page).group(1)
    assert (
        client.post("/accounts/groups/", {"name": "no-header"}, HTTP_HX_REQUEST="true").status_code
        == 403
    )
    response = client.post(
        "/accounts/groups/", {"name": "with-header"}, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 302


def test_a_browser_api_call_needs_the_csrf_token_but_the_command_line_does_not(admin):
    """A certificate is sent by the browser to any site's form that posts to Glint, like a
    cookie."""
    browser = strict_client(admin)
    cross_site = browser.post(
        "/api/v1/groups/",
        {"name": "from-evil"},
        HTTP_ORIGIN="https://evil.example",
        HTTP_SEC_FETCH_SITE="cross-site",
    )
    assert cross_site.status_code == 403
    assert not Group.objects.filter(name="from-evil").exists()
    cli = CertificateClient(certificate_for("Ada Admin")[0])
    assert (
        cli.post(
            "/api/v1/groups/", {"name": "from-cli"}, content_type="application/json"
        ).status_code
        == 201
    )


def test_security_headers_on_every_page(admin):
    response = strict_client(admin).get("/accounts/me/")
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response  # plain HTTP (development): no HSTS
    secure = strict_client(admin).get("/accounts/me/", secure=True)
    assert secure["Strict-Transport-Security"].startswith("max-age=31536000")


@pytest.mark.parametrize(
    "url",
    [
        "/accounts/me/",
        "/accounts/users/",
        "/accounts/groups/",
        "/accounts/requests/",
        "/audit/",
        "/repos/",
        "/images/",
    ],
)
def test_pages_hold_no_inline_script_or_style_the_csp_would_block(admin, url):
    page = strict_client(admin).get(url).content.decode()
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert scripts and all("src=" in tag for tag in scripts), scripts
    assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=", page)
    assert '<meta name="htmx-config" content=\'{"includeIndicatorStyles": false}\'>' in page


def test_cookies_are_secure_and_http_only(admin):
    client = strict_client(admin)
    token = csrf_token_of(client)
    response = client.post("/accounts/me/", {"default_group": "", "csrfmiddlewaretoken": token})
    assert response.cookies, "a message or CSRF cookie was expected"
    for morsel in response.cookies.values():
        assert morsel["secure"] and morsel["httponly"], morsel.key
    assert client.cookies["csrftoken"]["secure"] and client.cookies["csrftoken"]["httponly"]


@override_settings(GLINT_API_RATE_LIMIT="3/minute")
def test_api_rate_limit_per_person_answers_429_with_retry_after(admin):
    cache.clear()
    api = CertificateClient(certificate_for("Ada Admin")[0])
    assert [api.get("/api/v1/whoami/").status_code for _ in range(3)] == [200, 200, 200]
    limited = api.get("/api/v1/whoami/")
    assert limited.status_code == 429 and 0 < int(limited["Retry-After"]) <= 60
    other = CertificateClient(certificate_for("Bo Busy")[0])
    make_user("Bo Busy")
    assert other.get("/api/v1/whoami/").status_code == 200  # per person, not global
    cache.clear()


def test_every_response_has_a_request_id_that_the_audit_record_shares(admin):
    client = CertificateClient(certificate_for("Ada Admin")[0])
    first, second = client.get("/api/v1/whoami/"), client.get("/api/v1/whoami/")
    assert (
        re.fullmatch(r"[0-9a-f]{32}", first["X-Request-ID"])
        and first["X-Request-ID"] != second["X-Request-ID"]
    )
    spoofed = client.post(
        "/api/v1/groups/",
        {"name": "traced"},
        content_type="application/json",
        HTTP_X_REQUEST_ID="chosen-by-client",
    )
    assert spoofed["X-Request-ID"] != "chosen-by-client"  # only a trusted proxy's id is reused
    assert (
        AuditRecord.objects.get(action="group.add", group_name="traced").request_id
        == spoofed["X-Request-ID"]
    )


@override_settings(GLINT_TRUSTED_PROXIES=["127.0.0.1"])
def test_a_trusted_proxy_request_id_is_kept(admin):
    from tests.clients import CertificateClient as Client

    response = Client(certificate_for("Ada Admin")[0]).get(
        "/api/v1/whoami/", HTTP_X_REQUEST_ID="nginx-abc123"
    )
    assert response["X-Request-ID"] == "nginx-abc123"
