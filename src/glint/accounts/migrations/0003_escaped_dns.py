"""Rewrite stored DNs into the escaped canonical form (issue 12, item 1; ``glint.accounts.dn``).

Before this migration Glint wrote ``/``, ``+`` and ``\\`` inside attribute values as they are, so
one stored string could stand for several RDN sequences: ``/C=CA/O=Test Grid/OU=Admins/CN=Sec
Admin`` was both the four-RDN admin and a certificate whose O is ``Test Grid/OU=Admins``, and
``/CN=Doe, John+UID=jd`` both a multi-valued RDN and a CN holding ``+UID=jd``. Each of those
certificates signed in as the one row. From now on a value's ``\\``, ``/`` and ``+`` are
backslash-escaped (and a few invisible characters hex-escaped), so every RDN sequence has its own
key. This migration rewrites ``accounts_user.dn`` and ``accounts_accessrequest.dn`` /
``issuer_dn``.

**Ambiguous rows.** A stored string does not say which RDN sequence it came from, and nothing else
in the database does either, so each row is read the one way old Glint itself read DNs: a ``/``
or ``+`` followed by an attribute name as Glint printed it (``OU=``, ``UID=``, a dotted OID…)
separates RDNs or AVAs; any other ``/``, ``+`` or ``\\`` is part of the value. That is the reading
every DN typed into ``glint user add``, the pages or the API always had, so a row keeps the person
an admin meant: ``/C=CA/O=Test Grid/OU=Admins/CN=Sec Admin`` stays the four-RDN admin, and
``/CN=host/node.example.org`` becomes ``/CN=host\\/node.example.org``, the key of that host
certificate. One refinement keeps two rows from ever landing on one key: an RDN whose parts are not
in the sorted order old Glint always wrote a multi-valued RDN in cannot have been one, so it is
read as a single value (``UID=jd+CN=x`` stays one UID value, ``UID=jd\\+CN=x``).

What that means for people: nobody gains access. Each row now matches only the certificate with
exactly that RDN sequence, where before it also let in the look-alikes. A look-alike that signed in
to such a row (the one-RDN ``O=Test Grid/OU=Admins``, the single-valued ``CN=Doe, John+UID=jd``)
is now an unknown certificate: it is refused with the "not added yet" page and leaves an access
request under its own, escaped DN, which an admin can approve if that person is genuine. An access
request stored before this migration is read the same way; if it came from a look-alike, the
certificate files a new, correct one on its next visit.

A row whose DN cannot be read at all, or whose new DN would be longer than ``MAX_DN_LENGTH``
(1,024 characters; SQLite accepted 25 KB DNs through the membership API), keeps its old string:
such a user is deactivated (kept for the audit trail), such an access request is deleted. No
certificate Glint accepts can match either.

Reversing writes the old, unescaped form back where that string is still free.
"""

import logging
import re
import unicodedata

from django.db import migrations

logger = logging.getLogger("glint.accounts")

MAX_DN_LENGTH = 1024

# The attribute names old Glint wrote (glint.accounts.dn.SHORT_NAMES as it stood), frozen here.
OLD_SHORT_NAMES = (
    "C",
    "ST",
    "L",
    "O",
    "OU",
    "CN",
    "DC",
    "UID",
    "emailAddress",
    "serialNumber",
    "street",
    "title",
    "GN",
    "SN",
    "pseudonym",
    "generationQualifier",
    "dnQualifier",
    "postalCode",
    "businessCategory",
)
_NAME = r"(?:{}|[0-9]+(?:\.[0-9]+)+)".format(
    "|".join(re.escape(name) for name in sorted(OLD_SHORT_NAMES, key=len, reverse=True))
)
_RDN_SPLIT = re.compile(rf"/(?={_NAME}=)")
_AVA_SPLIT = re.compile(rf"\+(?={_NAME}=)")
_AVA = re.compile(rf"({_NAME})=(.*)", re.DOTALL)
_INVISIBLE = ("Cc", "Cf", "Zl", "Zp")


class Unreadable(ValueError):
    pass


def read_old(dn: str) -> list[list[tuple[str, str]]]:
    """The RDN sequence an old, unescaped canonical DN stands for (as old Glint read it)."""
    if not _RDN_SPLIT.match(dn):
        raise Unreadable(dn)
    rdns = []
    for rdn_text in _RDN_SPLIT.split(dn)[1:]:
        avas = []
        for ava_text in _AVA_SPLIT.split(rdn_text):
            match = _AVA.fullmatch(ava_text)
            avas.append((match.group(1), match.group(2)))
        if avas != sorted(avas):  # old Glint sorted a multi-valued RDN: this was one value
            match = _AVA.fullmatch(rdn_text)
            avas = [(match.group(1), match.group(2))]
        rdns.append(avas)
    return rdns


