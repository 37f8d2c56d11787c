"""Fixed vocabularies: repository categories and permission levels."""

from django.db import models


class Category(models.TextChoices):
    """Category of an image repository, as SWR names them."""

    APP_SERVER = "app_server", "Application server"
    LINUX = "linux", "Linux"
    FRAMEWORK_APP = "framework_app", "Framework application"
    DATABASE = "database", "Database"
    LANG = "lang", "Programming language"
    OTHER = "other", "Other"
    WINDOWS = "windows", "Windows"
    ARM = "arm", "Arm"


# Spellings accepted on input and stored as the canonical value.
CATEGORY_ALIASES = {"arms": Category.ARM}


class PermissionLevel(models.IntegerChoices):
    """What a grant allows: each level includes the ones below it."""

    READ = 1, "Read"
    EDIT = 3, "Edit"
    MANAGE = 7, "Manage"

    @classmethod
    def listing(cls) -> str:
        """The levels for a message: "1, 3 or 7"."""
        values = [str(value) for value in cls.values]
        return f"{', '.join(values[:-1])} or {values[-1]}"


class SharePermit(models.TextChoices):
    """What a share of a repository gives the other tenant (spec section 12): read, nothing more."""

    READ = "read", "Read"


class TemporaryLoginKind(models.TextChoices):
    """Which call issued a temporary registry login (spec section 11): its user name is ``<project>@<id>`` for a
    secret, ``bearertoken@<id>`` for an authorization token."""

    SECRET = "secret", "Secret (docker login)"
    BEARER_TOKEN = "bearertoken", "Authorization token"
