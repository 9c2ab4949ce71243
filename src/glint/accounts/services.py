"""Account operations shared by the command line, the admin pages and the API.

Every operation that a person triggers takes the ``actor`` and checks their right here, so a page
and an API call cannot disagree. The rules:

- Admins manage people, groups and access requests; only an admin sets the admin flag.
- A group's managers (and admins) manage its members and their roles.
- Nobody changes their own admin flag, role, membership or account through Glint (only
  ``glint user add`` on the server can): so nobody raises their own rights, and the last admin
  cannot lock everyone out by accident.

Each operation writes an audit record (``glint.audit``), refusals included.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models.deletion import Collector, ProtectedError

from glint import audit, validators
from glint.accounts.choices import CopiesRunAt, RawCopiesFormat, Role
from glint.accounts.dn import canonical_from_string
from glint.accounts.models import AccessRequest, Group, Membership, TokenIdentity, User


class AccountError(Exception):
    """An account operation was refused; the message says why."""


def _refuse(action: str, message: str, *, details: dict | None = None, **refs) -> None:
    audit.record(
        action, outcome=audit.REFUSED, details={**(details or {}), "reason": message}, **refs
    )
    raise PermissionDenied(message)


def _require_admin(actor: User, action: str, **refs) -> None:
    if not actor.is_admin:
        _refuse(action, "Only Glint admins may do this.", **refs)


def _require_manager(actor: User, group: Group, action: str) -> None:
    if actor.role_in(group) != Role.MANAGER:
        _refuse(
            action, "Only managers of this group (or admins) may change its members.", group=group
        )


def _refuse_self(actor: User, target: User, action: str, **refs) -> None:
    if actor.pk == target.pk:
        _refuse(
            action,
            "Nobody can change their own account, role or membership; "
            "ask another admin or manager.",
            **refs,
        )


# Command line (the server's own operator: no actor) -------------------------------------------


@transaction.atomic
def add_user(
    dn: str, *, admin: bool = False, group_name: str | None = None, role: str = Role.MEMBER
):
    """Add (or update) a person by DN; returns (user, created). ``glint user add``."""
    canonical = canonical_from_string(dn)
    user, created = User.objects.get_or_create(dn=canonical)
    if created:
        user.set_unusable_password()
    if admin:
        user.is_admin = True
    user.save()
    group = None
    if group_name:
        group = Group.objects.filter(name=group_name).first()
        if group is None:
            raise AccountError(
                f"there is no group named {group_name!r} (create it with `glint group add`)"
            )
        Membership.objects.update_or_create(user=user, group=group, defaults={"role": role})
    AccessRequest.objects.filter(dn=canonical).delete()
    audit.record(
        "user.add" if created else "user.update",
        user=None,
        group=group,
        details={"dn": canonical, "admin": user.is_admin, "role": role if group else None},
    )
    return user, created


def add_group(
    name: str,
    description: str = "",
    copies_run_at: str = CopiesRunAt.TARGET,
    raw_copies_format: str = RawCopiesFormat.RAW,
) -> Group:
    """``glint group add``."""
    group = _new_group(name, description, copies_run_at, raw_copies_format)
    audit.record("group.add", user=None, group=group)
    return group


def link_token_identity(user: User, issuer: str, subject: str) -> TokenIdentity:
    """Let bearer tokens of ``issuer`` with ``sub`` = ``subject`` sign in as ``user`` (command
    line)."""
    issuer, subject = issuer.strip(), subject.strip()
    if not issuer or not subject:
        raise AccountError("a token identity needs an issuer and a subject")
    existing = TokenIdentity.objects.filter(issuer=issuer, subject=subject).first()
    if existing and existing.user_id != user.pk:
        raise AccountError(f"{subject} of {issuer} already signs in as {existing.user.dn}")
    identity, _ = TokenIdentity.objects.get_or_create(
        issuer=issuer, subject=subject, defaults={"user": user}
    )
    audit.record(
        "user.token_link", user=None, details={"dn": user.dn, "issuer": issuer, "subject": subject}
    )
    return identity


# People -------------------------------------------------------------------------------------------


def create_user(actor: User, dn: str) -> User:
    """An admin adds a person by DN (any accepted DN form; see ``glint.accounts.dn``)."""
    _require_admin(actor, "user.add")
    canonical = canonical_from_string(dn)
    if User.objects.filter(dn=canonical).exists():
        raise AccountError(f"{canonical} is already a Glint user")
    with transaction.atomic():
        user = User.objects.create_user(canonical)
        AccessRequest.objects.filter(dn=canonical).delete()
    audit.record("user.add", details={"dn": canonical})
    return user


def update_user(
    actor: User, user: User, *, is_admin: bool | None = None, is_active: bool | None = None
) -> User:
    """An admin sets another person's admin flag or deactivates/reactivates them."""
    refs = {"details": {"dn": user.dn}}
    _require_admin(actor, "user.update", **refs)
    _refuse_self(actor, user, "user.update", **refs)
    changes = {}
    if is_admin is not None and is_admin != user.is_admin:
        changes["is_admin"] = is_admin
    if is_active is not None and is_active != user.is_active:
        changes["is_active"] = is_active
    if changes:
        User.objects.filter(pk=user.pk).update(**changes)
        user.refresh_from_db()
        audit.record("user.update", details={"dn": user.dn, **changes})
    return user


