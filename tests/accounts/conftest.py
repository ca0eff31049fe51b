import pytest


def _cache_clear_own_keys():
    """Delete this run's cache keys only: another suite may share the Redis database."""
    from django.core.cache import cache

    client = cache._cache.get_client(None, write=True)
    keys = list(client.scan_iter(match=cache.make_key("*")))
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def _fresh_rate_limits(db):
    """allauth counts failed logins in the cache (Redis): each test starts from zero."""
    _cache_clear_own_keys()
    yield
    _cache_clear_own_keys()


@pytest.fixture
def login(client):
    """Sign a cast member in (through Django, not the form: the form has its own tests)."""

    def _login(user):
        client.force_login(user)
        return client

    return _login
