"""devcloud's EC2: moto in server mode on 127.0.0.1, with IAM users, patched to behave like EC2.

moto serves EC2, EBS direct, STS and IAM on one port. It runs in Glint's own virtualenv (it is
pinned in ``constraints/ci.txt``), started by ``devcloud.moto_server``, which applies
``devcloud.moto_patches`` first: the places where moto departs from EC2 in ways Glint's tests
depend on are changed there, never by special cases in Glint.

After it answers, :func:`configure` creates Glint's IAM user (with an access key and a policy
allowing what Glint calls) and a role it may assume, and writes the endpoint, region and keys to
``DIR/ec2.json`` for the tests, the demo and the bench (:class:`Ec2Peer`).

moto's IAM checks are off in this peer: with them on, moto 5.2.5 refuses its own EBS direct
requests signed by boto3 (``SignatureDoesNotMatch`` on CompleteSnapshot and ListSnapshotBlocks).
:func:`enforce_iam` turns them on for a peer of its own that a test needs only for EC2 and STS
calls (a bad key, a denied action): those moto checks as AWS does.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

from .errors import DevcloudError
from .state import Service, State

SERVICE_NAME = "ec2"
EC2_JSON = "ec2.json"
#: The region every devcloud EC2 client names (any region works in moto; one keeps it simple).
REGION = "eu-west-1"
#: moto's account for IAM users made without an account of their own.
ACCOUNT_ID = "123456789012"
ROLE_NAME = "glint-devcloud"

_REPO_ROOT = Path(__file__).resolve().parent.parent

# What Glint's IAM user may do: everything Glint calls.
_POLICIES = {"glint": ["ec2:*", "ebs:*", "sts:*"]}


@dataclasses.dataclass(frozen=True)
class Ec2Keys:
    """One IAM user's access key."""

    access_key_id: str
    secret_access_key: str = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True)
class Ec2Peer:
    """Where the devcloud's EC2 answers and who may use it (``DIR/ec2.json``).

    Fields:
        endpoint_url: The one URL of every service (EC2, EBS, STS, IAM).
        region: The region to name in every client.
        account_id: The account the users belong to.
        users: IAM user name → access key (``glint``).
        role_arn: A role that user ``glint`` may assume.
    """

    endpoint_url: str
    region: str
    account_id: str
    users: dict[str, Ec2Keys]
    role_arn: str

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Ec2Peer:
        path = Path(directory) / EC2_JSON
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise DevcloudError(f"no EC2 in this devcloud (missing {path}): use --ec2") from None
        data["users"] = {name: Ec2Keys(**keys) for name, keys in data["users"].items()}
        return cls(**data)

    def glint_repo_import(self, group: str, name: str = "ec2") -> tuple[list[str], dict[str, str]]:
        """The ``glint repo import`` arguments that add this peer as EC2 repo ``name`` of
        ``group`` (user ``glint``'s key), and the environment that carries its secret: a secret
        goes in the environment, never on a command line."""
        keys = self.users["glint"]
        args = ["repo", "import", "--group", group, "--name", name, "--region", self.region]
        args += ["--access-key-id", keys.access_key_id, "--endpoint-url", self.endpoint_url]
        return args, {"AWS_SECRET_ACCESS_KEY": keys.secret_access_key}

    def save(self, directory: Path) -> None:
        path = directory / EC2_JSON
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")
        path.chmod(0o600)


def new_service(state: State, port: int) -> Service:
    """The moto server's service record: Glint's own Python runs devcloud's launcher."""
    home = Path(state.dir) / SERVICE_NAME
    home.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    # The launcher is imported from this checkout; a caller's PYTHONPATH (the network guard of
    # the tests) is kept, since service_env drops PYTHONPATH for the other services.
    python_path = [str(_REPO_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(":") if p]
    return Service(
        name=SERVICE_NAME,
        kind="ec2",
        index=1,
        port=port,
        url=url,
        probe_url=f"{url}/moto-api/data.json",
        home=str(home),
        log_file=str(Path(state.dir) / "logs" / "ec2.log"),
        argv=[sys.executable, "-m", "devcloud.moto_server", "--port", str(port)],
        env={
            "PYTHONPATH": os.pathsep.join(python_path),
            # moto would otherwise load thousands of Amazon's public AMIs into every region.
            "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
            "AWS_EC2_METADATA_DISABLED": "true",
        },
        cwd=str(home),
    )


def configure(state: State, svc: Service) -> Ec2Peer:
    """Create the IAM user and the role, and write ``ec2.json``."""
    import boto3  # Glint's virtualenv has it; devcloud without --ec2 does not need it

    admin = boto3.session.Session(
        aws_access_key_id="devcloud-setup",
        aws_secret_access_key="devcloud-setup",
        region_name=REGION,
    )
    iam = admin.client("iam", endpoint_url=svc.url)
    users = {}
    for name, actions in _POLICIES.items():
        iam.create_user(UserName=name)
        iam.put_user_policy(
            UserName=name,
            PolicyName=f"{name}-policy",
            PolicyDocument=_policy(actions),
        )
        key = iam.create_access_key(UserName=name)["AccessKey"]
        users[name] = Ec2Keys(key["AccessKeyId"], key["SecretAccessKey"])
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:user/glint"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(
        RoleName=ROLE_NAME, PolicyName="glint-role", PolicyDocument=_policy(_POLICIES["glint"])
    )
    peer = Ec2Peer(
        endpoint_url=svc.url,
        region=REGION,
        account_id=ACCOUNT_ID,
        users=users,
        role_arn=role["Role"]["Arn"],
    )
    peer.save(Path(state.dir))
    return peer


def add_user(peer: Ec2Peer, name: str, actions: list[str]) -> Ec2Keys:
    """An IAM user of the peer's account allowed only ``actions``, with an access key (before
    :func:`enforce_iam`: afterwards IAM itself asks for a permitted key)."""
    import boto3

    iam = boto3.client(
        "iam",
        endpoint_url=peer.endpoint_url,
        region_name=peer.region,
        aws_access_key_id="devcloud-setup",
        aws_secret_access_key="devcloud-setup",
    )
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=_policy(actions))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Ec2Keys(key["AccessKeyId"], key["SecretAccessKey"])


def enforce_iam(peer: Ec2Peer) -> None:
    """From now on the peer checks every request's key and the user's IAM policy, as AWS does
    (moto's ``/moto-api/reset-auth``: no more requests let through unchecked)."""
    import urllib.request

    request = urllib.request.Request(
        f"{peer.endpoint_url}/moto-api/reset-auth",
        data=b"0",
        method="POST",
        headers={"Content-Type": "text/plain"},  # moto reads the count from the raw body
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        answer.read()


def _policy(actions: list[str]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
        }
    )
