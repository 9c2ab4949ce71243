"""``glint worker``: a Celery worker (with beat) that runs jobs for ``GLINT_JOB_RUNNER=celery``."""

import os
import socket

import click

from glint.cli.server_commands import setup_django
from glint.validators import SITE_NAME_PATTERN

#: Seconds ``glint worker`` waits for the broker before it gives up at start.
BROKER_CHECK_TIMEOUT = 5.0


def _site_names(_context, _parameter, sites: tuple[str, ...]) -> list[str]:
    for site in sites:
        if not SITE_NAME_PATTERN.fullmatch(site):
            raise click.BadParameter(
                f"{site!r} is no site name: up to 50 letters, digits, dots, dashes and "
                "underscores, starting with a letter or digit"
            )
    return list(dict.fromkeys(sites))


@click.command()
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1000),
    help="Jobs run at once by this worker (processes).  [default: GLINT_JOB_WORKERS, else 4]",
)
@click.option(
    "--loglevel",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="Log level.  [default: GLINT_LOG_LEVEL, else INFO]",
)
@click.option(
    "--beat/--no-beat",
    default=True,
    show_default=True,
    help="Also run the periodic repairs (lease sweep, re-send, orphan reconciler). "
    "One worker with beat is enough; more do no harm.",
)
@click.option(
    "--site",
    "sites",
    multiple=True,
    envvar="GLINT_SITES",
    callback=_site_names,
    help="Also run the jobs of the repos at this site (repeatable; or GLINT_SITES, names "
    "separated by spaces); without it, only jobs of repos with no site.",
)
def worker(concurrency, loglevel, beat, sites):
    """Run jobs sent through the broker (GLINT_BROKER_URL) until SIGTERM/SIGINT.

    Needs the same database and data directory (credential keys) as `glint serve`.
    """
    setup_django()
    from django.conf import settings

    from glint.config import redact_url

    if settings.GLINT_JOB_RUNNER != "celery":
        raise click.ClickException(
            "glint worker runs jobs for GLINT_JOB_RUNNER=celery, "
            f"but it is {settings.GLINT_JOB_RUNNER!r}: "
            "glint serve runs the jobs itself. Set GLINT_JOB_RUNNER=celery and GLINT_BROKER_URL."
        )
    try:
        from glint.jobs.celery import BrokerUnavailable, app, check_broker
    except ModuleNotFoundError as exc:
        if exc.name != "celery":
            raise
        raise click.ClickException(
            "glint worker needs Celery: pip install 'glint[celery]'"
        ) from None

    try:
        check_broker(BROKER_CHECK_TIMEOUT)
    except BrokerUnavailable as exc:
        raise click.ClickException(
            f"cannot reach the broker {redact_url(settings.GLINT_BROKER_URL)}: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    from glint.jobs.celery import DEFAULT_QUEUE, site_queue
    from glint.jobs.heartbeat import NAME_VARIABLE, SITES_VARIABLE, Heartbeat

    name = f"glint-{os.getpid()}@{socket.gethostname()}"
    # Before Celery forks its pool: the leases carry the name, the claims keep to the sites.
    os.environ[NAME_VARIABLE] = name
    os.environ[SITES_VARIABLE] = ",".join(sites)
    argv = [
        "worker",
        f"--queues={','.join([DEFAULT_QUEUE, *map(site_queue, sites)])}",
        f"--concurrency={concurrency or settings.GLINT_JOB_WORKERS}",
        f"--loglevel={(loglevel or settings.GLINT['log_level']).upper()}",
        f"--hostname={name}",
        "--without-gossip",
        "--without-mingle",
    ]
    heartbeat = Heartbeat("celery")
    heartbeat.start()
    try:
        app.worker_main([*argv, "--beat"] if beat else argv)
    finally:
        heartbeat.stop()


def register(cli: click.Group) -> None:
    cli.add_command(worker)
