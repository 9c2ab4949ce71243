"""A repo: one cloud project of a group, with its encrypted credentials and its poll status.

The connection record is per kind (``KIND_FIELDS``): an OpenStack repo has an identity endpoint,
a project and a password or application credential; an EC2 repo an AWS account and region, reached
with an access key. A repo carries only its own kind's fields; the model refuses a mix.

The same cloud project may serve two groups: that is two Repo rows, tied together by
``cloud_project`` (where the cloud is, plus the project or account it confirmed), so pages can
say "also used by another group".

The inventory poller writes the ``last_poll_*`` fields with ``Repo.objects.filter(pk=…).update()``
so a stale Repo in memory never overwrites what a person just edited (``docs/architecture.md``,
background writes).
"""

from __future__ import annotations

import functools
import logging
import re
from urllib.parse import urlsplit

from cryptography import x509
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from glint import validators
from glint.replication import Ec2Connection, EndpointPolicy, RepoConnection
from glint.repos.choices import AuthType, CloudKind, Interface
from glint.repos.fields import EncryptedTextField

__all__ = ["Repo", "endpoint_policy", "normalize_auth_url"]

log = logging.getLogger(__name__)

#: The model fields that hold secrets: never shown, logged or returned by the API.
SECRET_FIELDS = ("password", "application_credential_secret", "secret_access_key", "session_token")
#: The secrets a repo may be left without: a manager removes one explicitly (a blank one keeps
#: the stored value), and the removal is audited.
CLEARABLE_SECRETS = ("session_token",)

#: The connection fields of each kind (``region`` and the rest are shared). A repo leaves the
#: other kinds' fields at their defaults.
KIND_FIELDS = {
    CloudKind.OPENSTACK: (
        "auth_url", "interface", "auth_type", "username", "password",
        "application_credential_id", "application_credential_secret",
        "project_name", "project_id", "project_domain_name", "project_domain_id",
        "user_domain_name", "user_domain_id", "ca_bundle",
    ),
    CloudKind.EC2: (
        "access_key_id", "secret_access_key", "session_token", "role_arn", "endpoint_url",
    ),
}  # fmt: skip

#: A region name (AWS's are like eu-west-1; an EC2-compatible cloud may name its own).
_EC2_REGION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")


