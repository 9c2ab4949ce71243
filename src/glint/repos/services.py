"""Repo operations shared by the pages, the API and the command line.

Every change that can make a repo unusable is checked against the cloud first (``driver.check()``):
a repo is saved only when its credentials, endpoint, CA bundle and project work, and a refusal
says exactly what failed, attached to the field a person has to correct.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.http import Http404

from glint import audit, validators
from glint.accounts.models import Group, User
from glint.replication import CloudError, Ec2Connection, ProjectInfo, RepoConnection
from glint.repos.choices import AuthType, CloudKind
from glint.repos.drivers import open_connection
from glint.repos.models import Repo

log = logging.getLogger(__name__)

#: Seconds a validation may wait for a connection and for an answer: long enough for a slow
#: Keystone, short enough that a person waiting on the form gets an answer.
CHECK_CONNECT_TIMEOUT = 10.0
CHECK_READ_TIMEOUT = 30.0
#: Clouds of one clouds.yaml validated at once.
IMPORT_CHECK_WORKERS = 8

# Which form field a failed check points at, by cloud kind and ``CloudError.code``.
_FIELD_OF_ERROR = {
    CloudKind.OPENSTACK: {
        "endpoint_unreachable": "auth_url",
        "endpoint_refused": "auth_url",
        "catalog_endpoint_refused": "interface",
        "tls_verification_failed": "ca_bundle",
        "catalog_error": "region",
        "project_not_found": "project_name",
    },
    CloudKind.EC2: {
        "endpoint_unreachable": "endpoint_url",
        "endpoint_refused": "endpoint_url",
    },
}


class RepoValidationError(Exception):
    """The cloud refused the repo as configured. ``field`` is the form field to fix, or None."""

    def __init__(self, message: str, *, field: str | None = None, code: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code

    def as_dict(self) -> dict[str, list[str]]:
        """The error as DRF and Django forms key it."""
        return {self.field or "non_field_errors": [self.message]}


# Visibility


def visible_repos(user: User):
    return Repo.objects.filter(group__in=user.visible_groups()).select_related("group")


def get_visible_repo(user: User, pk) -> Repo:
    """The repo ``pk`` if ``user`` may see its group; 404 otherwise (existence is not revealed)."""
    try:
        return visible_repos(user).get(pk=int(pk))
    except (Repo.DoesNotExist, ValueError, TypeError):
        raise Http404("No such repo.") from None


def shared_with(repos: Iterable[Repo], viewer: User) -> dict[int, list[str]]:
    """For each repo, the other groups that use the same cloud project.

    Groups the viewer is not in are not named: they appear as "another group".
    """
    repos = list(repos)
    keys = {repo.cloud_project for repo in repos if repo.cloud_project}
    if not keys:
        return {}
    visible = set(viewer.visible_groups().values_list("pk", flat=True))
    users_by_key: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for key, group_id, group_name in Repo.objects.filter(cloud_project__in=keys).values_list(
        "cloud_project", "group_id", "group__name"
    ):
        users_by_key[key].append((group_id, group_name))
    result = {}
    for repo in repos:
        labels = {
            name if group_id in visible else "another group"
            for group_id, name in users_by_key.get(repo.cloud_project, [])
            if group_id != repo.group_id
        }
        if labels:
            result[repo.pk] = sorted(labels)
    return result


# Checking against the cloud


def check_connection(connection: RepoConnection | Ec2Connection) -> ProjectInfo:
    """Authenticate and reach the image service once.

    Raises:
        RepoValidationError: with the driver's message and the field it concerns.
    """
    try:
        with open_connection(connection) as driver:
            return driver.check()
    except CloudError as exc:
        field = _FIELD_OF_ERROR.get(connection.kind, {}).get(exc.code)
        if field == "project_name" and not connection.project_name and connection.project_id:
            field = "project_id"
        raise RepoValidationError(exc.message, field=field, code=exc.code) from None
    except ValueError as exc:  # an unknown cloud kind
        raise RepoValidationError(str(exc), field="kind") from None


def check_repo(repo: Repo) -> ProjectInfo:
    """Check a repo's stored (or about to be stored) settings against its cloud."""
    try:
        connection = repo.connection(
            connect_timeout=CHECK_CONNECT_TIMEOUT, read_timeout=CHECK_READ_TIMEOUT
        )
    except ValueError as exc:  # the connection is incomplete
        raise RepoValidationError(str(exc)) from None
    return check_connection(connection)


