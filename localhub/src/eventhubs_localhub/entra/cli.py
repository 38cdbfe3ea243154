"""The command line's Entra mode: ``--entra`` and the principals it registers.

Prints, before ``READY``:
``ENTRA <authority host> <tenant id>``, ``ENTRA_CA <ca.pem>``, and when asked for them
``IDENTITY_ENDPOINT <url>`` / ``IDENTITY_HEADER <secret>`` (managed identity) and
``FEDERATED_TOKEN_FILE <client id> <path>`` (workload identity; valid for a day).
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..auth import BearerValidator
from .authority import DEFAULT_TENANT, EntraAuthority
from .http import AuthorityServer
from .pki import TlsFiles, make_tls_files

_ROLES_HELP = "ROLES: a comma list of sender, receiver, owner (default sender)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "Entra mode", "a Microsoft Entra ID token authority over HTTPS (needs the entra extra)"
    )
    group.add_argument("--entra", action="store_true", help="serve the token authority")
    group.add_argument("--entra-port", type=int, default=0, help="its HTTPS port (0: a free one)")
    group.add_argument("--entra-tenant", default=DEFAULT_TENANT, help="the tenant id")
    group.add_argument(
        "--entra-dir", help="where ca.pem and token files are written (default: a temp dir)"
    )
    group.add_argument("--entra-token-lifetime", type=float, default=3600.0, metavar="S")
    group.add_argument(
        "--entra-app",
        action="append",
        default=[],
        metavar="CLIENT_ID[/ROLES]:SECRET",
        help="an app registration with a client secret; " + _ROLES_HELP,
    )
    group.add_argument(
        "--entra-cert-app",
        action="append",
        default=[],
        metavar="CLIENT_ID[/ROLES]:CERT_PEM",
        help="an app registration with this certificate (PEM)",
    )
    group.add_argument(
        "--entra-workload-app",
        action="append",
        default=[],
        metavar="CLIENT_ID[/ROLES]:SUBJECT",
        help="an app trusting the hub's workload issuer for SUBJECT; a token file is written",
    )
    group.add_argument(
        "--entra-managed-identity",
        action="append",
        default=[],
        metavar="CLIENT_ID[/ROLES]",
        help="a managed identity served at IDENTITY_ENDPOINT (the first is system-assigned)",
    )


def _split(spec: str, with_value: bool = True) -> tuple[str, str, list[str]]:
    """``CLIENT_ID[/ROLES][:VALUE]`` -> (client id, value, roles); the value (a secret, a
    path, a subject such as ``system:serviceaccount:ns:name``) is all after the first ':'."""
    head, sep, value = spec.partition(":")
    client_id, _, roles = head.partition("/")
    if not client_id or (with_value and not value) or (not with_value and sep):
        form = "CLIENT_ID[/ROLES]:VALUE" if with_value else "CLIENT_ID[/ROLES]"
        raise ValueError(f"bad principal {spec.split(':', maxsplit=1)[0]!r}...: use {form}")
    return client_id, value, [r for r in roles.split(",") if r] or ["sender"]


@dataclass
class EntraMode:
    authority: EntraAuthority
    server: AuthorityServer
    tls: TlsFiles
    lines: list[str]

    @property
    def validator(self) -> BearerValidator:
        return self.authority.verifier().cbs_rights


def start(args: argparse.Namespace, host: str) -> EntraMode:
    """Register the principals, start the authority; the lines to print before READY."""
    from cryptography import x509  # noqa: PLC0415

    directory = Path(args.entra_dir or tempfile.mkdtemp(prefix="localhub-entra-"))
    authority = EntraAuthority(args.entra_tenant, token_lifetime=args.entra_token_lifetime)
    for spec in args.entra_app:
        client_id, secret, roles = _split(spec)
        authority.register(client_id, roles, secret=secret)
    for spec in args.entra_cert_app:
        client_id, pem, roles = _split(spec)
        cert = x509.load_pem_x509_certificate(Path(pem).read_bytes())
        authority.register(client_id, roles, certificate=cert)
    workloads = []
    for spec in args.entra_workload_app:
        client_id, subject, roles = _split(spec)
        authority.register(client_id, roles, federated_subject=subject)
        workloads.append((client_id, subject))
    for spec in args.entra_managed_identity:
        client_id, _, roles = _split(spec, with_value=False)
        authority.register(client_id, roles, managed=True)
    tls = make_tls_files(directory)
    server = AuthorityServer(authority, host, args.entra_port, tls).start()
    lines = [f"ENTRA {authority.authority_host} {authority.tenant_id}", f"ENTRA_CA {tls.ca}"]
    if args.entra_managed_identity:
        lines += [
            f"IDENTITY_ENDPOINT {authority.identity_endpoint}",
            f"IDENTITY_HEADER {authority.identity_header}",
        ]
    for client_id, subject in workloads:
        token_file = directory / f"federated-token-{client_id}"
        token_file.write_text(authority.federated_token(subject, lifetime=86400))
        token_file.chmod(0o600)
        lines.append(f"FEDERATED_TOKEN_FILE {client_id} {token_file}")
    return EntraMode(authority, server, tls, lines)
