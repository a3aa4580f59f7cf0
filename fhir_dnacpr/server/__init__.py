"""The FHIR REST client: push convert output to a server, pull it back, robustly and with auth.

>>> from fhir_dnacpr.server import FhirClient, Pusher, RetryPolicy, SmartBackendAuth
>>> client = FhirClient("https://fhir.example.org/R4", auth=..., retry=RetryPolicy(total=8), rate=20)
>>> Pusher(client, concurrency=4).push_directory("out/")          # writes push-summary.json …
>>> Puller(client).pull(PullQuery(patient="9990000018"), "pulled/")

Policies (``RetryPolicy``, the ``Auth`` classes, ``TokenBucket``) are small objects you can build,
pass in and test on their own. See docs/client.md.
"""

from fhir_dnacpr.server.auth import (
    Auth,
    BearerToken,
    ClientSecretAuth,
    NhsSignedJwtAuth,
    NoAuth,
    SmartBackendAuth,
    load_private_key,
)
from fhir_dnacpr.server.bulk import BulkExporter, BulkResult
from fhir_dnacpr.server.capabilities import Capabilities
from fhir_dnacpr.server.client import FhirClient
from fhir_dnacpr.server.errors import (
    AuthError,
    FhirResponseError,
    ServerError,
    UnreachableError,
    UnsupportedError,
)
from fhir_dnacpr.server.pull import Puller, PullQuery, PullSummary, WatermarkStore
from fhir_dnacpr.server.push import Pusher, PushSummary
from fhir_dnacpr.server.ratelimit import TokenBucket
from fhir_dnacpr.server.retry import RetryPolicy, parse_retry_after

__all__ = [
    "Auth",
    "AuthError",
    "BearerToken",
    "BulkExporter",
    "BulkResult",
    "Capabilities",
    "ClientSecretAuth",
    "FhirClient",
    "FhirResponseError",
    "NhsSignedJwtAuth",
    "NoAuth",
    "PullQuery",
    "PullSummary",
    "Puller",
    "PushSummary",
    "Pusher",
    "RetryPolicy",
    "ServerError",
    "SmartBackendAuth",
    "TokenBucket",
    "UnreachableError",
    "UnsupportedError",
    "WatermarkStore",
    "load_private_key",
    "parse_retry_after",
]
