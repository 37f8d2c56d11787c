"""What a new user meets in the admin (issue 11, must-have 10).

The admin says "organization" as the API documentation and the README do; the
audit list shows outcome and status first; the repository form searches
organizations instead of listing those of every tenant; the credential actions
print what the API and the SDK need besides the secret.
"""

import re
from html.parser import HTMLParser

import pytest

from swr import audit, services
from swr.models import AuditRecord, User

from .helpers import OPERATOR, admin_action, api_actor

pytestmark = pytest.mark.django_db


class _Text(HTMLParser):
    """The text a person reads on a page: no markup, no scripts, no attribute values."""

    def __init__(self):
        super().__init__()
        self.parts, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag):
        self._skip -= tag in ("script", "style")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def visible_text(response) -> str:
    parser = _Text()
    parser.feed(response.content.decode())
    return " ".join("".join(parser.parts).split())


@pytest.fixture
def pages(namespace):
    repository = services.repository_create(namespace=namespace, name="web", is_public=False, actor=OPERATOR)
    grant = namespace.permissions.get()
    return [
        "/admin/",
        "/admin/swr/",
        "/admin/swr/namespace/",
        "/admin/swr/namespace/add/",
        f"/admin/swr/namespace/{namespace.pk}/change/",
        "/admin/swr/repository/",
        "/admin/swr/repository/add/",
        f"/admin/swr/repository/{repository.pk}/change/",
        "/admin/swr/namespacepermission/",
        f"/admin/swr/namespacepermission/{grant.pk}/change/",
        "/admin/swr/tenant/",
        f"/admin/swr/tenant/{namespace.tenant_id}/change/",
        f"/admin/swr/user/{namespace.creator_id}/change/",
    ]


def test_the_admin_says_organization(admin_client, pages):
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        text = visible_text(response)
        assert "namespace" not in text.lower(), (url, re.findall(r".{40}namespace.{40}", text, re.IGNORECASE))
    assert "Organization permissions" in visible_text(admin_client.get("/admin/"))
    tenant_page = visible_text(admin_client.get(pages[-2]))
    assert "Organization quota" in tenant_page
    assert "Organizations owned" in tenant_page


def test_audit_list_shows_outcome_and_status_first(admin_client, owner):
    audit.record(
        api_actor(owner),
        "repository.create",
        "namespace:1 " + "a-very-long-object-name/" * 20,
        success=False,
        status_code=409,
        detail="SVCSTG.SWR.4090006",
    )
    response = admin_client.get("/admin/swr/auditrecord/")
    changelist = response.context["cl"]
    columns = list(changelist.list_display)
    assert columns.index("outcome") <= 2
    assert columns.index("status") <= 2
    record = AuditRecord.objects.get()
    html = response.content.decode()
    cells = dict(re.findall(r'<td class="field-(\w+)[^"]*">(.*?)</td>', html))
    assert cells["outcome"] == "Failure"
    assert cells["status"] == "409"
    shown = re.sub(r"<[^>]+>", "", cells["short_object"])
    assert len(shown) <= 32
    assert shown.rstrip("…") == record.object[: len(shown.rstrip("…"))]
    assert f'title="{record.object}"' in cells["short_object"]  # the whole object on hover
    assert html.index("field-outcome") < html.index("field-action") < html.index("field-short_object")


def test_repository_form_searches_organizations(admin_client, namespace, make_tenant, make_user):
    """Every organization of every tenant used to be one option of a plain select."""
    other = make_user("bob", make_tenant("globex"))
    services.namespace_create(name="elsewhere", tenant=other.tenant, creator=other, actor=OPERATOR)
    page = admin_client.get("/admin/swr/repository/add/")
    widget = page.context["adminform"].form.fields["namespace"].widget
    assert type(widget.widget).__name__ == "AutocompleteSelect"
    assert "elsewhere" not in page.content.decode()
    params = {"app_label": "swr", "model_name": "repository", "field_name": "namespace"}
    found = admin_client.get("/admin/autocomplete/", {**params, "term": "globex"}).json()
    assert [r["text"] for r in found["results"]] == ["elsewhere"]
    found = admin_client.get("/admin/autocomplete/", {**params, "term": "gro"}).json()
    assert [r["text"] for r in found["results"]] == ["group"]


def test_access_key_action_prints_the_project_id(admin_client, owner):
    """BasicCredentials(AK, SK, PROJECT_ID): the PROJECT_ID is the tenant's project id."""
    response = admin_action(admin_client, User, "issue_access_key", [owner.pk], follow=True)
    text = visible_text(response)
    key = owner.access_keys.get()
    assert f"PROJECT_ID {owner.tenant.project_id}" in text
    assert f"AK {key.access_key} SK " in text
    assert "BasicCredentials(AK, SK, PROJECT_ID)" in text


def test_token_action_prints_user_id_tenant_and_project_id(admin_client, owner):
    response = admin_action(admin_client, User, "issue_token", [owner.pk], follow=True)
    text = visible_text(response)
    assert f"user id {owner.pk}, tenant acme, PROJECT_ID {owner.tenant.project_id}" in text
    assert "X-Auth-Token" in text


def test_credential_action_says_when_the_user_has_no_tenant(admin_client):
    loner = User.objects.create_user("loner")
    response = admin_action(admin_client, User, "issue_token", [loner.pk], follow=True)
    assert "no tenant: the API gives this user nothing until one is set" in visible_text(response)
