"""The Glint demo: two loopback OpenStack clouds and an EC2 (devcloud's moto peer), a sample image,
and Glint serving them over TLS.

Run through ``scripts/demo`` (which installs what is missing first). Everything lives under
``var/demo/`` and runs on 127.0.0.1 only; Ctrl-C stops Glint and the clouds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import devcloud  # noqa: E402  (test and demo support, beside the product)
from devcloud.pki import create_pki  # noqa: E402

ADMIN_DN_CN = "Demo Admin"
P12_PASSWORD = "glint-demo"
SAMPLE_IMAGE = "demo-cirros-like"
EC2_REPO = "ec2"


def glint(*args: str, env: dict) -> None:
    subprocess.run([str(ROOT / ".venv/bin/glint"), *args], env=env, check=True)


def make_admin_certificate(pki_dir: Path) -> str:
    """Sign a client certificate for the demo admin with the demo CA; returns its DN."""
    ca_cert = x509.load_pem_x509_certificate((pki_dir / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((pki_dir / "ca-key.pem").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "Glint demo"),
            x509.NameAttribute(x509.NameOID.COMMON_NAME, ADMIN_DN_CN),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(ca_cert.not_valid_before_utc)
        .not_valid_after(ca_cert.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (pki_dir / "admin.pem").write_bytes(pem)
    for name, data in (("admin-key.pem", key_pem), ("admin-bundle.pem", pem + key_pem)):
        (pki_dir / name).write_bytes(data)
        (pki_dir / name).chmod(0o600)
    p12 = pkcs12.serialize_key_and_certificates(
        b"glint-demo-admin",
        key,
        cert,
        [ca_cert],
        serialization.BestAvailableEncryption(P12_PASSWORD.encode()),
    )
    (pki_dir / "admin.p12").write_bytes(p12)
    return subject.rfc4514_string()


def upload_sample_image(clouds: devcloud.Devcloud) -> None:
    """Put a small qcow2 image into devcloud-1 only, so the matrix has something to copy."""
    from glint.clouds import RepoConnection, get_driver

    work = clouds.dir / "sample.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(work), "64M"], check=True)
    with get_driver(RepoConnection.from_clouds_yaml(clouds.cloud_config("devcloud-1"))) as cloud:
        with work.open("rb") as data:
            cloud.create_and_write(
                {
                    "name": SAMPLE_IMAGE,
                    "disk_format": "qcow2",
                    "container_format": "bare",
                    "os_distro": "cirros",
                },
                iter(lambda: data.read(1 << 20), b""),
            )


def add_ec2_repo(peer, env: dict) -> None:
    """The EC2 peer as repo ``ec2`` of the demo group, added as a manager adds an AWS account
    (``glint repo import`` with flags; the secret from the environment)."""
    args, secret = peer.glint_repo_import("demo", EC2_REPO)
    glint(*args, env=dict(env, **secret))


def instructions(pki: Path, url: str) -> str:
    p12, ca, cert, key = pki / "admin.p12", pki / "ca.pem", pki / "admin.pem", pki / "admin-key.pem"
    return "\n".join(
        [
            "",
            f"Glint demo is running at {url}",
            "",
            f"  Browser: import {p12} (password: {P12_PASSWORD}) into your browser's",
            f"           certificates, trust {ca} as a CA, then open {url}",
            f"  curl:    curl --cacert {ca} --cert {cert} --key {key} {url}api/v1/whoami/",
            (
                f"  CLI:     .venv/bin/glint login --url {url} --cert {cert} --key {key} "
                f"--ca-file {ca}"
            ),
            "           .venv/bin/glint images",
            "",
            "Press Ctrl-C to stop Glint and the demo clouds.",
            "",
        ]
    )


def serve_until_stopped(command: list[str], env: dict[str, str]) -> int:
    """Run ``glint serve`` until it ends or this script is told to stop.

    Ctrl-C, ``kill`` and a closed terminal (SIGHUP) all stop glint serve gracefully and return
    here, so that the caller's ``finally`` stops the clouds too: a plain SIGTERM or SIGHUP would
    end this script on the spot and leave them running.
    """
    server = subprocess.Popen(command, env=env)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: server.terminate())
    try:
        return server.wait()
    except KeyboardInterrupt:  # glint serve may have had the terminal's SIGINT too: no matter
        server.terminate()
        server.wait()
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--dir", type=Path, default=ROOT / "var" / "demo")
    parser.add_argument(
        "--setup-only", action="store_true", help="Prepare everything, print, and stop."
    )
    args = parser.parse_args()

    if args.dir.exists():
        previous = args.dir / "devcloud"
        if (previous / "state.json").exists():
            devcloud.Devcloud.load(previous).down()
        shutil.rmtree(args.dir)
    pki_dir = args.dir / "pki"
    create_pki(pki_dir)
    admin_dn = make_admin_certificate(pki_dir)

    print(
        "Starting two loopback OpenStack clouds and an EC2 (the first run builds their "
        "virtualenv)...",
        flush=True,
    )
    clouds = devcloud.up(args.dir / "devcloud", clouds=2, keystones=1, with_ec2=True)
    try:
        upload_sample_image(clouds)
        # The demo's clouds are on this machine: allowed by a development-only setting.
        env = dict(
            os.environ, GLINT_DATA_DIR=str(args.dir / "data"), GLINT_CLOUD_DEV_LOOPBACK="127.0.0.1"
        )
        glint("migrate", env=env)
        glint(
            "group",
            "add",
            "demo",
            "--description",
            "Demo group: two loopback OpenStack clouds and an EC2",
            env=env,
        )
        glint(
            "user",
            "add",
            "--dn",
            admin_dn,
            "--admin",
            "--group",
            "demo",
            "--role",
            "manager",
            env=env,
        )
        glint(
            "repo",
            "import",
            str(clouds.clouds_yaml),
            "--group",
            "demo",
            "--cloud",
            "devcloud-1",
            "--cloud",
            "devcloud-2",
            env=env,
        )
        add_ec2_repo(clouds.ec2_peer, env)
        url = f"https://127.0.0.1:{args.port}/"
        print(instructions(pki_dir, url), flush=True)
        if args.setup_only:
            return 0
        serve = [
            str(ROOT / ".venv/bin/glint"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(args.port),
            "--cert",
            str(pki_dir / "server.pem"),
            "--key",
            str(pki_dir / "server-key.pem"),
            "--client-ca",
            str(pki_dir / "ca.pem"),
        ]
        return serve_until_stopped(serve, env)
    finally:
        if not args.setup_only:
            clouds.down()


if __name__ == "__main__":
    sys.exit(main())