def normalize_auth_url(url: str) -> str:
    """One spelling per identity endpoint: lower-case host, no default port, no ``/v3``, no
    ``/``."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port and (scheme, port) not in (("https", 443), ("http", 80)):
        host = f"{host}:{port}"
    path = parts.path.rstrip("/")
    if path.endswith("/v3"):
        path = path[: -len("/v3")]
    return f"{scheme}://{host}{path}"


class Repo(models.Model):
    """One cloud project a group keeps images in.

    Fields:
        name: Unique within the group; how people and the CLI refer to the repo.
        kind: The cloud kind, i.e. the ``glint.clouds`` driver; fixed once the repo exists.
        region: The OpenStack catalog region (optional) or the AWS region (required).

        OpenStack (``KIND_FIELDS``):

        auth_url, interface: Where the identity service is, and which catalog entry of the
            image service to use.
        project_name / project_id, project_domain_name / project_domain_id,
            user_domain_name / user_domain_id: Keystone scope (password auth).
        auth_type: ``password`` (username + password) or ``application_credential`` (id + secret).
        password, application_credential_secret: Encrypted at rest; see ``glint.repos.crypto``.
        ca_bundle: PEM certificates that verify the cloud's TLS endpoints; empty means the system
            trust store.

        EC2:

        access_key_id, secret_access_key: An IAM access key (the secret encrypted at rest).
        session_token: Encrypted; for temporary credentials.
        role_arn: A role to assume with STS before anything else (optional).
        endpoint_url: For EC2-compatible clouds and devcloud's peer; empty is AWS itself.

        All kinds:

        site: Where the cloud is (e.g. the data centre), shown beside the name; with
            ``GLINT_JOB_RUNNER=celery`` its jobs go to the workers of that site
            (``glint worker --site``). Empty: any worker.
        enabled: Disabled repos are not polled and are no copy source or target.
        cloud_project: Where the cloud is + ``#`` + the project or account it confirmed, set
            when validated (:meth:`set_cloud_project`).
        last_poll_*: Written by the inventory poller.
    """

    group = models.ForeignKey("accounts.Group", on_delete=models.CASCADE, related_name="repos")
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(
        _("cloud kind"), max_length=20, choices=CloudKind.choices, default=CloudKind.OPENSTACK
    )
    auth_url = models.URLField(_("auth URL"), max_length=500, blank=True)
    region = models.CharField(_("region"), max_length=100, blank=True)
    interface = models.CharField(
        _("interface"), max_length=10, choices=Interface.choices, default=Interface.PUBLIC
    )
    project_name = models.CharField(_("project name"), max_length=200, blank=True)
    project_id = models.CharField(_("project id"), max_length=100, blank=True)
    project_domain_name = models.CharField(_("project domain name"), max_length=200, blank=True)
    project_domain_id = models.CharField(_("project domain id"), max_length=100, blank=True)
    user_domain_name = models.CharField(_("user domain name"), max_length=200, blank=True)
    user_domain_id = models.CharField(_("user domain id"), max_length=100, blank=True)
    auth_type = models.CharField(
        _("authentication"), max_length=30, choices=AuthType.choices, default=AuthType.PASSWORD
    )
    username = models.CharField(_("username"), max_length=200, blank=True)
    password = EncryptedTextField(_("password"), blank=True)
    application_credential_id = models.CharField(
        _("application credential id"), max_length=100, blank=True
    )
    application_credential_secret = EncryptedTextField(
        _("application credential secret"), blank=True
    )
    ca_bundle = models.TextField(_("CA bundle (PEM)"), blank=True)
    access_key_id = models.CharField(_("access key id"), max_length=128, blank=True)
    secret_access_key = EncryptedTextField(_("secret access key"), blank=True)
    session_token = EncryptedTextField(_("session token"), blank=True)
    role_arn = models.CharField(
        _("role to assume (ARN)"),
        max_length=2048,
        blank=True,
        help_text=_("Glint assumes this IAM role with STS first; empty: the key's own rights."),
    )
    endpoint_url = models.URLField(
        _("endpoint URL"),
        max_length=500,
        blank=True,
        help_text=_("For an EC2-compatible cloud; empty for AWS itself."),
    )
    site = models.CharField(
        _("site"),
        max_length=100,
        blank=True,
        validators=[validators.validate_site_name],
        help_text=_(
            "Where the cloud is. With separate workers, copies to this repo run on the workers "
            "started with glint worker --site NAME; empty: any worker."
        ),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    cloud_project = models.CharField(max_length=700, blank=True, db_index=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    last_poll_at = models.DateTimeField(_("last poll"), null=True, blank=True, editable=False)
    last_poll_ok = models.BooleanField(_("last poll succeeded"), null=True, editable=False)
    last_poll_error = models.TextField(_("last poll error"), blank=True, editable=False)
    last_poll_duration = models.FloatField(
        _("last poll duration (s)"), null=True, blank=True, editable=False
    )

    class Meta:
        ordering = ["group__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["group", "name"],
                name="%(app_label)s_%(class)s_unique_group_name",
                violation_error_message="This group already has a repo with this name.",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def password_set(self) -> bool:
        return bool(self.password)

    @property
    def application_credential_secret_set(self) -> bool:
        return bool(self.application_credential_secret)

    @property
    def secret_access_key_set(self) -> bool:
        return bool(self.secret_access_key)

    @property
    def session_token_set(self) -> bool:
        return bool(self.session_token)

    @property
    def project_label(self) -> str:
        """The project as a person would name it (``domain/name`` or the id; an EC2 account)."""
        if self.kind == CloudKind.EC2:
            account = self.cloud_project.rpartition("#")[2]
            return f"account {account}" if account else ""
        if self.project_name:
            domain = self.project_domain_name or self.project_domain_id
            return f"{domain}/{self.project_name}" if domain else self.project_name
        return self.project_id or (
            f"app credential {self.application_credential_id}"
            if self.application_credential_id
            else ""
        )

    def clean(self) -> None:
        """Refuse a name with unsafe characters, another kind's fields, and an incomplete or
        malformed connection of the repo's own kind."""
        errors: dict[str, str] = {}
        problem = validators.text_problem(self.name or "")
        if problem:
            errors["name"] = problem + "."
        for kind, names in KIND_FIELDS.items():
            for name in names if kind != self.kind else ():
                field = self._meta.get_field(name)
                if getattr(self, name) != field.get_default():
                    errors[name] = (
                        f"The {field.verbose_name} is for {kind.label} repos: "
                        f"leave it empty for this kind ({self.kind})."
                    )
        if self.kind == CloudKind.EC2:
            self._clean_ec2(errors)
        else:
            self._clean_openstack(errors)
        if errors:
            raise ValidationError(errors)

    def _clean_openstack(self, errors: dict[str, str]) -> None:
        if not self.auth_url:
            errors.setdefault("auth_url", "An OpenStack repo needs its auth URL (Keystone).")
        parts = urlsplit(self.auth_url or "")
        if parts.username or parts.password:
            errors["auth_url"] = (
                "Put no credentials in the auth URL; use the username and password fields."
            )
        if self.auth_type == AuthType.APPLICATION_CREDENTIAL:
            if not self.application_credential_id:
                errors["application_credential_id"] = "An application credential needs its id."
            if not self.application_credential_secret:
                errors["application_credential_secret"] = (
                    "An application credential needs its secret."
                )
        else:
            if not self.username:
                errors["username"] = "Password authentication needs a username."
            if not self.password:
                errors["password"] = "Password authentication needs a password."
            if not (self.project_name or self.project_id):
                errors["project_name"] = "Give the project's name or its id."
        if self.ca_bundle.strip():
            try:
                x509.load_pem_x509_certificates(self.ca_bundle.encode())
            except ValueError:
                errors["ca_bundle"] = (
                    "The CA bundle must be PEM certificates (-----BEGIN CERTIFICATE----- ...)."
                )

    def _clean_ec2(self, errors: dict[str, str]) -> None:
        if not _EC2_REGION.fullmatch(self.region or ""):
            errors["region"] = "An EC2 repo needs its region, such as eu-west-1."
        if not self.access_key_id:
            errors["access_key_id"] = "An EC2 repo needs the access key id."
        if not self.secret_access_key:
            errors["secret_access_key"] = "An EC2 repo needs the secret access key."
        if self.role_arn and not _ROLE_ARN.fullmatch(self.role_arn):
            errors["role_arn"] = (
                "A role is named by its ARN: arn:aws:iam::<12-digit account>:role/<name>."
            )
        parts = urlsplit(self.endpoint_url or "")
        if parts.username or parts.password:
            errors["endpoint_url"] = (
                "Put no credentials in the endpoint URL; use the access key fields."
            )

    def set_cloud_project(self, project_id: str) -> None:
        """Record the project (OpenStack) or account (EC2) the cloud confirmed, which ties this
        repo to other groups' repos: ``<where>#<project or account>``, where an EC2 repo's
        "where" is ``ec2:<region>`` plus ``@<endpoint>`` when it is not AWS itself."""
        if self.kind == CloudKind.EC2:
            where = f"ec2:{self.region}"
            if self.endpoint_url:
                where += f"@{normalize_auth_url(self.endpoint_url)}"
        else:
            where = normalize_auth_url(self.auth_url)
        self.cloud_project = f"{where}#{project_id}"

    def connection(self, **overrides) -> RepoConnection | Ec2Connection:
        """The ``glint.clouds`` connection record of this repo's kind: the only place secrets
        are decrypted.

        Args:
            **overrides: Connection fields to replace, e.g. ``connect_timeout``.

        Raises:
            ValueError: The connection is incomplete.
        """
        if self.kind == CloudKind.EC2:
            return Ec2Connection(
                **{
                    "region": self.region,
                    "access_key_id": self.access_key_id,
                    "secret_access_key": _reveal(self.secret_access_key) or "",
                    "session_token": _reveal(self.session_token),
                    "role_arn": self.role_arn or None,
                    "endpoint_url": self.endpoint_url or None,
                    "endpoint_policy": endpoint_policy(),
                    **overrides,
                }
            )
        values = {
            "kind": self.kind,
            "auth_url": self.auth_url,
            "region": self.region or None,
            "interface": self.interface,
            "user_domain_name": self.user_domain_name or None,
            "user_domain_id": self.user_domain_id or None,
            "ca_bundle": self.ca_bundle or None,
            "endpoint_policy": endpoint_policy(),
        }
        if self.auth_type == AuthType.APPLICATION_CREDENTIAL:
            values["application_credential_id"] = self.application_credential_id or None
            values["application_credential_secret"] = _reveal(self.application_credential_secret)
        else:
            values.update(
                username=self.username or None,
                password=_reveal(self.password),
                project_name=self.project_name or None,
                project_id=self.project_id or None,
                project_domain_name=self.project_domain_name or None,
                project_domain_id=self.project_domain_id or None,
            )
        values.update(overrides)
        return RepoConnection(**values)


def endpoint_policy() -> EndpointPolicy:
    """The addresses cloud endpoints may have here (settings ``cloud_allow_cidrs`` and, for
    development only, ``cloud_dev_loopback``)."""
    dev_loopback = tuple(settings.GLINT_CLOUD_DEV_LOOPBACK)
    if dev_loopback:
        _warn_dev_loopback(dev_loopback)
    return EndpointPolicy(
        allow_cidrs=tuple(settings.GLINT_CLOUD_ALLOW_CIDRS), dev_loopback=dev_loopback
    )


@functools.cache
def _warn_dev_loopback(ranges: tuple[str, ...]) -> None:
    log.warning(
        "GLINT_CLOUD_DEV_LOOPBACK is set (%s): cloud endpoints on this machine are "
        "allowed. This is for development and tests only; never set it in production.",
        ", ".join(ranges),
    )


def _reveal(sealed) -> str | None:
    return sealed.reveal() if sealed else None
