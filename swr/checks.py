"""System checks of an installation (`python manage.py check --deploy`)."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def secret_key_shared(app_configs, **kwargs):
    """swr.W001: the secret key was generated into this node's var/ (DJANGO_SECRET_KEY unset). Sessions, the
    stored AK/SK secret keys (unless SWR_CREDENTIALS_KEY is set) and the registry's token key (unless
    SWR_REGISTRY_TOKEN_KEY is set) depend on it: another node, or this one on a new disk, would read none of them."""
    if not settings.SWR_SECRET_KEY_GENERATED:
        return []
    return [
        Warning(
            "DJANGO_SECRET_KEY is not set: the secret key was generated into var/secret_key and belongs to this "
            "node alone.",
            hint="Set DJANGO_SECRET_KEY, the same on every node (README, 'Several nodes').",
            id="swr.W001",
        )
    ]
