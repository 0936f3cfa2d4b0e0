"""A faithful local fake of an Auth0 tenant, for tests and the demo.

It implements what the operator relies on (SPEC §5): the client-credentials
token endpoint, ``GET``/``PATCH /api/v2/clients/{id}`` and
``POST /api/v2/clients/{id}/rotate-secret``, Private Key JWT (client
credentials, enabling them on a client, ``client_assertion`` at the token
endpoint; SPEC §8), with scopes, token expiry, a
per-tenant rate limit, secret propagation delay and fault injection, plus a
``/_fake/`` control API (create clients, read the call log, inject faults,
change settings). Start it with ``auth0-rotator fake-auth0`` or
:class:`FakeAuth0Server`.
"""

from auth0_rotator_dev.fake_auth0._app import make_app, seed_clients
from auth0_rotator_dev.fake_auth0._server import FakeAuth0Server, ensure_tls_files
from auth0_rotator_dev.fake_auth0._state import FakeClient, Fault, Settings, Tenant

__all__ = [
    "FakeAuth0Server",
    "FakeClient",
    "Fault",
    "Settings",
    "Tenant",
    "ensure_tls_files",
    "make_app",
    "seed_clients",
]
