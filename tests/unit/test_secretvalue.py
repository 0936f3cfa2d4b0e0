"""Secret values never show up when formatted, logged or raised."""

from __future__ import annotations

import logging
import pickle

import pytest

from auth0_rotator.secretvalue import SecretValue, generate_client_secret


def test_formatting_never_shows_the_value(caplog: pytest.LogCaptureFixture) -> None:
    secret = SecretValue("hunter2-very-secret")
    caplog.set_level(logging.INFO)
    logging.getLogger("t").info("value %s %r", secret, secret)
    rendered = [str(secret), repr(secret), f"{secret}", f"{secret!r}", f"{secret:>30}"]
    assert all("hunter2" not in r for r in rendered)
    assert "hunter2" not in caplog.text
    assert "hunter2" not in str(ValueError(secret))


def test_reveal_returns_the_value_and_equality_compares_values() -> None:
    assert SecretValue("a").reveal() == "a"
    assert SecretValue("a") == SecretValue("a")
    assert SecretValue("a") != SecretValue("b")


def test_pickling_is_refused() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(SecretValue("x"))


def test_generated_secrets_are_long_url_safe_and_distinct() -> None:
    values = {generate_client_secret().reveal() for _ in range(50)}
    assert len(values) == 50
    for value in values:
        assert len(value) == 64
        assert set(value) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def test_generated_secrets_are_at_least_48_characters() -> None:
    with pytest.raises(ValueError, match="48"):
        generate_client_secret(47)
