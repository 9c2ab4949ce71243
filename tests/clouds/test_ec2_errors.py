"""AWS error answers become Glint's typed errors, each with what a person can do."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from glint.clouds import errors
from glint.clouds.ec2 import _error


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
    """The answers moto's peer cannot give with its IAM checks off (devcloud/ec2.py)."""
    message = "AMI name x is already in use by AMI ami-1" if "Duplicate" in code else ""
    answer = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    error = _error(ClientError(answer, "RegisterImage"), "ec2:RegisterImage")
    assert type(error) is expected
    assert says in error.message
