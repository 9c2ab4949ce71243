"""AWS error answers become Glint's typed errors, each with what a person can do: a bad key and
a denied action from devcloud's EC2 peer with its IAM checks on, the answers it cannot give as
constructed ones."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from glint.clouds import errors, get_driver
from glint.clouds.ec2 import _error
from tests.ec2_peer import peer_connection


@pytest.mark.devcloud
@pytest.mark.parametrize(
    "keys",
    [{"secret_access_key": "wrong-secret-canary"}, {"access_key_id": "AKIAUNKNOWNKEY000000"}],
    ids=["wrong-secret", "unknown-key"],
)
def test_a_bad_key_is_refused_as_such(devcloud_ec2_iam, keys):
    with get_driver(peer_connection(devcloud_ec2_iam.peer, **keys)) as driver:
        with pytest.raises(errors.AuthenticationFailed) as refused:
            driver.check()
        with pytest.raises(errors.AuthenticationFailed):
            driver.list_images()
    assert "check the key id and secret" in refused.value.message
    assert "wrong-secret-canary" not in str(refused.value)


@pytest.mark.devcloud
def test_a_denied_action_is_named(devcloud_ec2_iam):
    """User ``reader`` may only ask who it is: the first EC2 call it makes is named."""
    reader = devcloud_ec2_iam.reader
    connection = peer_connection(
        devcloud_ec2_iam.peer,
        access_key_id=reader.access_key_id,
        secret_access_key=reader.secret_access_key,
    )
    with get_driver(connection) as driver:
        with pytest.raises(errors.Forbidden) as denied:
            driver.check()
        assert "does not allow ec2:DescribeImages; grant it" in denied.value.message
        with pytest.raises(errors.Forbidden, match="does not allow ec2:Describe(Images|Snapshots)"):
            driver.list_images()
        with pytest.raises(errors.Forbidden, match="does not allow ebs:StartSnapshot"):
            driver.create_and_write({"name": "denied"}, [b"data"], size=4)


@pytest.mark.parametrize(
    ("code", "status", "expected", "says"),
    [
        ("AuthFailure", 401, errors.AuthenticationFailed, "check the key id and secret"),
        ("UnauthorizedOperation", 403, errors.Forbidden, "does not allow ec2:RegisterImage"),
        ("AccessDeniedException", 403, errors.Forbidden, "grant it"),
        ("InvalidAMIName.Duplicate", 400, errors.Conflict, "already in use"),
        ("SnapshotLimitExceeded", 400, errors.QuotaExceeded, "raise the quota"),
        ("InvalidAMIID.NotFound", 400, errors.NotFound, "NotFound"),
        ("RequestLimitExceeded", 503, errors.ServiceUnavailable, "RequestLimitExceeded"),
    ],
)
def test_aws_errors_become_typed_errors_with_an_action(code, status, expected, says):
    """The answers the peer cannot give (its EBS answers under IAM checks are not EC2's: see
    devcloud/ec2.py), constructed as AWS sends them; a bad key and a denied EC2 call are above,
    from the peer itself."""
    message = "AMI name x is already in use by AMI ami-1" if "Duplicate" in code else ""
    answer = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    error = _error(ClientError(answer, "RegisterImage"), "ec2:RegisterImage")
    assert type(error) is expected
    assert says in error.message
