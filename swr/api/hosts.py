"""The registry's address as clients reach it: for pull addresses (``path``) and the token ``service``."""

from django.conf import settings


def registry_host(request) -> str:
    """SWR_REGISTRY_HOST, or (unset) the host the request was sent to: the address the service answers on."""
    return settings.SWR_REGISTRY_HOST or request.get_host()


def internal_registry_host(request) -> str:
    """SWR_REGISTRY_INTERNAL_HOST, or the registry's host (:func:`registry_host`)."""
    return settings.SWR_REGISTRY_INTERNAL_HOST or registry_host(request)
