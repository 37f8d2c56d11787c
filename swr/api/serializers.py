"""Request shapes of the management API.

Serializers check types and shapes; the rules of a value (names, choices,
lengths) belong to the model, which the serializer asks through
``full_clean()`` so that the API and the admin give the same messages.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import QueryDict
from rest_framework import serializers
from rest_framework.fields import ProhibitNullCharactersValidator, get_error_detail

from swr.choices import CATEGORY_ALIASES, Category
from swr.models import Namespace, Repository


class SwrBooleanField(serializers.Field):
    """A strict boolean: JSON true/false; in form bodies the strings true/false in any case."""

    default_error_messages = {
        "required": "is_public is required: true or false.",
        "null": "is_public must be true or false, not null.",
        "invalid": "is_public must be true or false, not {input!r}.",
    }
    error_code = "invalid_is_public"

    def fail(self, key, **kwargs):
        raise serializers.ValidationError(self.error_messages[key].format(**kwargs), code=self.error_code)

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        from_form = isinstance(self.root.initial_data, QueryDict)
        if from_form and isinstance(data, str) and data.lower() in ("true", "false"):
            return data.lower() == "true"
        self.fail("invalid", input=data)

    def to_representation(self, value):
        return bool(value)


class CategoryField(serializers.CharField):
    """A repository category; the model checks the choice, this accepts the old spelling 'arms'."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        return CATEGORY_ALIASES.get(value, value)


class NameField(serializers.CharField):
    """A name, passed to the model untouched: the naming rule judges blanks, white space and every character."""

    def __init__(self, **kwargs):
        super().__init__(allow_blank=True, trim_whitespace=False, **kwargs)
        self.validators = [v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)]


class ModelValidatedSerializer(serializers.Serializer):
    """Validate the fields through the model's ``full_clean()``, reporting errors under the API's field names.

    The model is built in memory only; relations and uniqueness are the service's business.
    """

    model = None

    def validate(self, attrs):
        names_by_source = {field.source: name for name, field in self.fields.items()}
        instance = self.model(**attrs)
        exclude = [f.name for f in self.model._meta.fields if f.name not in attrs]
        try:
            instance.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
        except DjangoValidationError as exc:
            errors = get_error_detail(exc)
            raise serializers.ValidationError({names_by_source.get(k, k): v for k, v in errors.items()}) from None
        return attrs


class NamespaceCreateSerializer(ModelValidatedSerializer):
    model = Namespace

    namespace = NameField(
        source="name",
        help_text="Organization name: 1-64 characters, lower-case letters, digits, '.', '_' and '-'.",
    )


class RepositoryCreateSerializer(ModelValidatedSerializer):
    model = Repository

    repository = NameField(
        source="name",
        help_text="Image repository name: 1-128 characters, lower-case letters, digits, '.', '/', '_' and '-'.",
    )
    is_public = SwrBooleanField(help_text="Whether every tenant may pull the repository.")
    category = CategoryField(
        required=False,
        default=Category.OTHER,
        trim_whitespace=False,
        help_text="One of " + ", ".join(Category.values) + " ('arms' is read as 'arm'). Default: other.",
    )
    description = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        trim_whitespace=False,
        help_text="Free text, at most 1000 characters.",
    )
