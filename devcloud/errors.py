"""The one exception devcloud raises for anything a person has to act on."""


class DevcloudError(RuntimeError):
    """A service did not start, a build failed, or a state file is missing.

    The message is meant to be printed as is: it names the service and carries its log tail.
    """
