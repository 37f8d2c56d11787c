"""Tag races over real HTTP (spec section 10 on the rows of section 9): gunicorn in its own processes, the
requests released together (tests/test_races.py ``together``), round after round. Every answer is a success or
a clean 4xx; the database agrees: no tag points at a removed manifest, ``num_images`` equals the tag rows."""

import base64
import hashlib
import json
import time
from collections import Counter
from functools import partial

import pytest

from swr.models import Manifest, Repository, Tag

from .helpers import http_request
from .test_races import behind_a_lock, rounds, together

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
TAG_EXISTS, TAG_NOT_FOUND = "SVCSTG.SWR.4090082", "SVCSTG.SWR.4040048"


def answer(url, method, body=None, token=None, headers=None):
    """(status, SWR error code, OCI error code, or None)."""
    status, _, content = http_request(url, method, body=body, token=token, headers=headers, timeout=60)
    if status < 400:
        return status, None
    data = json.loads(content)
    return status, data.get("error_code") or data["errors"][0]["code"]


@pytest.fixture
def basic(token, namespace):
    """The registry's Authorization header for alice (manage on organization 'group'): her API token as the
    password (spec section 9, credential 3), which costs the server no password hash per request."""
    return {"Authorization": "Basic " + base64.b64encode(f"alice:{token}".encode()).decode()}


def push(server, basic, name: str, tag: str, seed: str) -> str:
    """Push a one-layer image as ``tag`` through the registry; its manifest digest."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    layer = f"layer {seed}".encode()
    descriptors = []
    for blob, media_type in ((config, "application/vnd.oci.image.config.v1+json"),
                             (layer, "application/vnd.oci.image.layer.v1.tar+gzip")):  # fmt: skip
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        url = f"{server}/v2/{name}/blobs/uploads/?digest={digest}"
        headers = {**basic, "Content-Type": "application/octet-stream"}
        assert http_request(url, "POST", raw=blob, headers=headers).status == 201
        descriptors.append({"mediaType": media_type, "digest": digest, "size": len(blob)})
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptors[0],
                           "layers": descriptors[1:]}).encode()  # fmt: skip
    headers = {**basic, "Content-Type": OCI_MANIFEST}
    assert http_request(f"{server}/v2/{name}/manifests/{tag}", "PUT", raw=manifest, headers=headers).status == 201
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


def assert_counters_are_the_rows():
    for repository in Repository.objects.all():
        assert repository.num_images == Tag.objects.filter(repository=repository).count(), repository


def test_parallel_copies_to_one_tag_answer_one_201(server, token, basic):
    """12 copies onto one new tag at once: one 201, eleven 409 (4090082); one row, counted once."""
    base = f"{server}/v2/manage/namespaces/group/repos/web/tags"
    push(server, basic, "group/web", "v1", "copies")
    for number in rounds(10):
        body = {"source_tag": "v1", "destination_tag": f"copy-{number}"}
        requests = [partial(answer, base, "POST", body, token)] * 12
        answers = (
            behind_a_lock(Repository.objects.get(name="web"), 0.3, *requests) if number % 2 else together(*requests)
        )
        assert sorted(answers, key=str) == [(201, None)] + [(409, TAG_EXISTS)] * 11, (number, Counter(answers))
        assert Tag.objects.filter(name=f"copy-{number}").count() == 1
        assert_counters_are_the_rows()


def test_copy_racing_a_manifest_delete_leaves_no_tag_on_nothing(server, token, basic):
    """A tag copy and the registry's DELETE of the source manifest, at the same moment, with the copy's start swept
    across the delete's: the copy answers 201 (its tag then goes with the manifest) or 404 (4040048); the delete
    answers 202; afterwards neither the manifest nor any tag of it is left, and the counters are the rows."""
    base = f"{server}/v2/manage/namespaces/group/repos/web/tags"
    outcomes = Counter()
    for number in rounds(30):
        digest = push(server, basic, "group/web", f"src-{number}", f"delete-{number}")
        lag = (number % 5 - 2) / 1000

        def copy(number=number, lag=lag):
            time.sleep(max(lag, 0))
            return answer(base, "POST", {"source_tag": f"src-{number}", "destination_tag": f"dst-{number}"}, token)

        def delete(digest=digest, lag=lag):
            time.sleep(max(-lag, 0))
            return answer(f"{server}/v2/group/web/manifests/{digest}", "DELETE", headers=basic)

        copied, deleted = together(copy, delete)
        outcomes[copied] += 1
        assert copied in {(201, None), (404, TAG_NOT_FOUND)}, (number, copied, deleted)
        assert deleted == (202, None), (number, copied, deleted)
        assert not Manifest.objects.filter(digest=digest).exists()
        assert not Tag.objects.filter(name__in=[f"src-{number}", f"dst-{number}"]).exists(), (number, copied)
        assert_counters_are_the_rows()
    print(outcomes)


def test_one_tag_deleted_through_both_apis_at_once(server, token, basic):
    """8 DELETEs of one tag through the management API and 4 through the registry: one succeeds (204 or 202),
    every other answers 404 in its API's body (4040048 or MANIFEST_UNKNOWN); the image stays under its other tag."""
    base = f"{server}/v2/manage/namespaces/group/repos/web/tags"
    for number in rounds(10):
        push(server, basic, "group/web", f"keep-{number}", f"both-{number}")
        assert (
            answer(base, "POST", {"source_tag": f"keep-{number}", "destination_tag": f"gone-{number}"}, token)[0] == 201
        )
        requests = [partial(answer, f"{base}/gone-{number}", "DELETE", None, token)] * 8 + [
            partial(answer, f"{server}/v2/group/web/manifests/gone-{number}", "DELETE", None, None, basic)
        ] * 4
        answers = together(*requests)
        wins = [a for a in answers if a[0] < 400]
        assert len(wins) == 1, (number, Counter(answers))
        assert set(answers) - set(wins) <= {(404, TAG_NOT_FOUND), (404, "MANIFEST_UNKNOWN")}, Counter(answers)
        assert Tag.objects.filter(name=f"keep-{number}").exists()
        assert not Tag.objects.filter(name=f"gone-{number}").exists()
        assert_counters_are_the_rows()
