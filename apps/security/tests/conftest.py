from __future__ import annotations

import pytest

from apps.security.services import clear_key_caches

TEST_MASTER_KEY = "00112233445566778899aabbccddeeff" * 2


@pytest.fixture(autouse=True)
def _master_key(settings):
    """A fixed master key and the default suite; no unwrapped key survives a test."""
    settings.MASTER_KEY = TEST_MASTER_KEY
    settings.KMS_BACKEND = "apps.security.kms.LocalMasterKey"
    settings.CRYPTO_SUITE = "gm"
    clear_key_caches()
    yield
    clear_key_caches()


@pytest.fixture(params=["gm", "intl"])
def suite_name(request, settings):
    settings.CRYPTO_SUITE = request.param
    return request.param


@pytest.fixture
def key_events():
    """Every key_used signal sent during the test, as dicts."""
    from apps.security.signals import key_used

    seen: list[dict] = []

    def receiver(sender, **kwargs):
        kwargs.pop("signal", None)
        seen.append(kwargs)

    key_used.connect(receiver, weak=False)
    yield seen
    key_used.disconnect(receiver)