def _escape(value: str) -> str:
    """A value in the new canonical form (glint.accounts.dn._escape_canonical as introduced
    here)."""
    if any("\ud800" <= char <= "\udfff" for char in value):
        raise Unreadable(value)
    out = []
    for char in value:
        if char in "\\/+":
            out.append("\\" + char)
        elif unicodedata.category(char) in _INVISIBLE:
            out.append("".join(f"\\x{byte:02X}" for byte in char.encode("utf-8")))
        else:
            out.append(char)
    text = "".join(out)
    if value.startswith("#"):
        text = "\\" + text
    if value.endswith(" "):
        text = text[:-1] + "\\x20"
    return text


def new_form(old: str) -> str:
    """The new canonical form of an old stored DN; ``Unreadable`` when there is none."""
    rdns = read_old(old)
    new = "".join(
        "/" + "+".join(f"{name}={value}" for name, value in sorted((n, _escape(v)) for n, v in rdn))
        for rdn in rdns
    )
    if len(new) > MAX_DN_LENGTH:
        raise Unreadable(old)
    return new


_ESCAPE = re.compile(r"((?:\\x[0-9A-Fa-f]{2})+)|\\(.)", re.DOTALL)


def old_form(new: str) -> str:
    """The old, unescaped form of a new canonical DN (for reversing)."""

    def plain(match):
        if match.group(1):
            return bytes.fromhex(match.group(1).replace("\\x", "")).decode("utf-8", "replace")
        return match.group(2)

    return _ESCAPE.sub(plain, new)


def _rewrite(model, field: str, convert, unreadable, *, unique: bool) -> None:
    """Give every row ``convert(old)``; rows ``convert`` refuses keep their value and go to
    ``unreadable``.

    With ``unique``, a row whose new value another row would also hold keeps its old value too (and
    goes to ``unreadable``); this cannot happen for rows ``read_old`` reads, only against rows kept
    as they were. Changed rows move in two passes, so none briefly takes a value another still
    holds.
    """
    olds = dict(model.objects.values_list("pk", field))
    final, refused = {}, set()
    for pk, old in olds.items():
        try:
            final[pk] = convert(old)
        except Unreadable:
            final[pk] = old
            refused.add(pk)
    while unique:
        holders = {}
        for pk, value in final.items():
            holders.setdefault(value, []).append(pk)
        clashes = [
            pk for pks in holders.values() if len(pks) > 1 for pk in pks if final[pk] != olds[pk]
        ]
        if not clashes:
            break
        for pk in clashes:
            final[pk] = olds[pk]
            refused.add(pk)
    for pk in sorted(refused):
        unreadable(pk, olds[pk])
    changes = {pk: value for pk, value in final.items() if value != olds[pk]}
    if unique:
        for pk in changes:
            model.objects.filter(pk=pk).update(**{field: f"#migrating {pk}"})
    for pk, new in changes.items():
        model.objects.filter(pk=pk).update(**{field: new})
        logger.warning(
            "accounts: %s #%s %s rewritten: %r -> %r",
            model._meta.model_name,
            pk,
            field,
            olds[pk],
            new,
        )


def forwards(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    AccessRequest = apps.get_model("accounts", "AccessRequest")

    def deactivate(pk, old):
        User.objects.filter(pk=pk).update(is_active=False)
        logger.warning(
            "accounts: user #%s deactivated: the DN %r has no canonical form", pk, old[:200]
        )

    def forget(pk, old):
        AccessRequest.objects.filter(pk=pk).delete()
        logger.warning(
            "accounts: access request #%s deleted: the DN %r has no canonical form", pk, old[:200]
        )

    def keep_issuer(pk, old):
        pass  # an issuer only labels the request; left as it was

    _rewrite(User, "dn", new_form, deactivate, unique=True)
    _rewrite(AccessRequest, "dn", new_form, forget, unique=True)
    _rewrite(
        AccessRequest, "issuer_dn", lambda dn: new_form(dn) if dn else dn, keep_issuer, unique=False
    )


def backwards(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    AccessRequest = apps.get_model("accounts", "AccessRequest")

    def keep(pk, value):
        pass  # a string another row keeps: this row stays in the new form

    _rewrite(User, "dn", old_form, keep, unique=True)
    _rewrite(AccessRequest, "dn", old_form, keep, unique=True)
    _rewrite(AccessRequest, "issuer_dn", old_form, keep, unique=False)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_tokenidentity"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
    ]
