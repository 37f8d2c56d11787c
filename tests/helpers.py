"""Assertions and actors shared by the tests; error bodies as spec section 1 gives them."""

import json

from swr.audit import Actor, Source

ERROR_KEYS = {"error_code", "error_msg", "errorCode", "errorMessage", "details"}


def assert_swr_error(response, status: int, code: str) -> dict:
    """The answer has ``status`` and exactly the SWR error body with ``code``; returns the body."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert set(body) == ERROR_KEYS, body
    assert body["error_code"] == code, body
    assert body["errorCode"] == code
    assert body["error_msg"] == body["errorMessage"]
    assert isinstance(body["error_msg"], str)
    assert body["error_msg"]
    assert isinstance(body["details"], list)
    return body


# The actor of a test's own setup: an operator's management command (swr.audit.Actor).
OPERATOR = Actor.command()


def api_actor(user) -> Actor:
    """``user`` calling through the API, held to their grants."""
    return Actor(user=user, source=Source.API)
