"""The admin site shows what the registry stores (issue 15, must-have 7): tags and manifests, per repository,
read-only — they change by a push, a delete or the tag API, whose services keep the counters and the audit."""

import pytest

from swr.models import Manifest, Repository, Tag

from . import test_api_tags
from .helpers import changelist_url

pytestmark = pytest.mark.django_db

# Fixtures: group/web with the tags v1, v2 and latest (latest = v2), pushed through the registry.
registry, pushed = test_api_tags.registry, test_api_tags.pushed


@pytest.fixture
def other(registry, pushed):
    """A second repository, group/db, with one tag: the per-repository lists must leave it out."""
    test_api_tags.push_image(registry, "group/db", "5.7", layers=(b"db layer",))
    return Repository.objects.get(name="db")


def web():
    return Repository.objects.get(name="web")


@pytest.fixture
def viewer(staff_client):
    """A staff account that may view every model, and change none."""
    return staff_client(view_all=True)[0]


def test_the_repository_page_links_to_its_tags_and_manifests(viewer, other):
    page = viewer.get(f"/admin/swr/repository/{web().pk}/change/").content.decode()
    query = f"?repository__id__exact={web().pk}"
    assert f'<a href="{changelist_url(Tag)}{query}">3 tags</a>' in page
    assert f'<a href="{changelist_url(Manifest)}{query}">2 manifests</a>' in page


def test_tags_of_one_repository(viewer, pushed, other):
    response = viewer.get(f"{changelist_url(Tag)}?repository__id__exact={web().pk}")
    assert response.status_code == 200
    rows = list(response.context["cl"].result_list)
    assert sorted(tag.name for tag in rows) == ["latest", "v1", "v2"]
    page = response.content.decode()
    assert pushed["v1"] in page
    assert "group/web" in page
    assert "5.7" not in page


def test_manifests_of_one_repository_and_one_manifest(viewer, pushed, other):
    response = viewer.get(f"{changelist_url(Manifest)}?repository__id__exact={web().pk}")
    assert sorted(m.digest for m in response.context["cl"].result_list) == sorted({pushed["v1"], pushed["v2"]})
    manifest = Manifest.objects.get(digest=pushed["v2"])
    page = viewer.get(f"/admin/swr/manifest/{manifest.pk}/change/").content.decode()
    assert "latest, v2" in page
    assert "application/vnd.oci.image.config.v1+json" in page  # the document itself
    assert manifest.config_digest in page


def test_a_tag_links_to_its_manifest(viewer, pushed):
    tag = Tag.objects.get(name="latest")
    page = viewer.get(f"/admin/swr/tag/{tag.pk}/change/").content.decode()
    assert f'href="/admin/swr/manifest/{tag.manifest_id}/change/"' in page
    assert pushed["latest"] in page


def test_search_by_tag_or_repository(viewer, other):
    found = viewer.get(f"{changelist_url(Tag)}?q=5.7").context["cl"].result_list
    assert [tag.name for tag in found] == ["5.7"]
    assert len(viewer.get(f"{changelist_url(Manifest)}?q=web").context["cl"].result_list) == 2


@pytest.mark.parametrize("model", [Tag, Manifest])
def test_read_only_even_for_a_superuser(admin_client, pushed, model):
    """No add, change or delete: a tag and a manifest change by push and by the API only."""
    row = model.objects.filter(repository=web()).first()
    base = changelist_url(model)
    assert admin_client.get(f"{base}add/").status_code == 403
    assert admin_client.post(f"{base}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    page = admin_client.get(f"{base}{row.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    changelist = admin_client.get(base)
    assert "delete_selected" not in changelist.context["cl"].model_admin.get_actions(changelist.wsgi_request)
    before = (Tag.objects.count(), Manifest.objects.count(), web().num_images)
    assert admin_client.post(f"{base}{row.pk}/change/", {"name": "renamed"}).status_code == 403
    assert (Tag.objects.count(), Manifest.objects.count(), web().num_images) == before


@pytest.mark.parametrize("model", [Tag, Manifest])
def test_bad_list_queries_answer_400(viewer, pushed, model):
    for query in ("repository__id__exact=x", "o=99", "repository__id__exact=%00", "p=abc"):
        response = viewer.get(f"{changelist_url(model)}?{query}")
        assert response.status_code in (200, 400), (query, response.status_code)
        assert response.status_code != 500
    assert viewer.get(f"{changelist_url(model)}?repository__id__exact=x").status_code == 400