def _drop_unused_secret(repo: Repo) -> None:
    """Keep only the secret of the chosen way to authenticate: an unused secret is a liability.

    (Another kind's secret is not dropped but refused by the model: it was sent by mistake.)"""
    if repo.kind != CloudKind.OPENSTACK:
        return
    if repo.auth_type == AuthType.APPLICATION_CREDENTIAL:
        repo.password = ""
    else:
        repo.application_credential_secret = ""


def save_repo(repo: Repo, cleared: Iterable[str] = ()) -> ProjectInfo:
    """Validate ``repo`` (model rules, then the cloud) and save it.

    Args:
        repo: The repo, with its changes.
        cleared: The stored secrets the change removes (``CLEARABLE_SECRETS``), named in the
            audit record.

    Raises:
        django.core.exceptions.ValidationError: A field is invalid.
        RepoValidationError: The cloud refused it; nothing was saved.
    """
    _drop_unused_secret(repo)
    action = "repo.add" if repo.pk is None else "repo.edit"
    repo.full_clean()
    try:
        project = check_repo(repo)
    except RepoValidationError as exc:
        audit.record(
            action,
            outcome=audit.FAILED,
            group=repo.group,
            details={"name": repo.name, "reason": exc.message},
        )
        raise
    repo.set_cloud_project(project.project_id)
    repo.save()
    details = {"project": project.project_id}
    if cleared:
        details["removed"] = sorted(cleared)
    audit.record(action, repo=repo, details=details)
    log.info(
        "repo %s of group %s saved (project %s)", repo.name, repo.group.name, project.project_id
    )
    return project


def validate_repo(repo: Repo) -> ProjectInfo:
    """The "Validate" button: check a saved repo and refresh the project it is tied to."""
    project = check_repo(repo)
    repo.set_cloud_project(project.project_id)
    Repo.objects.filter(pk=repo.pk).update(cloud_project=repo.cloud_project)
    return project


# Deleting

#: Functions ``(repo) -> list[str]`` describing what else deleting a repo does; other apps add
#: theirs with :func:`register_deletion_effect`. The jobs app registers one for the jobs that
#: target or read from the repo (they may refer to it by id in JSON, not by foreign key).
DELETION_EFFECTS: list[Callable[[Repo], list[str]]] = []


def register_deletion_effect(describe: Callable[[Repo], list[str]]) -> Callable[[Repo], list[str]]:
    DELETION_EFFECTS.append(describe)
    return describe


def related_rows_effect(repo: Repo) -> list[str]:
    """Rows of other apps that point at the repo by foreign key (inventory rows, for example)."""
    effects = []
    for relation in repo._meta.related_objects:
        count = relation.related_model._base_manager.filter(**{relation.field.name: repo}).count()
        if not count:
            continue
        label = relation.related_model._meta.verbose_name_plural
        on_delete = getattr(relation, "on_delete", None)
        if on_delete is models.CASCADE:
            effects.append(f"{count} {label} will be deleted.")
        elif on_delete is models.PROTECT or on_delete is models.RESTRICT:
            effects.append(f"{count} {label} refer to it and prevent the deletion.")
        else:
            effects.append(f"{count} {label} will no longer refer to it.")
    return effects


def deletion_effects(repo: Repo) -> list[str]:
    """Everything deleting ``repo`` does besides removing it, in words, for the confirmation
    page."""
    effects = related_rows_effect(repo)
    for describe in DELETION_EFFECTS:
        effects.extend(describe(repo))
    return effects


def delete_repo(repo: Repo) -> None:
    """Delete the repo and (by cascade) what only it needs. Nothing in the cloud is touched."""
    name, group = repo.name, repo.group.name
    gone = Repo(pk=repo.pk, name=name, group=repo.group)  # the audit record keeps its id and name
    repo.delete()
    audit.record("repo.delete", repo=gone)
    log.info("repo %s of group %s deleted", name, group)


# Importing clouds.yaml


class ImportStatus:
    ADDED = "added"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclasses.dataclass
class ImportResult:
    """What happened to one cloud of a clouds.yaml."""

    cloud: str
    status: str
    reason: str = ""
    repo: Repo | None = None


def parse_clouds_yaml(text: str) -> dict[str, dict]:
    """The ``clouds:`` mapping of a clouds.yaml text.

    Raises:
        RepoValidationError: The text is not YAML or has no ``clouds:`` mapping.
    """
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RepoValidationError(f"this is not valid YAML: {exc}", field="file") from None
    clouds = document.get("clouds") if isinstance(document, dict) else None
    if not isinstance(clouds, dict) or not clouds:
        raise RepoValidationError(
            "this clouds.yaml has no 'clouds:' section with entries", field="file"
        )
    return clouds


