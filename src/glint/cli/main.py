"""Entry point of the ``glint`` console script.

Commands that manage the server itself (``serve``, ``worker``, ``user add``, ``group add``,
``keys rotate``, ``repo import``, ``migrate``, ``backup``, ``restore``) run against the local
database with Django set up; client commands (``login``, ``whoami``, ``repos``, ``images``,
``conflicts``, ``copy``, ``upload``, ``subscribe``…) only speak HTTPS to the REST API.
"""

import click

from glint.cli import (
    backup_commands,
    client_commands,
    job_commands,
    repo_commands,
    serve_command,
    server_commands,
    subscription_commands,
    transfer_commands,
    worker_command,
)
from glint.replication.chunk_memory import map_chunks_separately


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="glint")
def cli():
    """Glint keeps VM images in step across cloud projects."""


server_commands.register(cli)
serve_command.register(cli)
worker_command.register(cli)
client_commands.register(cli)
repo_commands.register(cli)
job_commands.register(cli)
transfer_commands.register(cli)
subscription_commands.register(cli)
backup_commands.register(cli)


def main() -> None:
    map_chunks_separately()  # before any thread streams an image
    cli(prog_name="glint")
