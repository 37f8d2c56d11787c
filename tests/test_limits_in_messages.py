"""Messages, help texts and the OpenAPI document read limits from settings and names.py (issue 12, must-have 8):
a limit changed in one place is the limit every text states."""

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from swr import names
from swr.api.serializers import RepositoryCreateSerializer
from swr.choices import PermissionLevel
from swr.errors import BodyTooLarge
from swr.models import DESCRIPTION_MAX_LENGTH, Repository

from .helpers import assert_swr_error, send_signed, sign


def test_help_texts_state_the_rules_lengths():
    fields = RepositoryCreateSerializer().fields
    assert f"1-{names.REPOSITORY.max_length} characters" in fields["repository"].help_text
    assert f"at most {DESCRIPTION_MAX_LENGTH} characters" in fields["description"].help_text
    assert Repository._meta.get_field("description").max_length == DESCRIPTION_MAX_LENGTH


def test_the_body_limit_is_stated_from_the_setting(settings):
    assert f"{settings.SWR_MAX_BODY_BYTES / 1024 / 1024:g} MiB" in BodyTooLarge().message


def test_the_levels_are_listed_from_the_choices():
    assert PermissionLevel.listing() == "1, 3 or 7"


@pytest.mark.django_db
def test_the_signature_window_is_stated_from_the_setting(settings, key_pair):
    settings.SWR_SIGNATURE_MAX_SKEW = timedelta(minutes=10)
    headers = sign(*key_pair, "GET", "/v2/manage/namespaces", date=datetime.now(UTC) - timedelta(minutes=11))
    body = assert_swr_error(send_signed("GET", "/v2/manage/namespaces", headers), 401, "SVCSTG.SWR.4010000")
    assert "more than 10 minutes from now" in body["error_msg"]


@pytest.mark.django_db
def test_the_openapi_document_states_the_limits():
    document = APIClient().get("/openapi.json").content.decode()
    assert f"1-{names.NAMESPACE.max_length} characters" in document
    assert f"at most {DESCRIPTION_MAX_LENGTH} characters" in document
