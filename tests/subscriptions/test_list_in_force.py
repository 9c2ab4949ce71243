"""The list in force, without a cloud: it stays in force while refreshes are refused, and once it
expires the subscription says so and its images get the subscription's ``on_removal``; a signed
list that is not JSON is refused like any other bad list; the expected endorser may be typed in
any DN spelling Glint takes for people; a row a person hid stays hidden across refreshes.

The target repos are offline records (their uploads are never run here); Glint's copies are
written as a poll would see them, carrying the list's properties.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from glint.jobs.matrix import group_matrix
from glint.jobs.models import Job
from glint.subscriptions.models import Subscription
from glint.transfers.models import Upload
from tests.clients import client_for, make_user
from tests.pki import make_user_cert
from tests.plans.helpers import add_image, add_repo, row_of
from tests.subscriptions.helpers import LIST_PATH, glint_copy, publish, refreshed, subscribe
from tests.subscriptions.lists import Endorser, image

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def offline(group_a, trust):
    """(the trusted endorser, a manager of the group, an offline repo of the group)."""
    _directory, endorser, _revoked, _other = trust
    manager = make_user("List Manager", group=group_a, role="manager")
    return endorser, manager, add_repo(group_a, "offline", "p1")


@pytest.mark.parametrize("on_removal", ["delete", "hide", "keep"])
def test_an_expired_list_in_force_says_so_and_its_images_get_on_removal(
    group_a, offline, web, on_removal
):
    endorser, manager, target = offline
    listed = image("short-lived", b"s" * 1000)
    expires = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=2)
    publish(web, endorser, [listed], version="1", expires=expires)
    subscription = subscribe(manager, group_a, [target], web, endorser, on_removal=on_removal)
    assert refreshed(subscription).ok
    copy = glint_copy(target, subscription, listed)
    add_image(target, "someone-else", listed.data + b"!")
    # A refresh the publisher does not answer: the list in force stays, and so do its images.
    del web.files[LIST_PATH]
    refused = refreshed(subscription)
    assert not refused.ok and "cannot be fetched" in refused.error, refused.error
    assert refused.removed == [] and not Job.objects.filter(kind="delete").exists()
    subscription.refresh_from_db()
    assert subscription.list_version == "1", "the last good list stays in force"

    uploads = Upload.objects.count()
    time.sleep(max(0.0, (expires - dt.datetime.now(dt.UTC)).total_seconds()) + 1)
    publish(web, endorser, [listed], version="1", expires=expires)  # the publisher's stale list
    result = refreshed(subscription)

    assert not result.ok and "The list expired on" in result.error, result.error
    subscription.refresh_from_db()
    assert (subscription.last_refresh_ok, subscription.last_error) == (False, result.error)
    page = client_for(manager).get(f"/subscriptions/{subscription.pk}/").content.decode()
    assert "The list expired on" in page
    assert "the list in force expired" in page, "the page says the list in force is over"
    assert result.removed == ([] if on_removal == "keep" else ["short-lived"])
    deletes = list(Job.objects.filter(kind="delete"))
    if on_removal == "delete":
        (job,) = deletes
        assert [t.image_id for t in job.targets.all()] == [copy.image_id], (
            "only Glint's copy goes, not someone's image of another name"
        )
    else:
        assert deletes == [], "nothing is deleted"
    assert row_of(group_a, "short-lived").hidden is (on_removal == "hide")
    assert row_of(group_a, "someone-else").hidden is False
    assert Upload.objects.count() == uploads, "nothing is fetched for an expired list"


def test_a_signed_list_that_is_not_json_is_refused_and_changes_nothing(group_a, offline, web):
    endorser, manager, target = offline
    listed = image("one", b"1" * 1000)
    publish(web, endorser, [listed], version="3")
    subscription = subscribe(manager, group_a, [target], web, endorser)
    assert refreshed(subscription).ok
    glint_copy(target, subscription, listed)
    jobs, uploads = Job.objects.count(), Upload.objects.count()

    web.add(LIST_PATH, endorser.sign(b'{"hv:imagelist": {"hv:version": "4", '))
    result = refreshed(subscription)

    assert not result.ok and result.error.startswith("The list is not JSON: "), result.error
    subscription.refresh_from_db()
    assert (subscription.last_refresh_ok, subscription.last_error) == (False, result.error)
    assert subscription.list_version == "3" and [
        i["hv:image"]["dc:identifier"]
        for i in subscription.list_document["hv:imagelist"]["hv:images"]
    ] == [listed.identifier], "the last good list stays in force"
    assert (Job.objects.count(), Upload.objects.count()) == (jobs, uploads), "nothing started"
    assert row_of(group_a, "one").hidden is False


def multi_valued_endorser(ca) -> Endorser:
    """An endorser whose last RDN has two AVAs (CN+UID), so their order can differ in input."""
    subject = x509.Name(
        [
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "CA")]),
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Glint Test Grid")]
            ),
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "Image Publisher"),
                    x509.NameAttribute(NameOID.USER_ID, "pub"),
                ]
            ),
        ]
    )
    cert, key = make_user_cert(ca, "Image Publisher", subject=subject)
    return Endorser(ca, cert, key)


@pytest.mark.parametrize(
    "spelling",
    [
        "rfc4514",  # as cryptography and most web pages print it, most specific RDN first
        "spaced",  # RFC 4514 with spaces after the commas
        "ava-order",  # the multi-valued RDN's AVAs in the other order
    ],
)
def test_the_endorser_may_be_given_in_another_dn_spelling(group_a, trust, web, spelling):
    directory, _good, _revoked, _other = trust
    endorser = multi_valued_endorser(_good.ca)
    assert endorser.dn == "/C=CA/O=Glint Test Grid/CN=Image Publisher+UID=pub", endorser.dn
    subject = {
        "rfc4514": "CN=Image Publisher+UID=pub,O=Glint Test Grid,C=CA",
        "spaced": "UID=pub+CN=Image Publisher, O=Glint Test Grid, C=CA",
        "ava-order": "/C=CA/O=Glint Test Grid/UID=pub+CN=Image Publisher",
    }[spelling]
    issuer = endorser.cert.issuer.rfc4514_string()
    manager = make_user("List Manager", group=group_a, role="manager")
    target = add_repo(group_a, "offline", "p1")
    publish(web, endorser, [image("one", b"1" * 1000)])
    subscription = Subscription(group=group_a, name="spelt otherwise")
    from glint.subscriptions import services

    services.save_subscription(
        manager,
        subscription,
        targets=[target],
        url=web.url(LIST_PATH),
        endorser_dn=subject,
        endorser_ca=issuer,
    )

    result = refreshed(subscription)

    assert result.ok, result.error
    subscription.refresh_from_db()
    assert (subscription.endorser_dn, subscription.endorser_ca) == (endorser.dn, endorser.ca_dn)
    assert subscription.list_version == "1"


def test_a_list_naming_its_endorser_in_rfc4514_form_is_accepted(group_a, offline, web):
    endorser, manager, target = offline
    listed_endorser = (
        endorser.cert.subject.rfc4514_string(),
        endorser.cert.issuer.rfc4514_string(),
    )
    publish(web, endorser, [image("one", b"1" * 1000)], listed_endorser=listed_endorser)
    subscription = subscribe(manager, group_a, [target], web, endorser)

    result = refreshed(subscription)

    assert result.ok, result.error


def test_a_row_a_person_hid_stays_hidden_across_refreshes(group_a, offline, web):
    endorser, manager, target = offline
    hidden, shown = image("hidden", b"h" * 1000), image("shown", b"w" * 1000)
    publish(web, endorser, [hidden, shown], version="1")
    subscription = subscribe(manager, group_a, [target], web, endorser)
    assert refreshed(subscription).ok
    for listed in (hidden, shown):
        glint_copy(target, subscription, listed)
    client = client_for(manager)
    row = row_of(group_a, "hidden")
    answer = client.post(f"/images/{row.id}/hide/?group={group_a.pk}")
    assert answer.status_code == 302, answer.content
    assert row_of(group_a, "hidden").hidden is True

    again = refreshed(subscription)
    assert again.ok and sorted(again.present) == ["hidden", "shown"], again
    publish(web, endorser, [hidden, shown, image("new", b"n" * 1000)], version="2")
    newer = refreshed(subscription)

    assert newer.ok and list(newer.fetching) == ["new"], newer
    rows = {row.name: row for row in group_matrix(group_a).rows}
    assert rows["hidden"].hidden is True, "a refresh does not show a row a person hid"
    assert rows["shown"].hidden is False
    assert subscription.fetched_images.filter(identifier=hidden.identifier).count() == 1, (
        "the hidden row's image is not fetched again"
    )