def delete_user(actor: User, user: User) -> None:
    _require_admin(actor, "user.delete", details={"dn": user.dn})
    _refuse_self(actor, user, "user.delete", details={"dn": user.dn})
    dn = user.dn
    user.delete()
    audit.record("user.delete", details={"dn": dn})


def set_default_group(user: User, group: Group | None) -> None:
    """A person's own default group (a preference, not a right: only groups they can see)."""
    if group is not None and not user.visible_groups().filter(pk=group.pk).exists():
        raise PermissionDenied("You can only choose a group you belong to.")
    User.objects.filter(pk=user.pk).update(default_group=group)


# Groups -------------------------------------------------------------------------------------------


def _check_group_name(name: str) -> None:
    if not name:
        raise AccountError("a group needs a name")
    problem = validators.text_problem(name)
    if problem:
        raise AccountError(problem)


def _new_group(name: str, description: str, copies_run_at: str, raw_copies_format: str) -> Group:
    name = name.strip()
    _check_group_name(name)
    if Group.objects.filter(name=name).exists():
        raise AccountError(f"a group named {name!r} already exists")
    return Group.objects.create(
        name=name,
        description=description,
        copies_run_at=_copies_run_at(copies_run_at),
        raw_copies_format=_raw_copies_format(raw_copies_format),
    )


def _copies_run_at(value: str) -> str:
    if value not in CopiesRunAt.values:
        raise AccountError(f"copies run at {' or '.join(CopiesRunAt.values)}, not {value!r}")
    return value


def _raw_copies_format(value: str) -> str:
    if value not in RawCopiesFormat.values:
        raise AccountError(
            f"copies from raw-only clouds are stored as {' or '.join(RawCopiesFormat.values)}, "
            f"not {value!r}"
        )
    return value


def create_group(
    actor: User,
    name: str,
    description: str = "",
    copies_run_at: str = CopiesRunAt.TARGET,
    raw_copies_format: str = RawCopiesFormat.RAW,
) -> Group:
    _require_admin(actor, "group.add")
    group = _new_group(name, description, copies_run_at, raw_copies_format)
    audit.record("group.add", group=group)
    return group


def update_group(
    actor: User,
    group: Group,
    *,
    name: str,
    description: str,
    copies_run_at: str,
    raw_copies_format: str,
) -> Group:
    """Rename a group, change its description, where its copies run, or the format its copies
    from raw-only clouds are stored in (admins)."""
    _require_admin(actor, "group.update", group=group)
    name = name.strip()
    _check_group_name(name)
    if Group.objects.filter(name=name).exclude(pk=group.pk).exists():
        raise AccountError(f"a group named {name!r} already exists")
    old_name = group.name
    group.name, group.description = name, description
    group.copies_run_at = _copies_run_at(copies_run_at)
    group.raw_copies_format = _raw_copies_format(raw_copies_format)
    group.save(update_fields=["name", "description", "copies_run_at", "raw_copies_format"])
    audit.record(
        "group.update",
        group=group,
        details={
            "old_name": old_name,
            "name": name,
            "copies_run_at": group.copies_run_at,
            "raw_copies_format": group.raw_copies_format,
        },
    )
    return group


