"""``glint serve``: the embedded server (glint.server), with defaults from the configuration."""

import os

import click

from glint.cli.server_commands import setup_django


@click.command()
@click.option("--host", help="Address to listen on.  [default: GLINT_LISTEN, else 127.0.0.1]")
@click.option(
    "--port", type=click.IntRange(0, 65535), help="TCP port.  [default: GLINT_PORT, else 8443]"
)
@click.option(
    "--cert",
    "cert_file",
    type=click.Path(dir_okay=False),
    help="Server certificate, PEM (may hold the key and chain).  [default: GLINT_TLS_CERT]",
)
@click.option(
    "--key",
    "key_file",
    type=click.Path(dir_okay=False),
    help="Server key, PEM, unless --cert holds it.  [default: GLINT_TLS_KEY]",
)
@click.option(
    "--client-ca",
    "client_ca_file",
    type=click.Path(dir_okay=False),
    help=(
        "CA file (CRLs may follow) that client certificates chain to.  "
        "[default: GLINT_TLS_CLIENT_CA]"
    ),
)
@click.option(
    "--client-ca-dir",
    "client_ca_dir",
    type=click.Path(file_okay=False),
    help="IGTF-style CA directory (<hash>.0, <hash>.r0), e.g. /etc/grid-security/certificates.  "
    "[default: GLINT_TLS_CLIENT_CA_DIR]",
)
@click.option(
    "--behind-proxy",
    is_flag=True,
    help="Plain HTTP for a TLS-terminating reverse proxy, on loopback or --unix-socket only.",
)
@click.option(
    "--unix-socket",
    type=click.Path(dir_okay=False),
    default="",
    help="Listen on this unix socket (mode 0660) instead of TCP; needs --behind-proxy.",
)
@click.option(
    "--insecure-dev", is_flag=True, help="Allow plain HTTP on any address. Development only."
)
@click.option(
    "--threads",
    type=click.IntRange(1, 1000),
    default=10,
    show_default=True,
    help="Requests served at once.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Worker processes sharing one listener; background work runs in one of them.  "
    "[default: GLINT_WORKERS, else the number of cores]",
)
@click.option(
    "--ca-reload-seconds",
    type=click.IntRange(1),
    default=300,
    show_default=True,
    help="Rebuild the TLS context this often, so new CRLs apply without a restart.",
)
def serve(
    host,
    port,
    cert_file,
    key_file,
    client_ca_file,
    client_ca_dir,
    behind_proxy,
    unix_socket,
    insecure_dev,
    threads,
    workers,
    ca_reload_seconds,
):
    """Migrate the database, then serve Glint (and its background workers) until SIGTERM/SIGINT."""
    setup_django()
    from django.conf import settings

    from glint.server.serve import ServeError, ServeOptions, run
    from glint.server.tls import TLSConfigError

    configured = settings.GLINT
    options = ServeOptions(
        host=host or str(configured["listen"]),
        port=configured["port"] if port is None else port,
        cert_file=cert_file or str(configured["tls_cert"]),
        key_file=key_file or str(configured["tls_key"]),
        client_ca_file=client_ca_file or str(configured["tls_client_ca"]),
        client_ca_dir=client_ca_dir or str(configured["tls_client_ca_dir"]),
        behind_proxy=behind_proxy,
        insecure_dev=insecure_dev,
        unix_socket=unix_socket,
        threads=threads,
        ca_reload_seconds=ca_reload_seconds,
        workers=workers or configured["workers"] or os.cpu_count() or 1,
    )
    # The server's trust store is also the one signed image lists are verified against
    # (glint.subscriptions), so their endorsers are revoked by the same CRLs as its clients.
    configured["tls_client_ca"] = options.client_ca_file
    configured["tls_client_ca_dir"] = options.client_ca_dir
    try:
        run(options)
    except (ServeError, TLSConfigError) as exc:
        raise click.ClickException(str(exc)) from None


def register(cli: click.Group) -> None:
    cli.add_command(serve)
