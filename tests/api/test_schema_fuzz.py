"""The API fuzzed from its own OpenAPI schema (schemathesis): no generated request answers 5xx.

Every operation of ``/api/v1/schema/`` gets a bounded number of generated requests (valid and
invalid parameters, bodies and headers), sent to Django's WSGI application in this process as
an admin who manages a group with a repo, an image, a job and an upload in it. Nothing leaves the
process: the repo's cloud is an address the network guard refuses, so an operation that asks a
cloud gets a 4xx like any refused cloud.

``GLINT_FUZZ_EXAMPLES`` sets the examples per operation (default 25: about two minutes on two
cores); the run is derandomized, so a failure reproduces (the message has the curl command).
"""

from __future__ import annotations

import json
import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from glint import audit
from glint.jobs import states
from glint.jobs.models import Job, JobTarget
from glint.transfers import services as transfers
from tests.clients import certificate_for, make_user
from tests.plans.helpers import add_image, add_repo

EXAMPLES = int(os.environ.get("GLINT_FUZZ_EXAMPLES", "25"))


def signed_in(app, cert):
    """``app`` as ``glint serve`` runs it after the TLS handshake: with the verified chain."""

    def application(environ, start_response):
        environ["glint.client_chain"] = [cert]
        return app(environ, start_response)

    return application


@pytest.fixture
def keep_the_test_connection():
    """What Django's test client does: a finished request must not close the connection that holds
    the test's transaction."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


def _openapi() -> dict:
    """The schema ``/api/v1/schema/`` serves, as JSON (made here: collection has no database)."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document))


schema = schemathesis.openapi.from_dict(_openapi())


@pytest.fixture
def app(db, group_a, settings, keep_the_test_connection):
    """Django's WSGI application, signed in as an admin who manages a group with one of each."""
    from glint.wsgi import application

    settings.GLINT_API_RATE_LIMIT = "off"
    admin = make_user("Fuzz Admin", admin=True, group=group_a, role="manager")
    repo = add_repo(group_a, "one", "project-one")
    add_image(repo, "fuzzed")
    job = Job.objects.create(
        kind=states.COPY,
        group=group_a,
        source_repo=repo,
        source_image_id="image-1",
        image_name="fuzzed",
        row_key="fuzzed",
        state=states.FAILED,
    )
    JobTarget.objects.create(job=job, repo=repo, repo_name=repo.name)
    transfers.create_upload(group_a, requester=admin, targets=[repo], name="fuzzed")
    audit.record("test.fuzz", group=group_a)
    cert, _key = certificate_for("Fuzz Admin")
    return signed_in(application, cert)


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_generated_request_answers_5xx(case, app):
    response = case.call(app=app)
    assert response.status_code < 500, (
        f"{response.status_code} for\n{case.as_curl_command()}\n{response.text[:2000]}"
    )


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/repos/", "/api/v1/repos/import/"])
def test_a_body_that_is_not_an_object_is_a_4xx(group_a, path):
    """Found by the fuzz: ``[null, null]`` answered 500 (the view read ``group`` from a list)."""
    from tests.clients import client_for

    client = client_for(make_user("Array Admin", admin=True, group=group_a, role="manager"))
    response = client.post(path, json.dumps([None, None]), content_type="application/json")
    assert 400 <= response.status_code < 500, response.content
