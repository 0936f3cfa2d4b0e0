"""The fake tenant's HTTP API (aiohttp): Auth0's endpoints plus a ``/_fake/`` control API.

Auth0 endpoints follow Auth0's documented behaviour and the official OpenAPI
descriptions: :mod:`._oauth` (the token endpoint), :mod:`._management` (the
Management API), :mod:`._credentials` (Private Key JWT credentials);
:mod:`._http` holds what they share (errors, faults, rate limit, call log)
and :mod:`._control` the control API that creates clients, reads the call
log, injects faults and changes settings.
"""

from __future__ import annotations

from aiohttp import web

from auth0_rotator_dev.fake_auth0 import _credentials as credentials
from auth0_rotator_dev.fake_auth0 import _management as management
from auth0_rotator_dev.fake_auth0._control import add_control_routes, seed_clients
from auth0_rotator_dev.fake_auth0._http import TENANT_KEY, auth0_middleware
from auth0_rotator_dev.fake_auth0._oauth import token
from auth0_rotator_dev.fake_auth0._state import Tenant

__all__ = ["TENANT_KEY", "make_app", "seed_clients"]


def make_app(tenant: Tenant) -> web.Application:
    """Build the aiohttp application serving ``tenant``."""
    app = web.Application(middlewares=[auth0_middleware])
    app[TENANT_KEY] = tenant
    routes = app.router
    routes.add_post("/oauth/token", token, name="token")
    clients = "/api/v2/clients/{id}"
    routes.add_get(clients, management.get_client, name="get-client")
    routes.add_patch(clients, management.patch_client, name="patch-client")
    routes.add_post(f"{clients}/rotate-secret", management.rotate_secret, name="rotate-secret")
    creds = "/api/v2/clients/{id}/credentials"
    routes.add_get(creds, credentials.list_credentials, name="list-credentials")
    routes.add_post(creds, credentials.create_credential, name="create-credential")
    one = creds + "/{credential_id}"
    routes.add_get(one, credentials.get_credential, name="get-credential")
    routes.add_patch(one, credentials.patch_credential, name="patch-credential")
    routes.add_delete(one, credentials.delete_credential, name="delete-credential")
    actions = "/api/v2/actions/actions/{id}"
    routes.add_get(actions, management.get_action, name="get-action")
    routes.add_patch(actions, management.patch_action, name="patch-action")
    routes.add_post(f"{actions}/deploy", management.deploy_action, name="deploy-action")
    rules = "/api/v2/rules-configs/{key}"
    routes.add_put(rules, management.put_rules_config, name="put-rules-config")
    add_control_routes(app)
    return app