def local_ca_reader(base_dir: Path) -> Callable[[str], str]:
    """A ``cacert`` reader for files on this machine (the command line), relative to
    ``base_dir``."""

    def read(path: str) -> str:
        full = (base_dir / Path(path).expanduser()).resolve()
        try:
            return full.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            reason = (
                exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a text file"
            )
            raise RepoValidationError(
                f"cannot read cacert {path}: {reason}", field="ca_bundle"
            ) from None

    return read


def refuse_ca_path(path: str) -> str:
    """The ``cacert`` reader for uploads: a path in an uploaded file names the uploader's disk."""
    raise RepoValidationError(
        f"cacert {path} names a file on your machine, which the server cannot read: "
        "supply the CA bundle with the upload, or use `glint repo import` on the server",
        field="ca_bundle",
    )


def repo_from_cloud_entry(
    group: Group, name: str, entry: dict, read_ca: Callable[[str], str]
) -> Repo:
    """An unsaved Repo for one ``clouds:`` entry.

    Raises:
        RepoValidationError: The entry is incomplete or its ``cacert`` cannot be read.
    """
    if not isinstance(entry, dict):
        raise RepoValidationError("the entry is not a mapping")
    entry = dict(entry)
    ca_path = entry.pop("cacert", None)
    ca_bundle = read_ca(str(ca_path)) if ca_path else None
    try:
        connection = RepoConnection.from_clouds_yaml(entry, ca_bundle=ca_bundle)
    except (ValueError, TypeError) as exc:
        raise RepoValidationError(str(exc)) from None
    appcred = connection.uses_application_credential
    return Repo(
        group=group,
        name=name,
        kind=connection.kind,
        auth_url=connection.auth_url,
        region=connection.region or "",
        interface=connection.interface,
        project_name=connection.project_name or "",
        project_id=connection.project_id or "",
        project_domain_name=connection.project_domain_name or "",
        project_domain_id=connection.project_domain_id or "",
        user_domain_name=connection.user_domain_name or "",
        user_domain_id=connection.user_domain_id or "",
        auth_type=AuthType.APPLICATION_CREDENTIAL if appcred else AuthType.PASSWORD,
        username=connection.username or "",
        password=connection.password or "",
        application_credential_id=connection.application_credential_id or "",
        application_credential_secret=connection.application_credential_secret or "",
        ca_bundle=connection.ca_bundle or "",
    )


def _already_there(group: Group, name: str) -> ImportResult:
    return ImportResult(
        name, ImportStatus.SKIPPED, f"group {group.name} already has a repo named {name}"
    )


def _prepare(group: Group, name: str, build: Callable[[], Repo], site: str) -> ImportResult:
    """Build (``build()``: an unsaved Repo) and model-check one cloud's repo, without asking the
    cloud yet."""
    problem = validators.text_problem(name)
    if problem:  # before the name reaches a query: a lone surrogate is no text to the database
        return ImportResult(name, ImportStatus.FAILED, problem)
    if Repo.objects.filter(group=group, name=name).exists():
        return _already_there(group, name)
    try:
        repo = build()
        repo.site = site
        repo.full_clean()
    except RepoValidationError as exc:
        return ImportResult(name, ImportStatus.FAILED, exc.message)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items()
        )
        return ImportResult(name, ImportStatus.FAILED, reasons)
    return ImportResult(name, "", repo=repo)


def import_clouds_yaml(
    text: str,
    group: Group,
    *,
    names: Iterable[str] = (),
    read_ca: Callable[[str], str] = refuse_ca_path,
    site: str = "",
) -> list[ImportResult]:
    """Add the clouds of a clouds.yaml to ``group``, each checked against its cloud first.

    Args:
        text: The clouds.yaml.
        group: The group that gets the repos (named as in the file).
        names: Only these clouds (default: all of them).
        read_ca: Turns a ``cacert`` path into PEM text, or refuses it.
        site: The repos' site (``Repo.site``; a clouds.yaml names none).

    Returns:
        One result per cloud, in file order: added, skipped (the group has that name) or failed
        (with the reason).

    Raises:
        RepoValidationError: The text is not a clouds.yaml.
    """
    clouds = parse_clouds_yaml(text)
    wanted = list(dict.fromkeys(names)) or list(clouds)
    results = [
        _prepare(
            group,
            name,
            functools.partial(repo_from_cloud_entry, group, name, clouds[name], read_ca),
            site,
        )
        if name in clouds
        else ImportResult(
            name, ImportStatus.FAILED, f"there is no cloud named {name} in this clouds.yaml"
        )
        for name in wanted
    ]
    return _check_and_save(group, results)


