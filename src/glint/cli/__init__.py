"""The ``glint`` command line: server-side commands (run against the local database) and client
commands (talk to a Glint server's REST API, like any other API client)."""
