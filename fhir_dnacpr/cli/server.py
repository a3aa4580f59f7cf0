"""``fhir-dnacpr server check URL`` and the connection options push and pull share.

Secrets never travel as command-line arguments (shell history, ``ps``): a bearer token or client
secret comes from an environment variable or a file, a private key from a PEM file.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from fhir_dnacpr.server import (
    Auth,
    AuthError,
    BearerToken,
    ClientSecretAuth,
    FhirClient,
    FhirResponseError,
    NhsSignedJwtAuth,
    NoAuth,
    RetryPolicy,
    ServerError,
    SmartBackendAuth,
    load_private_key,
)
from fhir_dnacpr.server.auth import TokenEndpointAuth

AUTH_CHOICES = ("none", "bearer", "client-secret", "smart", "nhs")

EXIT_OK, EXIT_REJECTS, EXIT_STOPPED, EXIT_CANNOT_START = 0, 1, 3, 4


def connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Auth, TLS, timeout, retry and rate options, in one place for every command that talks to a server."""
    options = [
        click.option(
            "--auth", "auth_kind", type=click.Choice(AUTH_CHOICES), default="none", show_default=True
        ),
        click.option("--token-env", metavar="VAR", help="bearer: environment variable holding the token"),
        click.option("--token-file", type=click.Path(dir_okay=False), help="bearer: file holding the token"),
        click.option("--client-id", help="client-secret/smart: client id; nhs: the application's API key"),
        click.option(
            "--secret-env", metavar="VAR", help="client-secret: environment variable with the secret"
        ),
        click.option(
            "--secret-file", type=click.Path(dir_okay=False), help="client-secret: file with the secret"
        ),
        click.option(
            "--key-file", type=click.Path(exists=True, dir_okay=False), help="smart/nhs: PEM private key"
        ),
        click.option("--key-pass-env", metavar="VAR", help="environment variable with the key's passphrase"),
        click.option("--kid", help="smart/nhs: key id registered with the token endpoint"),
        click.option(
            "--alg", type=click.Choice(["RS384", "ES384"]), default="RS384", show_default=True, help="smart"
        ),
        click.option("--jku", help="smart: URL of our JWKS (optional)"),
        click.option("--scope", help="token scope (smart default system/*.*)"),
        click.option("--token-url", help="OAuth2 token endpoint"),
        click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False), help="CA bundle for TLS"),
        click.option("--connect-timeout", type=float, default=10.0, show_default=True),
        click.option("--read-timeout", type=float, default=120.0, show_default=True),
        click.option("--retries", type=click.IntRange(0, 50), default=5, show_default=True),
        click.option("--retry-after-cap", type=float, default=120.0, show_default=True, help="seconds"),
        click.option("--rate", type=click.FloatRange(min=0.01), help="max requests per second"),
        click.option("-v", "--verbose", is_flag=True, help="log requests (paths, statuses, ids; no data)"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def make_auth(o: dict[str, Any]) -> Auth:
    """The auth policy the options describe (usage errors say which option is missing)."""
    kind = o["auth_kind"]
    if kind == "none":
        return NoAuth()
    if kind == "bearer":
        if bool(o["token_env"]) == bool(o["token_file"]):
            raise click.UsageError("--auth bearer needs exactly one of --token-env or --token-file")
        return (
            BearerToken.from_env(o["token_env"]) if o["token_env"] else BearerToken.from_file(o["token_file"])
        )
    if not o["token_url"]:
        raise click.UsageError(f"--auth {kind} needs --token-url")
    if not o["client_id"]:
        raise click.UsageError(f"--auth {kind} needs --client-id")
    if kind == "client-secret":
        if bool(o["secret_env"]) == bool(o["secret_file"]):
            raise click.UsageError("--auth client-secret needs exactly one of --secret-env or --secret-file")
        secret = _read_secret(o["secret_env"], o["secret_file"])
        return ClientSecretAuth(o["token_url"], o["client_id"], secret, scope=o["scope"])
    if not o["key_file"] or not o["kid"]:
        raise click.UsageError(f"--auth {kind} needs --key-file and --kid")
    key = load_private_key(o["key_file"], o["key_pass_env"])
    if kind == "smart":
        return SmartBackendAuth(
            o["token_url"],
            o["client_id"],
            key,
            kid=o["kid"],
            algorithm=o["alg"],
            jku=o["jku"],
            scope=o["scope"] or "system/*.*",
        )
    return NhsSignedJwtAuth(o["token_url"], o["client_id"], key, kid=o["kid"])


def _read_secret(env: str | None, path: str | None) -> str:
    import os
    from pathlib import Path

    if env:
        value = os.environ.get(env, "")
        if not value:
            raise click.UsageError(f"environment variable {env} is not set or empty")
        return value
    assert path is not None
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise click.UsageError(f"cannot read {path}: {exc.strerror}") from exc


def make_client(base_url: str, o: dict[str, Any], *, pool_size: int = 4) -> FhirClient:
    if o.get("verbose"):
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("fhir_dnacpr.server").setLevel(logging.DEBUG)
    retry = RetryPolicy(total=o["retries"], retry_after_cap=o["retry_after_cap"])
    return FhirClient(
        base_url,
        auth=make_auth(o),
        retry=retry,
        timeout=(o["connect_timeout"], o["read_timeout"]),
        rate=o["rate"],
        pool_size=pool_size,
        verify=o["ca_bundle"] or True,
    )


def fails_cleanly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the client's errors into one line on stderr and exit code 4, not a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (ServerError, FileNotFoundError, ValueError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_CANNOT_START)

    return wrapper


@click.group("server")
def command() -> None:
    """Talk to a FHIR server: check what it supports."""


@command.command("check")
@click.argument("url")
@connection_options
@fails_cleanly
def check(url: str, **o: Any) -> None:
    """Reachability, auth, FHIR version and supported interactions of the server at URL (JSON report)."""
    report: dict[str, Any] = {"server": url.rstrip("/")}
    with make_client(url, o) as client:
        try:
            caps = client.capabilities()
        except FhirResponseError as exc:  # it answered, but not with a CapabilityStatement
            report["reachable"] = True
            if exc.status in (401, 403):
                report["auth"] = {
                    "method": type(client.auth).__name__,
                    "probe_status": exc.status,
                    "ok": False,
                }
            else:
                report["error"] = str(exc)
            click.echo(json.dumps(report, indent=2))
            sys.exit(1)
        except AuthError as exc:
            report.update(
                reachable=None, auth={"method": type(client.auth).__name__, "ok": False, "error": str(exc)}
            )
            click.echo(json.dumps(report, indent=2))
            sys.exit(1)
        except ServerError as exc:
            report.update(reachable=False, error=str(exc))
            click.echo(json.dumps(report, indent=2))
            sys.exit(1)
        report["reachable"] = True
        report["tls"] = client.base_url.startswith("https://")
        report.update(caps.summary())
        report["resources"] = {k: v for k, v in report["resources"].items() if k in WATCHED_TYPES}
        report["auth"] = _probe_auth(client)
        ok = caps.is_r4 and report["auth"]["ok"]
    click.echo(json.dumps(report, indent=2))
    sys.exit(0 if ok else 1)


WATCHED_TYPES = {
    "Consent",
    "CarePlan",
    "Patient",
    "Practitioner",
    "Organization",
    "RelatedPerson",
    "Provenance",
}


def _probe_auth(client: FhirClient) -> dict[str, Any]:
    """Get a token (if the policy uses one) and make one authenticated search."""
    result: dict[str, Any] = {"method": type(client.auth).__name__}
    try:
        if isinstance(client.auth, TokenEndpointAuth):
            client.auth.access_token()
            result["token"] = "obtained"
        response = client.request("GET", "Consent", params={"_summary": "count", "_count": "0"})
    except AuthError as exc:
        result.update(ok=False, error=str(exc))
        return result
    result["probe_status"] = response.status_code
    result["ok"] = response.status_code not in (401, 403)
    return result
