"""auth0-rotator: a Kubernetes operator that rotates Auth0 client secrets.

The package lives in ``operator/auth0_rotator``; the ``operator/`` folder is
never a package of its own, so the standard library's :mod:`operator` is
never shadowed.
"""

__version__ = "0.1.0.dev0"
