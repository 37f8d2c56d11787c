"""A signature of a state-changing request is accepted once (issue 11 must-have 4, spec section 1).

A captured signed POST/PUT/PATCH/DELETE used to work again and again for 15 minutes: a deleted repository
was re-created by replaying its create. Signatures are signed here by the official SDK's own Signer.
"""

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from swr import services, signing
from swr.models import Namespace, NamespacePermission, Repository

from .helpers import OPERATOR, assert_swr_error, http_request, send_signed, sign

ALREADY_USED = "the signature was already used"


def body(data) -> bytes:
    return json.dumps(data).encode()


@pytest.mark.django_db
class TestReplays:
    def test_replayed_create_does_not_recreate_a_deleted_repository(self, key_pair, namespace):
        """The example of the issue: create, delete, then the captured create sent again."""
        path, create = "/v2/manage/namespaces/group/repos", body({"repository": "web", "is_public": True})
        captured = sign(*key_pair, "POST", path, body=create)
        assert send_signed("POST", path, captured, body=create).status_code == 201
        delete = sign(*key_pair, "DELETE", f"{path}/web")
        assert send_signed("DELETE", f"{path}/web", delete).status_code == 204
        replayed = assert_swr_error(send_signed("POST", path, captured, body=create), 401, "SVCSTG.SWR.4010000")
        assert ALREADY_USED in replayed["error_msg"]
        assert not Repository.objects.exists()

    def test_replayed_delete_does_not_delete_the_new_repository(self, key_pair, namespace, owner):
        path = "/v2/manage/namespaces/group/repos/web"
        services.repository_create(namespace=namespace, name="web", is_public=False, creator=owner, actor=OPERATOR)
        captured = sign(*key_pair, "DELETE", path)
        assert send_signed("DELETE", path, captured).status_code == 204
        services.repository_create(namespace=namespace, name="web", is_public=False, creator=owner, actor=OPERATOR)
        assert_swr_error(send_signed("DELETE", path, captured), 401, "SVCSTG.SWR.4010000")
        assert Repository.objects.filter(name="web").exists()

    def test_replayed_patch_is_refused(self, key_pair, namespace, owner):
        path = "/v2/manage/namespaces/group/repos/web"
        services.repository_create(namespace=namespace, name="web", is_public=False, creator=owner, actor=OPERATOR)
        update = body({"is_public": True, "category": "linux", "description": "first"})
        captured = sign(*key_pair, "PATCH", path, body=update)
        assert send_signed("PATCH", path, captured, body=update).status_code == 201
        Repository.objects.update(description="changed since")
        assert_swr_error(send_signed("PATCH", path, captured, body=update), 401, "SVCSTG.SWR.4010000")
        assert Repository.objects.get().description == "changed since"

    def test_replayed_grant_removal_is_refused(self, key_pair, namespace, make_user, tenant, grant):
        bob = make_user("bob", tenant)
        grant(bob, namespace, 3)
        path, payload = "/v2/manage/namespaces/group/access", body([str(bob.pk)])
        captured = sign(*key_pair, "DELETE", path, body=payload)
        assert send_signed("DELETE", path, captured, body=payload).status_code in (200, 201, 204)
        grant(bob, namespace, 3)
        assert_swr_error(send_signed("DELETE", path, captured, body=payload), 401, "SVCSTG.SWR.4010000")
        assert NamespacePermission.objects.filter(user=bob).exists()

    @pytest.mark.parametrize("method", ["PUT", "POST", "DELETE"])
    def test_an_answered_request_spends_its_signature_whatever_the_answer(self, key_pair, namespace, method):
        """405 (PUT, POST on an organization), 204 (DELETE): the request was handled; its copy is refused."""
        path = "/v2/manage/namespaces/group"
        headers = sign(*key_pair, method, path)
        assert send_signed(method, path, headers).status_code in (204, 405)
        assert ALREADY_USED in send_signed(method, path, headers).json()["error_msg"]

    def test_reads_may_be_repeated(self, key_pair, namespace):
        headers = sign(*key_pair, "GET", "/v2/manage/namespaces/group")
        assert [send_signed("GET", "/v2/manage/namespaces/group", headers).status_code for _ in range(3)] == [200] * 3
        head = sign(*key_pair, "HEAD", "/v2/manage/namespaces/group")
        assert [send_signed("HEAD", "/v2/manage/namespaces/group", head).status_code for _ in range(2)] == [200] * 2

    def test_a_new_second_or_a_unique_signed_header_makes_a_new_signature(self, key_pair, namespace):
        """Two truly identical requests of one second share a signature and the second is refused; a new
        X-Sdk-Date second, or a unique header signed into each (X-Request-Id), makes them differ."""
        path, payload = "/v2/manage/namespaces", body({"namespace": "again"})
        now = datetime.now(UTC)

        def create(headers):
            return send_signed("POST", path, headers, body=payload)

        assert create(sign(*key_pair, "POST", path, body=payload, date=now)).status_code == 201
        Namespace.objects.filter(name="again").delete()
        refused = create(sign(*key_pair, "POST", path, body=payload, date=now))
        assert ALREADY_USED in assert_swr_error(refused, 401, "SVCSTG.SWR.4010000")["error_msg"]
        assert not Namespace.objects.filter(name="again").exists()
        later = now + timedelta(seconds=1)
        assert create(sign(*key_pair, "POST", path, body=payload, date=later)).status_code == 201
        Namespace.objects.filter(name="again").delete()
        with_id = sign(*key_pair, "POST", path, body=payload, date=now, extra={"X-Request-Id": "second-create"})
        assert create(with_id).status_code == 201

    def test_a_server_error_gives_the_signature_back_for_the_retry(self, key_pair, namespace, monkeypatch):
        """A 5xx changed nothing; the client's retry (same second, so the same signature) goes through."""
        path, payload = "/v2/manage/namespaces/group/repos", body({"repository": "web", "is_public": True})
        create, failures = services.repository_create, []

        def fail_once(**kwargs):
            if not failures:
                failures.append(kwargs)
                raise RuntimeError("the server failed")
            return create(**kwargs)

        monkeypatch.setattr(services, "repository_create", fail_once)
        headers = sign(*key_pair, "POST", path, body=payload)
        assert_swr_error(send_signed("POST", path, headers, body=payload), 500, "SVCSTG.SWR.5000046")
        assert send_signed("POST", path, headers, body=payload).status_code == 201
        assert ALREADY_USED in send_signed("POST", path, headers, body=payload).json()["error_msg"]
        assert Repository.objects.get().name == "web"

    @pytest.mark.parametrize(
        ("offset", "lifetime"),
        [(timedelta(minutes=15), 30 * 60 + 2), (timedelta(0), 15 * 60 + 2), (-timedelta(minutes=15), 2)],
        ids=["date 15 min ahead", "date now", "date 15 min ago"],
    )
    def test_a_signature_is_remembered_while_its_date_is_accepted(self, offset, lifetime):
        """The record lives until X-Sdk-Date leaves the 15-minute window, however far ahead the date was."""
        now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        assert signing.claim_lifetime(now + offset, now=now) == lifetime

    def test_claim_is_atomic_per_signature(self):
        first, second = uuid.uuid4().hex * 2, uuid.uuid4().hex * 2
        assert signing.claim(first, datetime.now(UTC), now=datetime.now(UTC))
        assert not signing.claim(first.upper(), datetime.now(UTC), now=datetime.now(UTC))
        assert signing.claim(second, datetime.now(UTC), now=datetime.now(UTC))

    def test_no_flood_of_other_signatures_pushes_a_used_one_out(self):
        """A tester filled the old cache with a hostile tenant's signed requests until it culled the record of
        another tenant's DELETE, which could then be replayed. Records go only when their date has expired."""
        now = datetime.now(UTC)
        victim = uuid.uuid4().hex * 2
        assert signing.claim(victim, now, now=now)
        for _ in range(300):
            assert signing.claim(uuid.uuid4().hex * 2, now, now=now)
        assert not signing.claim(victim, now, now=now)

    def test_expired_records_are_removed(self):
        from swr.models import UsedSignature

        then = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        old = uuid.uuid4().hex * 2
        assert signing.claim(old, then, now=then)
        later = then + timedelta(minutes=16)
        assert signing.claim(uuid.uuid4().hex * 2, later, now=later)
        assert not UsedSignature.objects.filter(signature=old).exists()


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_copies_of_one_signed_request_racing_on_live_gunicorn(server, key_pair):
    """Eight copies of one signed create, released together at four gunicorn workers, in many rounds:
    exactly one is accepted, the others are refused as replays (never 409 or 5xx): the store of used
    signatures is shared by the workers and its claim is atomic."""
    rounds, copies = 12, 8
    for round_number in range(rounds):
        path, payload = "/v2/manage/namespaces", body({"namespace": f"race-{round_number}"})
        headers = sign(*key_pair, "POST", path, body=payload, host=server.removeprefix("http://"))
        barrier = threading.Barrier(copies)
        results = []

        def fire(headers=headers, path=path, payload=payload, barrier=barrier, results=results):
            barrier.wait(timeout=10)
            sent = {name: value for name, value in headers.items() if name.lower() != "host"}
            results.append(http_request(f"{server}{path}", "POST", raw=payload, headers=sent))

        threads = [threading.Thread(target=fire) for _ in range(copies)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        statuses = sorted(status for status, _, _ in results)
        assert statuses == [201] + [401] * (copies - 1), results
        assert all(ALREADY_USED in content.decode() for status, _, content in results if status == 401)
    assert Namespace.objects.filter(name__startswith="race-").count() == rounds
