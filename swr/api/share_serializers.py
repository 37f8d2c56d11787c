"""Shapes of docker login credentials (spec section 11) and repository shares (spec section 12)."""

from datetime import UTC

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from swr.api.serializers import ModelValidatedSerializer, StringField
from swr.choices import SharePermit
from swr.models import DESCRIPTION_MAX_LENGTH, RepositoryShare

FOREVER = "forever"


def utc_text(moment) -> str:
    """A time as spec section 1 writes it: UTC, ISO 8601, with a Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# Section 11.


class AuthInfoSerializer(serializers.Serializer):
    auth = serializers.CharField(help_text="base64 of <user name>:<password>, as docker's config.json keeps it.")


class DockerLoginSerializer(serializers.Serializer):
    """The body of ``POST /v2/manage/utils/secret`` and ``.../authorizationtoken``: docker's ``config.json``
    ``auths`` for the registry host."""

    auths = serializers.DictField(
        child=AuthInfoSerializer(), help_text="One entry, keyed by the registry host (SWR_REGISTRY_HOST)."
    )


# Section 12.


@extend_schema_field(OpenApiTypes.STR)
class DeadlineField(serializers.Field):
    """``forever`` (None: the share never ends) or a UTC time in ISO 8601 (``2027-01-01T00:00:00.000Z``) that is
    still ahead."""

    default_error_messages = {
        "invalid": "deadline must be 'forever' or a UTC time such as 2027-01-01T00:00:00.000Z, not {input!r}.",
        "past": "deadline {input!r} has passed already: give a time ahead, or 'forever'.",
        "null": "deadline must be 'forever' or a UTC time, not null.",
    }

    def to_internal_value(self, data):
        if not isinstance(data, str) or len(data) > 64:
            self.fail("invalid", input=data if not isinstance(data, str) else data[:64])
        if data == FOREVER:
            return None
        try:
            moment = parse_datetime(data)
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            self.fail("invalid", input=data)
        if moment <= timezone.now():
            self.fail("past", input=data)
        return moment

    def to_representation(self, value):
        return FOREVER if value is None else utc_text(value)


class ShareChangeSerializer(ModelValidatedSerializer):
    """Body of ``PATCH .../access-domains/{access_domain}``: what to change; an absent field is unchanged."""

    permit = StringField(required=False, trim_whitespace=False, help_text="read: the only permit there is.")
    deadline = DeadlineField(
        required=False, help_text="When the share ends: 'forever', or a UTC time such as 2027-01-01T00:00:00.000Z."
    )
    description = StringField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text=f"Free text, at most {DESCRIPTION_MAX_LENGTH} characters.",
    )


class ShareCreateSerializer(ShareChangeSerializer):
    """Body of ``POST /v2/manage/namespaces/{namespace}/repositories/{repository}/access-domains``."""

    access_domain = StringField(help_text="Name of the tenant (domain) to share with; not your own.")
    permit = StringField(
        required=False, default=SharePermit.READ, trim_whitespace=False, help_text="read (the default and only one)."
    )
    deadline = DeadlineField(
        required=False,
        default=None,
        help_text="When the share ends: 'forever' (the default), or a UTC time such as 2027-01-01T00:00:00.000Z.",
    )
    description = StringField(
        required=False,
        default="",
        allow_blank=True,
        trim_whitespace=False,
        help_text=f"Free text, at most {DESCRIPTION_MAX_LENGTH} characters.",
    )


class ShareSerializer(serializers.ModelSerializer):
    """One share of a repository with another tenant (spec section 12)."""

    namespace = serializers.CharField(source="repository.namespace.name", help_text="Organization name.")
    repository = serializers.CharField(source="repository.name", help_text="Repository name (with '/').")
    access_domain = serializers.CharField(source="access_domain.name", help_text="The tenant shared with.")
    deadline = serializers.SerializerMethodField(help_text="'forever', or when the share ends (UTC).")
    creator_id = serializers.SerializerMethodField(help_text="Id of the user who shared it.")
    creator_name = serializers.SerializerMethodField(help_text="Name of the user who shared it.")
    created = serializers.DateTimeField(source="created_at", help_text="When it was shared, UTC.")
    updated = serializers.DateTimeField(source="updated_at", help_text="Last change, UTC.")
    status = serializers.BooleanField(source="is_live", help_text="Whether the deadline is still ahead.")

    class Meta:
        model = RepositoryShare
        fields = [
            "namespace", "repository", "access_domain", "permit", "deadline", "description", "creator_id",
            "creator_name", "created", "updated", "status",
        ]  # fmt: skip

    def get_deadline(self, share) -> str:
        return FOREVER if share.deadline is None else utc_text(share.deadline)

    def get_creator_id(self, share) -> str:
        return str(share.creator_id or "")

    def get_creator_name(self, share) -> str:
        return share.creator.username if share.creator else ""


class ShareShowSerializer(ShareSerializer):
    """``GET .../access-domains/{access_domain}``: ``exist`` true and the share, or ``{"exist": false}``."""

    exist = serializers.SerializerMethodField(help_text="Whether the repository is shared with that tenant.")

    class Meta(ShareSerializer.Meta):
        fields = ["exist", *ShareSerializer.Meta.fields]

    def get_exist(self, share) -> bool:
        return True


class ShareShowDocumentSerializer(serializers.Serializer):
    """What ``GET .../access-domains/{access_domain}`` answers, for the OpenAPI document: ``exist``, and the
    share's fields only when it exists (``{"exist": false}`` alone otherwise)."""

    exist = serializers.BooleanField(help_text="Whether the repository is shared with that tenant.")
    namespace = serializers.CharField(required=False)
    repository = serializers.CharField(required=False)
    access_domain = serializers.CharField(required=False)
    permit = serializers.CharField(required=False)
    deadline = serializers.CharField(required=False, help_text="'forever', or when the share ends (UTC).")
    description = serializers.CharField(required=False)
    creator_id = serializers.CharField(required=False)
    creator_name = serializers.CharField(required=False)
    created = serializers.DateTimeField(required=False)
    updated = serializers.DateTimeField(required=False)
    status = serializers.BooleanField(required=False, help_text="Whether the deadline is still ahead.")


class SharedRepositoryV3Serializer(serializers.Serializer):
    """One row of ``GET /v3/manage/shared-repositories`` (spec sections 12 and 13)."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    category = serializers.CharField()
    description = serializers.CharField()
    size = serializers.IntegerField(help_text="Bytes.")
    is_public = serializers.BooleanField()
    num_images = serializers.IntegerField()
    num_download = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    domain_name = serializers.CharField(source="namespace.tenant.name", help_text="The owning tenant.")
    namespace_name = serializers.CharField(source="namespace.name")
    status = serializers.SerializerMethodField(help_text="Whether a share of it is live (its deadline ahead).")

    def get_status(self, repository) -> bool:
        return bool(repository.share_live)