def group_deletion_effects(group: Group) -> list[str]:
    """What deleting ``group`` takes with it, in words: its repos by name, then counts of every
    row."""
    collector = Collector(using="default")
    try:
        collector.collect([group])
    except ProtectedError as exc:
        return [f"{len(exc.protected_objects)} other rows refer to it and prevent the deletion."]
    effects = []
    repos = sorted(repo.name for repo in group.repos.all())
    if repos:
        effects.append(
            f"Its {len(repos)} repo(s): {', '.join(repos)} (nothing is deleted in the clouds)."
        )
    counts = [(model, len(instances)) for model, instances in collector.data.items()]
    counts += [(queryset.model, queryset.count()) for queryset in collector.fast_deletes]
    for model, count in sorted(counts, key=lambda item: str(item[0]._meta.verbose_name_plural)):
        if count and model is not Group and model._meta.label != "repos.Repo":
            effects.append(f"{count} {model._meta.verbose_name_plural}.")
    return effects


def delete_group(actor: User, group: Group) -> None:
    """Delete a group with its repos, memberships and inventory (admins). Clouds are not touched."""
    _require_admin(actor, "group.delete", group=group)
    effects = group_deletion_effects(group)
    name, pk = group.name, group.pk
    group.delete()
    group.pk = pk  # the audit record keeps the deleted group's id and name
    group.name = name
    audit.record("group.delete", group=group, details={"effects": effects})


# Memberships -------------------------------------------------------------------------------------


def set_membership(actor: User, group: Group, user: User, role: str = Role.MEMBER) -> Membership:
    """Add ``user`` to ``group`` with ``role``, or change their role (the group's managers,
    admins)."""
    _require_manager(actor, group, "membership.set")
    _refuse_self(actor, user, "membership.set", group=group, details={"dn": user.dn})
    if role not in Role.values:
        raise AccountError(f"unknown role {role!r} (choose {', '.join(Role.values)})")
    membership, created = Membership.objects.update_or_create(
        user=user, group=group, defaults={"role": role}
    )
    audit.record(
        "membership.add" if created else "membership.role",
        group=group,
        details={"dn": user.dn, "role": role},
    )
    return membership


def add_member_by_dn(actor: User, group: Group, dn: str, role: str = Role.MEMBER) -> Membership:
    """Add a person to ``group`` by DN, registering them if Glint does not know them yet.

    A manager may do this for their own group: the new person gets access to that group only.
    """
    _require_manager(actor, group, "membership.set")
    canonical = canonical_from_string(dn)
    _refuse_self(
        actor,
        User(
            dn=canonical, pk=User.objects.filter(dn=canonical).values_list("pk", flat=True).first()
        ),
        "membership.set",
        group=group,
        details={"dn": canonical},
    )
    with transaction.atomic():
        user, created = User.objects.get_or_create(dn=canonical)
        if created:
            user.set_unusable_password()
            user.save()
            audit.record("user.add", group=group, details={"dn": canonical})
        AccessRequest.objects.filter(dn=canonical).delete()
        return set_membership(actor, group, user, role)


def remove_membership(actor: User, membership: Membership) -> None:
    group, user = membership.group, membership.user
    _require_manager(actor, group, "membership.remove")
    _refuse_self(actor, user, "membership.remove", group=group, details={"dn": user.dn})
    membership.delete()
    audit.record("membership.remove", group=group, details={"dn": user.dn})


# Access requests ---------------------------------------------------------------------------------


def note_access_request(dn: str, issuer_dn: str) -> None:
    """A valid but unknown certificate visited: keep (or refresh) its request; audit the first
    visit."""
    _request, created = AccessRequest.objects.update_or_create(
        dn=dn, defaults={"issuer_dn": issuer_dn}
    )
    if created:
        audit.record("access.request", user=None, dn=dn, details={"issuer_dn": issuer_dn})


def approve_request(
    actor: User, access_request: AccessRequest, group: Group, role: str = Role.MEMBER
) -> User:
    """Register the requesting DN and put them in ``group`` (admins)."""
    _require_admin(actor, "access.approve", group=group, details={"dn": access_request.dn})
    with transaction.atomic():
        user, created = User.objects.get_or_create(dn=access_request.dn)
        if created:
            user.set_unusable_password()
            user.save()
        Membership.objects.update_or_create(user=user, group=group, defaults={"role": role})
        access_request.delete()
    audit.record("access.approve", group=group, details={"dn": user.dn, "role": role})
    return user


def dismiss_request(actor: User, access_request: AccessRequest) -> None:
    """Forget a request (admins). The DN may ask again by visiting again."""
    _require_admin(actor, "access.dismiss", details={"dn": access_request.dn})
    dn = access_request.dn
    access_request.delete()
    audit.record("access.dismiss", details={"dn": dn})
