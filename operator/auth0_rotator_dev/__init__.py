"""Development tools of auth0-rotator: never part of the operator's image.

- :mod:`auth0_rotator_dev.fake_auth0` — a faithful local fake Auth0 tenant;
- :mod:`auth0_rotator_dev.devcluster` — a local control plane built from Go
  module sources, and the demo;
- :mod:`auth0_rotator_dev.pki` — the certificates both of them use.

The wheel (and so the container image) holds only :mod:`auth0_rotator`; a
development install (``make venv``, an editable install of the checkout) also
imports this package, and ``auth0-rotator fake-auth0`` appears only then
(:mod:`auth0_rotator_dev.commands`).
"""