def _check_and_save(group: Group, results: list[ImportResult]) -> list[ImportResult]:
    """Check the prepared repos of ``results`` against their clouds (side by side), save those
    that work, and say what happened to each."""
    pending = [result for result in results if result.repo is not None]

    def check(result: ImportResult) -> RepoValidationError | ProjectInfo:
        try:
            return check_repo(result.repo)
        except RepoValidationError as exc:
            return exc

    # The checks only talk to the clouds (no database), so they can run side by side.
    with ThreadPoolExecutor(max_workers=IMPORT_CHECK_WORKERS) as pool:
        outcomes = list(pool.map(check, pending))
    for result, outcome in zip(pending, outcomes):
        if isinstance(outcome, RepoValidationError):
            result.status, result.reason, result.repo = ImportStatus.FAILED, outcome.message, None
            audit.record(
                "repo.import",
                outcome=audit.FAILED,
                group=group,
                details={"name": result.cloud, "reason": outcome.message},
            )
            continue
        result.repo.set_cloud_project(outcome.project_id)
        try:
            with transaction.atomic():
                result.repo.save()
        except IntegrityError:  # added by someone else while this cloud was being checked
            results[results.index(result)] = _already_there(group, result.cloud)
            continue
        result.status = ImportStatus.ADDED
        audit.record("repo.import", repo=result.repo)
        log.info("repo %s imported into group %s", result.cloud, group.name)
    return results


# Importing an EC2 account

#: AWS profile settings → Repo fields.
_PROFILE_FIELDS = {
    "aws_access_key_id": "access_key_id",
    "aws_secret_access_key": "secret_access_key",
    "aws_session_token": "session_token",
    "region": "region",
    "role_arn": "role_arn",
    "endpoint_url": "endpoint_url",
}
#: Profile settings that get credentials some other way than a stored key: a server cannot use
#: them (they need a browser, a program of the person's, or this machine's own role).
_UNUSABLE_PROFILE_SETTINGS = (
    "credential_process",
    "credential_source",
    "sso_session",
    "sso_start_url",
)


def aws_profile_fields(profile: str) -> dict[str, str]:
    """The EC2 repo fields of an AWS shared-credentials/config profile.

    botocore reads the files as the AWS CLI does (``~/.aws/credentials`` and ``~/.aws/config``,
    or ``AWS_SHARED_CREDENTIALS_FILE`` and ``AWS_CONFIG_FILE``), merged per profile. A profile
    with ``role_arn`` and ``source_profile`` gives the source profile's key and the role to
    assume. Nothing is sent anywhere.

    Raises:
        RepoValidationError: No such profile, or one whose credentials are not a stored key.
    """
    import botocore.exceptions
    import botocore.session

    try:
        profiles = botocore.session.Session(profile=profile).full_config["profiles"]
    except botocore.exceptions.BotoCoreError as exc:
        raise RepoValidationError(f"cannot read the AWS configuration: {exc}") from None
    if profile not in profiles:
        raise RepoValidationError(f"there is no AWS profile named {profile}")
    settings = dict(profiles[profile])
    source = settings.get("source_profile")
    if source and "role_arn" in settings:
        if source not in profiles:
            raise RepoValidationError(
                f"AWS profile {profile} names source_profile {source}, which does not exist"
            )
        keys = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
        settings.update({k: v for k, v in profiles[source].items() if k in keys})
    unusable = [name for name in _UNUSABLE_PROFILE_SETTINGS if name in settings]
    if unusable and "aws_secret_access_key" not in settings:
        raise RepoValidationError(
            f"AWS profile {profile} gets its credentials through {unusable[0]}, which a server "
            "cannot use: give a profile with an access key (and a role_arn, if any)"
        )
    return {
        field: str(settings[key]) for key, field in _PROFILE_FIELDS.items() if settings.get(key)
    }


def import_ec2(group: Group, name: str, fields: dict[str, str], *, site: str = "") -> ImportResult:
    """Add one EC2 repo named ``name`` to ``group`` with ``fields`` (region, access key id and
    secret, optional session token, role ARN and endpoint URL), checked against AWS first.

    Returns:
        The result: added, skipped (the group has that name) or failed (with the reason).
    """
    build = functools.partial(Repo, group=group, name=name, kind=CloudKind.EC2, **fields)
    [result] = _check_and_save(group, [_prepare(group, name, build, site)])
    return result
