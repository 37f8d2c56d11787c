"""The registry's cross-tenant permission matrix (issue 13, must-have 4; spec section 9 "Permissions", with
section 6's levels), over real registry requests through Django's test client.

Each cell is one operation (pull a manifest or a blob, tag list, referrers, push, push creating a repository,
delete a manifest, a tag or a blob, mount, catalog) by one caller (anonymous with SWR_ANONYMOUS_PULL off and on,
users of another tenant, grants on the organization, grants on the repository only, the tenant administrator)
on a private or a public repository, logging in with HTTP Basic or with a bearer token that
``GET /service/token`` issued for the operation's scope. Every cell's expected answer comes from one table,
:data:`MATRIX`: spec section 9's rules written out again here, not imported from the code
(tests/test_registry_policy.py checks the policy function alone; this checks what the routes do).

In each cell:

- allowed: the success answers, and the change in the database is exactly the operation's (rows, the
  repository's and tenant's counters, one audit record of success per change, with the request's id);
- refused: 401 UNAUTHORIZED with the Bearer challenge for the operation's scope to an anonymous caller, 403
  DENIED to an authenticated one; nothing changes (rows, counters, upload sessions, stored bytes, audit records
  of success);
- a mount from a repository the caller may not pull is an ordinary upload (202): the blob stays unknown to the
  target;
- a token holds exactly the asked actions the caller may do, and names the others as denied.

With spec section 12's shares: a live share of the private repository with the caller's tenant gives its users
pull on it (and nothing more); an expired one gives nothing.

And whether a private repository exists is never told to a caller who may not pull it: every operation answers
the same (status, body, challenge, and the token's claims) for an existing private repository and a missing one.
"""

import base64
import functools
import hashlib
import json
import os
import re
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import jwt
import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from swr import services
from swr.choices import PermissionLevel
from swr.distribution import storage
from swr.models import (
    AuditRecord,
    Blob,
    Manifest,
    ManifestBlob,
    Namespace,
    NamespacePermission,
    Repository,
    RepositoryBlob,
    RepositoryPermission,
    RepositoryShare,
    Tag,
    Tenant,
    Upload,
    User,
)

from .helpers import OPERATOR

pytestmark = pytest.mark.django_db

PASSWORD = "matrix-Passw0rd"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCTETS = "application/octet-stream"
# SWR_REGISTRY_HOST unset: the service is the host the request was sent to (Django's test client: testserver).
REALM, SERVICE = "http://testserver/service/token", "testserver"
CATALOG_SCOPE = "registry:catalog:*"


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def image_manifest(config: bytes, layers: list[bytes]) -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest_of(config),
            "size": len(config),
        },
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest_of(layer), "size": len(layer)}
            for layer in layers
        ],
    }
    return json.dumps(document).encode()


# The world every cell starts from.


@dataclass(frozen=True)
class Repo:
    """A repository of the world: its tenant, registry name, visibility; ``exists`` False for a name no
    repository has (yet)."""

    tenant: str
    name: str
    public: bool
    exists: bool = True


REPOSITORIES = {
    "private": Repo("acme", "group/team/web", public=False),
    "public": Repo("acme", "group/pub", public=True),
    # Private, and nobody holds a grant on the repository itself: compared with "missing".
    "secret": Repo("acme", "group/secret", public=False),
    "theirs private": Repo("globex", "theirs/hidden", public=False),
    "theirs public": Repo("globex", "theirs/open", public=True),
    "new": Repo("acme", "group/fresh/app", public=False, exists=False),  # a push creates it
    "missing": Repo("acme", "group/missing", public=False, exists=False),
}
# The repositories that hold an image (tags 1.0 and latest on one manifest, a config and a layer blob) and an
# upload session someone else started.
WITH_IMAGES = ("private", "public", "secret")
# A missing name is asked exactly what its existing counterpart is asked (same digests, tags, session id).
LOOKALIKE = {"missing": "secret"}


@dataclass(frozen=True)
class Caller:
    """Who calls: ``tenant`` None for anonymous; a tenant administrator; the level of a grant on organization
    'group' (tenant acme) and on the cell's repository itself (the private or the public one); whether
    SWR_ANONYMOUS_PULL is on."""

    tenant: str | None
    admin: bool = False
    on_group: int = 0
    on_repository: int = 0
    anonymous_pull: bool = False
    # Spec section 12: "live" or "expired", a share of the private repository ("private") with the caller's tenant.
    share: str = ""

    @property
    def anonymous(self) -> bool:
        return self.tenant is None


CALLERS = {
    "anonymous": Caller(None),
    "anonymous, anonymous pull on": Caller(None, anonymous_pull=True),
    "user of another tenant": Caller("globex"),
    "administrator of another tenant": Caller("globex", admin=True),
    "user without grants": Caller("acme"),
    "read on the organization": Caller("acme", on_group=1),
    "edit on the organization": Caller("acme", on_group=3),
    "manage on the organization": Caller("acme", on_group=7),
    "read on the repository only": Caller("acme", on_repository=1),
    "edit on the repository only": Caller("acme", on_repository=3),
    "manage on the repository only": Caller("acme", on_repository=7),
    "tenant administrator": Caller("acme", admin=True),
    "user of another tenant, live share": Caller("globex", share="live"),
    "administrator of another tenant, live share": Caller("globex", admin=True, share="live"),
    "user of another tenant, expired share": Caller("globex", share="expired"),
}
VISIBILITIES = ("private", "public")
# "basic": HTTP Basic on every request (an anonymous caller sends nothing); "bearer": a token of
# GET /service/token for the request's scope (an anonymous one without credentials; with SWR_ANONYMOUS_PULL off
# the token endpoint refuses it, and the request goes without credentials).
CREDENTIALS = ("basic", "bearer")


@dataclass(frozen=True)
class Needs:
    """What an operation needs on a repository (spec section 9, with section 6's levels): a level on its
    organization, or a level on the repository itself (None: no such way); ``public``: a public repository is
    enough (any authenticated caller of any tenant; anonymous ones only with SWR_ANONYMOUS_PULL)."""

    on_organization: int
    on_repository: int | None
    public: bool = False


PULL = Needs(on_organization=1, on_repository=1, public=True)
PUSH = Needs(on_organization=3, on_repository=7)
PUSH_NEW = Needs(on_organization=3, on_repository=None)  # there is no repository to hold a grant on yet
DELETE = Needs(on_organization=7, on_repository=7)


def may(caller: Caller, needs: Needs, repository: str, granted: str) -> bool:
    """Spec section 9: may ``caller`` do what ``needs`` says on ``repository`` (a key of REPOSITORIES), the
    caller's repository grant being on ``granted``? Levels count only inside the tenant owning the
    organization; a tenant administrator holds manage (7) on every organization of the tenant."""
    repo = REPOSITORIES[repository]
    if needs.public and repo.exists and repo.public and (not caller.anonymous or caller.anonymous_pull):
        return True
    if caller.share == "live" and repository == "private" and needs == PULL:  # spec section 12
        return True
    if caller.anonymous or caller.tenant != repo.tenant:
        return False
    on_organization = 7 if caller.admin else caller.on_group if repo.name.startswith("group/") else 0
    on_repository = caller.on_repository if repository == granted else 0
    return on_organization >= needs.on_organization or (
        needs.on_repository is not None and on_repository >= needs.on_repository
    )


# What the database holds, as the cells compare it.


def label(repository: Repository) -> str:
    return f"{repository.namespace.name}/{repository.name}"


def snapshot() -> dict:
    """Every fact the registry keeps: rows, counters, upload sessions, audit records of success."""
    repositories = Repository.objects.select_related("namespace", "creator")
    return {
        "repositories": {
            label(r): {
                "size": r.size,
                "num_images": r.num_images,
                "num_download": r.num_download,
                "is_public": r.is_public,
                "category": r.category,
                "creator": r.creator.username if r.creator else None,
            }
            for r in repositories
        },
        "tenants": {t.name: (t.namespace_count, t.repository_count) for t in Tenant.objects.all()},
        "namespaces": set(Namespace.objects.values_list("name", flat=True)),
        "blobs": set(Blob.objects.values_list("digest", "size")),
        "links": {
            (label(link.repository), link.blob.digest)
            for link in RepositoryBlob.objects.select_related("repository__namespace", "blob")
        },
        "manifests": {
            (label(m.repository), m.digest) for m in Manifest.objects.select_related("repository__namespace")
        },
        "manifest blobs": {
            (label(m.manifest.repository), m.manifest.digest, m.blob.digest)
            for m in ManifestBlob.objects.select_related("manifest__repository__namespace", "blob")
        },
        "tags": {
            (label(t.repository), t.name): t.manifest.digest
            for t in Tag.objects.select_related("repository__namespace", "manifest")
        },
        "uploads": {
            str(u.id): (label(u.repository), u.size, u.parts)
            for u in Upload.objects.select_related("repository__namespace")
        },
        "audit": Counter(
            AuditRecord.objects.filter(outcome=AuditRecord.Outcome.SUCCESS).values_list(
                "action", "username", "request_id"
            )
        ),
    }


def change(state: dict, name: str, **deltas) -> None:
    """Add ``deltas`` (size, num_images, num_download) to repository ``name``'s counters in ``state``."""
    for key, delta in deltas.items():
        state["repositories"][name][key] += delta


@dataclass(frozen=True)
class Image:
    config: bytes
    layer: bytes
    manifest: bytes

    @property
    def digest(self) -> str:
        return digest_of(self.manifest)

    @property
    def layer_digest(self) -> str:
        return digest_of(self.layer)


def hold_image(repository: Repository, image: Image) -> None:
    """Let ``repository`` hold ``image`` (its blobs, the manifest, tags 1.0 and latest on it), as a push would
    leave it: the rows written directly and the bytes stored once (the world's blobs are the same in every
    test), which is quicker than the services. Pushes through the registry are what the cells test."""
    blobs = []
    for data in (image.config, image.layer):
        if not storage.exists(digest_of(data)):
            storage.storage().save(storage.blob_key(digest_of(data)), ContentFile(data))
        blobs.append(Blob.objects.get_or_create(digest=digest_of(data), defaults={"size": len(data)})[0])
    RepositoryBlob.objects.bulk_create(RepositoryBlob(repository=repository, blob=blob) for blob in blobs)
    manifest = Manifest.objects.create(
        repository=repository,
        digest=image.digest,
        media_type=OCI_MANIFEST,
        size=len(image.manifest),
        content=image.manifest,
        config_digest=digest_of(image.config),
        image_size=len(image.config) + len(image.layer),
    )
    ManifestBlob.objects.bulk_create(ManifestBlob(manifest=manifest, blob=blob) for blob in blobs)
    Tag.objects.bulk_create(Tag(repository=repository, name=name, manifest=manifest) for name in ("1.0", "latest"))
    Repository.objects.filter(pk=repository.pk).update(size=len(image.config) + len(image.layer), num_images=2)


@dataclass
class World:
    """The repositories of REPOSITORIES that exist, their images and foreign upload sessions, and the caller."""

    repositories: dict[str, Repository]
    images: dict[str, Image]
    sessions: dict[str, str]
    user: User | None = None

    def image(self, key: str) -> Image:
        return self.images[LOOKALIKE.get(key, key)]

    def session(self, key: str) -> str:
        return self.sessions[LOOKALIKE.get(key, key)]


@pytest.fixture
def world(tenant, other_tenant, namespace):
    """Organization 'group' of tenant acme (created by alice) and 'theirs' of tenant globex, holding the
    repositories of REPOSITORIES; those of WITH_IMAGES hold an image pushed by an operator."""
    organizations = {
        "acme": namespace,
        "globex": services.namespace_create(name="theirs", tenant=other_tenant, actor=OPERATOR),
    }
    repositories, images, sessions = {}, {}, {}
    for key, repo in REPOSITORIES.items():
        if not repo.exists:
            continue
        _, name = repo.name.split("/", 1)
        repository = services.repository_create(
            namespace=organizations[repo.tenant], name=name, is_public=repo.public, actor=OPERATOR
        )
        repositories[key] = repository
        if key in WITH_IMAGES:
            config = json.dumps({"architecture": "amd64", "os": "linux", "of": repo.name}).encode()
            layer = f"layer of {repo.name}".encode() * 10
            images[key] = Image(config, layer, image_manifest(config, [layer]))
            hold_image(repository, images[key])
            sessions[key] = str(Upload.objects.create(repository=repository).id)
    return World(repositories, images, sessions)


def make_caller(world: World, caller: Caller, granted: str, settings) -> User | None:
    """The user of ``caller`` (None: anonymous), with its grants; SWR_ANONYMOUS_PULL as it says."""
    settings.SWR_ANONYMOUS_PULL = caller.anonymous_pull
    if caller.anonymous:
        return None
    user = User.objects.create_user(
        username="caller",
        password=PASSWORD,
        tenant=Tenant.objects.get(name=caller.tenant),
        is_tenant_admin=caller.admin,
    )
    if caller.on_group:
        NamespacePermission.objects.create(
            user=user, namespace=Namespace.objects.get(name="group"), level=PermissionLevel(caller.on_group)
        )
    if caller.on_repository:
        RepositoryPermission.objects.create(
            user=user, repository=world.repositories[granted], level=PermissionLevel(caller.on_repository)
        )
    if caller.share:
        deadline = timezone.now() + timedelta(days=1 if caller.share == "live" else -1)
        RepositoryShare.objects.create(
            repository=world.repositories["private"], access_domain=user.tenant, deadline=deadline
        )
    world.user = user
    return user


# The caller's requests.


@functools.cache
def shared_client() -> Client:
    """One test client for all cells: a client builds the whole middleware chain on its first request (whitenoise
    reads the static files then), which would cost more than most cells."""
    return Client()


@dataclass
class Session:
    """One caller's conversation with the registry: its credentials, a request id per request, the claims of
    the tokens it got."""

    caller: Caller
    credentials: str
    client: Client = field(default_factory=shared_client)
    tokens: dict[str, str] = field(default_factory=dict)
    claims: dict[str, dict] = field(default_factory=dict)  # scope: the claims of the token asked for it
    request_ids: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.client.cookies.clear()

    def basic(self) -> dict:
        raw = base64.b64encode(f"caller:{PASSWORD}".encode()).decode()
        return {"HTTP_AUTHORIZATION": f"Basic {raw}"}

    def authorization(self, scope: str) -> dict:
        """The Authorization header of a request needing ``scope``."""
        if self.credentials == "basic":
            return {} if self.caller.anonymous else self.basic()
        if scope not in self.tokens:
            query = urllib.parse.urlencode([("service", SERVICE), *(("scope", s) for s in scope.split(" "))])
            answer = self.client.get(f"/service/token?{query}", **({} if self.caller.anonymous else self.basic()))
            if self.caller.anonymous and not self.caller.anonymous_pull:
                oci_error(answer, 401, "UNAUTHORIZED")
                assert answer["WWW-Authenticate"].startswith("Basic realm=")
                self.tokens[scope] = ""
            else:
                assert answer.status_code == 200, answer.content
                token = answer.json()["token"]
                claims = jwt.decode(token, options={"verify_signature": False})
                self.claims[scope] = {key: claims.get(key, []) for key in ("sub", "access", "denied")}
                self.tokens[scope] = token
        token = self.tokens[scope]
        return {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}

    def call(self, method: str, path: str, scope: str, **kwargs):
        request_id = f"matrix-{uuid.uuid4().hex}"
        self.request_ids.append(request_id)
        headers = {**self.authorization(scope), "HTTP_X_REQUEST_ID": request_id}
        return getattr(self.client, method)(path, **headers, **kwargs)


def oci_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert [e["code"] for e in body["errors"]] == [code], body
    assert body["errors"][0]["message"]
    return body


def challenge(response) -> dict:
    header = response["WWW-Authenticate"]
    assert header.startswith("Bearer "), header
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


def repository_scope(name: str, actions: str) -> str:
    return f"repository:{name}:{actions}"


# The operations. Each runs its requests as the caller (``run``) and, when allowed, checks its answers and writes
# what it changes into the expected state (``done``); a refusal is checked alike for all (assert_refused).


@dataclass
class Run:
    """The requests of one operation: their answers, and what they were about."""

    responses: list
    name: str  # the repository the permission question is about (for a mount: its source)
    image: Image | None = None
    extra: dict = field(default_factory=dict)


def run_pull_manifest(session: Session, world: World, key: str) -> Run:
    name = REPOSITORIES[key].name
    return Run(
        [session.call("get", f"/v2/{name}/manifests/1.0", repository_scope(name, "pull"))], name, world.image(key)
    )


def done_pull_manifest(world: World, run: Run, state: dict) -> None:
    (response,) = run.responses
    assert response.status_code == 200, response.content
    assert (response.content, response["Docker-Content-Digest"]) == (run.image.manifest, run.image.digest)
    change(state, run.name, num_download=1)


def run_pull_blob(session: Session, world: World, key: str) -> Run:
    name, image = REPOSITORIES[key].name, world.image(key)
    response = session.call("get", f"/v2/{name}/blobs/{image.layer_digest}", repository_scope(name, "pull"))
    return Run([response], name, image)


def done_pull_blob(world: World, run: Run, state: dict) -> None:
    (response,) = run.responses
    assert response.status_code == 200, response.content
    assert b"".join(response.streaming_content) == run.image.layer


def run_tag_list(session: Session, world: World, key: str) -> Run:
    name = REPOSITORIES[key].name
    return Run([session.call("get", f"/v2/{name}/tags/list", repository_scope(name, "pull"))], name, world.image(key))


def done_tag_list(world: World, run: Run, state: dict) -> None:
    (response,) = run.responses
    assert response.status_code == 200, response.content
    assert response.json() == {"name": run.name, "tags": ["1.0", "latest"]}


def run_referrers(session: Session, world: World, key: str) -> Run:
    name, image = REPOSITORIES[key].name, world.image(key)
    response = session.call("get", f"/v2/{name}/referrers/{image.digest}", repository_scope(name, "pull"))
    return Run([response], name, image)


def done_referrers(world: World, run: Run, state: dict) -> None:
    (response,) = run.responses
    assert response.status_code == 200, response.content
    assert response.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def run_push(session: Session, world: World, key: str) -> Run:
    """Into an existing repository: a monolithic blob upload, a session (POST, PATCH, PUT), a new manifest
    over them, and a new tag on the repository's own manifest (its blobs are there: nothing but the permission
    stands in its way). Refused, the session's PATCH goes to the session someone else started there."""
    name, image = REPOSITORIES[key].name, world.image(key)
    scope = repository_scope(name, "pull,push")
    first, second = os.urandom(40), os.urandom(50)
    responses = [
        session.call(
            "post", f"/v2/{name}/blobs/uploads/?digest={digest_of(first)}", scope, data=first, content_type=OCTETS
        ),
        session.call("post", f"/v2/{name}/blobs/uploads/", scope),
    ]
    started = responses[-1]
    location = started["Location"] if started.status_code == 202 else f"/v2/{name}/blobs/uploads/{world.session(key)}"
    responses.append(session.call("patch", location, scope, data=second, content_type=OCTETS))
    responses.append(session.call("put", f"{location}?digest={digest_of(second)}", scope))
    manifest = image_manifest(image.config, [first, second])
    for tag, document in (("v2", manifest), ("hijack", image.manifest)):
        responses.append(
            session.call("put", f"/v2/{name}/manifests/{tag}", scope, data=document, content_type=OCI_MANIFEST)
        )
    return Run(responses, name, image, {"blobs": (first, second), "manifest": manifest})


def done_push(world: World, run: Run, state: dict) -> None:
    assert [r.status_code for r in run.responses] == [201, 202, 202, 201, 201, 201], run.responses
    first, second = run.extra["blobs"]
    manifest = digest_of(run.extra["manifest"])
    for blob in (first, second):
        state["blobs"].add((digest_of(blob), len(blob)))
        state["links"].add((run.name, digest_of(blob)))
        assert storage.exists(digest_of(blob))
    state["manifests"].add((run.name, manifest))
    state["manifest blobs"] |= {(run.name, manifest, digest_of(b)) for b in (run.image.config, first, second)}
    state["tags"][(run.name, "v2")] = manifest
    state["tags"][(run.name, "hijack")] = run.image.digest
    change(state, run.name, size=len(first) + len(second), num_images=2)


def run_push_new(session: Session, world: World, key: str) -> Run:
    """Into a repository that does not exist yet: the push creates it."""
    name = REPOSITORIES["new"].name
    scope = repository_scope(name, "pull,push")
    config, layer = json.dumps({"random": os.urandom(8).hex()}).encode(), os.urandom(60)
    responses = [
        session.call(
            "post", f"/v2/{name}/blobs/uploads/?digest={digest_of(blob)}", scope, data=blob, content_type=OCTETS
        )
        for blob in (layer, config)
    ]
    manifest = image_manifest(config, [layer])
    responses.append(session.call("put", f"/v2/{name}/manifests/1.0", scope, data=manifest, content_type=OCI_MANIFEST))
    return Run(responses, name, Image(config, layer, manifest))


def done_push_new(world: World, run: Run, state: dict) -> None:
    assert [r.status_code for r in run.responses] == [201, 201, 201], run.responses
    image = run.image
    state["repositories"][run.name] = {
        "size": len(image.config) + len(image.layer),
        "num_images": 1,
        "num_download": 0,
        "is_public": False,
        "category": "other",
        "creator": world.user.username,
    }
    namespaces, repositories = state["tenants"]["acme"]
    state["tenants"]["acme"] = (namespaces, repositories + 1)
    for blob in (image.config, image.layer):
        state["blobs"].add((digest_of(blob), len(blob)))
        state["links"].add((run.name, digest_of(blob)))
        state["manifest blobs"].add((run.name, image.digest, digest_of(blob)))
    state["manifests"].add((run.name, image.digest))
    state["tags"][(run.name, "1.0")] = image.digest


def run_delete_manifest(session: Session, world: World, key: str) -> Run:
    name, image = REPOSITORIES[key].name, world.image(key)
    response = session.call("delete", f"/v2/{name}/manifests/{image.digest}", repository_scope(name, "delete"))
    return Run([response], name, image)


def done_delete_manifest(world: World, run: Run, state: dict) -> None:
    (response,) = run.responses
    assert response.status_code == 202, response.content
    state["manifests"].remove((run.name, run.image.digest))
    state["manifest blobs"] = {entry for entry in state["manifest blobs"] if entry[:2] != (run.name, run.image.digest)}
    for tag in ("1.0", "latest"):
        del state["tags"][(run.name, tag)]
    change(state, run.name, num_images=-2)


def run_delete_tag(session: Session, world: World, key: str) -> Run:
    name = REPOSITORIES[key].name
    return Run(
        [session.call("delete", f"/v2/{name}/manifests/latest", repository_scope(name, "delete"))],
        name,
        world.image(key),
    )


def done_delete_tag(world: World, run: Run, state: dict) -> None:
    (response,) = run.responses
    assert response.status_code == 202, response.content
    del state["tags"][(run.name, "latest")]
    change(state, run.name, num_images=-1)


def run_delete_blob(session: Session, world: World, key: str) -> Run:
    name, image = REPOSITORIES[key].name, world.image(key)
    response = session.call("delete", f"/v2/{name}/blobs/{image.layer_digest}", repository_scope(name, "delete"))
    return Run([response], name, image)


def done_delete_blob(world: World, run: Run, state: dict) -> None:
    (response,) = run.responses
    assert response.status_code == 202, response.content
    state["links"].remove((run.name, run.image.layer_digest))
    change(state, run.name, size=-len(run.image.layer))


MOUNT_TARGET = "home/target"


def prepare_mount(world: World) -> None:
    """The mount's target: repository 'target' of organization 'home', which the caller created in their own
    tenant (so holds manage on). An anonymous caller pushes nowhere: theirs is an operator's, in acme."""
    user = world.user
    tenant = user.tenant if user is not None else Tenant.objects.get(name="acme")
    home = services.namespace_create(name="home", tenant=tenant, creator=user, actor=OPERATOR)
    services.repository_create(namespace=home, name="target", is_public=False, actor=OPERATOR)


def run_mount(session: Session, world: World, key: str) -> Run:
    """``POST /v2/home/target/blobs/uploads/?mount=<layer>&from=<repository>``, with a token asked for both."""
    source, image = REPOSITORIES[key].name, world.image(key)
    scope = f"{repository_scope(MOUNT_TARGET, 'pull,push')} {repository_scope(source, 'pull')}"
    path = f"/v2/{MOUNT_TARGET}/blobs/uploads/?mount={image.layer_digest}&from={source}"
    return Run([session.call("post", path, scope)], source, image, {"session": session})


def done_mount_linked(world: World, run: Run, state: dict) -> None:
    (response,) = run.responses
    assert response.status_code == 201, response.content
    digest = run.image.layer_digest
    assert (response["Location"], response["Docker-Content-Digest"]) == (f"/v2/{MOUNT_TARGET}/blobs/{digest}", digest)
    state["links"].add((MOUNT_TARGET, digest))
    change(state, MOUNT_TARGET, size=len(run.image.layer))


def done_mount_uploaded(world: World, run: Run, state: dict) -> None:
    """An ordinary upload session in the target (202), the blob not linked to it."""
    (response,) = run.responses
    assert response.status_code == 202, response.content
    location = response["Location"]
    upload_id = location.removeprefix(f"/v2/{MOUNT_TARGET}/blobs/uploads/")
    assert upload_id != location
    assert response["Docker-Upload-UUID"] == upload_id
    assert "Docker-Content-Digest" not in response
    state["uploads"][upload_id] = (MOUNT_TARGET, 0, 0)


def after_mount(world: World, run: Run, outcome: str) -> None:
    """What the target holds now, as the caller sees it: the layer when linked; else nothing, until the caller
    finishes the ordinary upload with the bytes."""
    session = run.extra["session"]
    scope = repository_scope(MOUNT_TARGET, "pull,push")
    digest = run.image.layer_digest
    head = session.call("head", f"/v2/{MOUNT_TARGET}/blobs/{digest}", scope)
    if outcome == "linked":
        assert head.status_code == 200
        return
    assert head.status_code == 404
    oci_error(session.call("get", f"/v2/{MOUNT_TARGET}/blobs/{digest}", scope), 404, "BLOB_UNKNOWN")
    finished = session.call(
        "put", f"{run.responses[0]['Location']}?digest={digest}", scope, data=run.image.layer, content_type=OCTETS
    )
    assert finished.status_code == 201, finished.content
    assert session.call("head", f"/v2/{MOUNT_TARGET}/blobs/{digest}", scope).status_code == 200


def run_catalog(session: Session, world: World, key: str) -> Run:
    return Run([session.call("get", "/v2/_catalog", CATALOG_SCOPE)], "")


@dataclass(frozen=True)
class Operation:
    """A row of MATRIX: what the operation needs (``needs``), on which repository (``on``: "cell" for the cell's
    private or public one, or a key of REPOSITORIES), the scope of its token and of its 401 challenge, and how
    it runs and what it changes when allowed (``done``)."""

    needs: Needs
    on: str
    actions: str
    run: Callable
    done: Callable | None = None
    prepare: Callable | None = None


# Spec section 9, Permissions: the one table the matrix is generated from. Mount: the caller pushes into a
# repository of their own (push needs authentication), and the blob is linked only when they may pull the
# source (PULL on the cell's repository); else the mount is an ordinary upload. Catalog: any caller with
# credentials (anonymous ones with SWR_ANONYMOUS_PULL), listing each repository the caller may pull (PULL).
MATRIX = {
    "pull manifest": Operation(PULL, "cell", "pull", run_pull_manifest, done_pull_manifest),
    "pull blob": Operation(PULL, "cell", "pull", run_pull_blob, done_pull_blob),
    "tag list": Operation(PULL, "cell", "pull", run_tag_list, done_tag_list),
    "referrers": Operation(PULL, "cell", "pull", run_referrers, done_referrers),
    "push": Operation(PUSH, "cell", "pull,push", run_push, done_push),
    "push creating the repository": Operation(PUSH_NEW, "new", "pull,push", run_push_new, done_push_new),
    "delete manifest": Operation(DELETE, "cell", "delete", run_delete_manifest, done_delete_manifest),
    "delete tag": Operation(DELETE, "cell", "delete", run_delete_tag, done_delete_tag),
    "delete blob": Operation(DELETE, "cell", "delete", run_delete_blob, done_delete_blob),
    "mount": Operation(PULL, "cell", "pull,push", run_mount, prepare=prepare_mount),
    "catalog": Operation(PULL, "all", "*", run_catalog),
}
# The audit record of success each allowed write leaves: (action, index of its response in Run.responses).
AUDITED = {
    "push": [("manifest.push", 4), ("manifest.push", 5)],
    "push creating the repository": [("repository.create", 0), ("manifest.push", 2)],
    "delete manifest": [("manifest.delete", 0)],
    "delete tag": [("manifest.delete", 0)],
    "delete blob": [("blob.delete", 0)],
}


def expected_outcome(operation: str, caller: Caller, key: str, granted: str) -> str:
    """The cell's outcome by MATRIX and spec section 9: done, refused, or for a mount linked or uploaded."""
    row = MATRIX[operation]
    if operation == "mount":
        if caller.anonymous:
            return "refused"
        return "linked" if may(caller, row.needs, key, granted) else "uploaded"
    if operation == "catalog":
        return "refused" if caller.anonymous and not caller.anonymous_pull else "done"
    return "done" if may(caller, row.needs, key, granted) else "refused"


def assert_refused(caller: Caller, run: Run, challenged: str) -> None:
    """Every answer is the refusal: 401 UNAUTHORIZED with the Bearer challenge for ``challenged`` to an anonymous
    caller (no credentials, or a token without the access), 403 DENIED without a challenge to an authenticated
    one."""
    for response in run.responses:
        if caller.anonymous:
            oci_error(response, 401, "UNAUTHORIZED")
            params = challenge(response)
            assert (params["realm"], params["service"], params["scope"]) == (REALM, SERVICE, challenged)
            assert params.get("error") in (None, "insufficient_scope"), params
        else:
            oci_error(response, 403, "DENIED")
            assert "WWW-Authenticate" not in response


def challenged_scope(operation: str, run: Run) -> str:
    """The scope a refusal's challenge asks a token for: the operation's actions on its repository (a mount's
    target: the caller has to push there first), the catalog's."""
    if operation == "catalog":
        return CATALOG_SCOPE
    return repository_scope(MOUNT_TARGET if operation == "mount" else run.name, MATRIX[operation].actions)


NEEDS = {"pull": PULL, "push": PUSH, "delete": DELETE}


def assert_tokens(session: Session, world: World, granted: str) -> None:
    """Each token the caller got holds, of the actions asked, exactly those spec section 9 lets them do now
    (``access``), and names the others (``denied``); its subject is the user (empty: anonymous)."""
    caller = session.caller
    for scope, claims in session.claims.items():
        assert claims["sub"] == ("" if caller.anonymous else str(world.user.pk))
        expected, refused = {}, {}
        for item in scope.split(" "):
            kind, name, asked = item.split(":")
            asked = set(asked.split(","))
            if kind == "registry":  # the catalog: to every caller that may get a token
                allowed = asked
            elif name == MOUNT_TARGET:  # in the caller's own organization
                allowed = set() if caller.anonymous else asked
            else:
                key = next(k for k, r in REPOSITORIES.items() if r.name == name)
                new = not REPOSITORIES[key].exists
                allowed = {a for a in asked if may(caller, PUSH_NEW if new and a == "push" else NEEDS[a], key, granted)}
            expected[f"{kind}:{name}"] = allowed
            if asked - allowed:
                refused[f"{kind}:{name}"] = asked - allowed
        assert {f"{e['type']}:{e['name']}": set(e["actions"]) for e in claims["access"]} == expected, scope
        assert {f"{e['type']}:{e['name']}": set(e["actions"]) for e in claims["denied"]} == refused, scope


def stored(run: Run) -> list[str]:
    """Digests of the blobs a push sent that the storage now holds (the push's random bytes: new each run)."""
    blobs = run.extra.get("blobs", ())
    return [digest_of(b) for b in blobs if storage.exists(digest_of(b))]


def cell_subject(operation: str, visibility: str) -> str:
    on = MATRIX[operation].on
    return visibility if on in ("cell", "all") else on


@pytest.mark.parametrize("credentials", CREDENTIALS)
@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("caller_name", CALLERS)
@pytest.mark.parametrize("operation", MATRIX)
def test_matrix(world, settings, operation, caller_name, visibility, credentials):
    caller, row = CALLERS[caller_name], MATRIX[operation]
    make_caller(world, caller, visibility, settings)
    if row.prepare:
        row.prepare(world)
    key = cell_subject(operation, visibility)
    outcome = expected_outcome(operation, caller, key, visibility)
    session = Session(caller, credentials)
    before = snapshot()
    run = row.run(session, world, key)
    after = snapshot()
    expected = snapshot_copy(before)
    if outcome == "refused":
        assert_refused(caller, run, challenged_scope(operation, run))
        assert stored(run) == []
    elif operation == "catalog":
        (response,) = run.responses
        assert response.status_code == 200, response.content
        listed = [r.name for k, r in REPOSITORIES.items() if r.exists and may(caller, PULL, k, visibility)]
        assert response.json() == {"repositories": sorted(listed)}
    elif operation == "mount":
        {"linked": done_mount_linked, "uploaded": done_mount_uploaded}[outcome](world, run, expected)
    else:
        row.done(world, run, expected)
        for action, index in AUDITED.get(operation, []):
            expected["audit"][(action, "caller", session.request_ids[index])] += 1
    assert after == expected
    assert_tokens(session, world, visibility)
    if operation == "mount" and outcome != "refused":
        after_mount(world, run, outcome)


def snapshot_copy(state: dict) -> dict:
    copy = {key: value.copy() for key, value in state.items()}
    copy["repositories"] = {name: dict(counters) for name, counters in state["repositories"].items()}
    return copy


# Whether a private repository exists is never told to a caller who may not pull it.


def normalized(response, name: str) -> tuple:
    """An answer with the repository's name (and an upload session's id) written as placeholders."""

    def clean(text: str) -> str:
        text = text.replace(name, "<NAME>")
        return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<ID>", text)

    headers = {h: clean(response[h]) for h in ("WWW-Authenticate", "Location", "Docker-Upload-UUID") if h in response}
    return response.status_code, clean(response.content.decode()), headers


def claims_normalized(claims: dict[str, dict], name: str) -> str:
    return json.dumps(claims, sort_keys=True).replace(name, "<NAME>")


HIDDEN_FROM = [name for name, caller in CALLERS.items() if not may(caller, PULL, "secret", "private")]
ABOUT_A_REPOSITORY = [operation for operation, row in MATRIX.items() if row.on == "cell"]


@pytest.mark.parametrize("credentials", CREDENTIALS)
@pytest.mark.parametrize("caller_name", HIDDEN_FROM)
@pytest.mark.parametrize("operation", ABOUT_A_REPOSITORY)
def test_a_private_repository_reads_as_a_missing_one(world, settings, operation, caller_name, credentials):
    """Spec sections 6 and 9: to a caller who may not pull a private repository, every operation on it answers
    what it answers for a name no repository has (the token endpoint's claims included); and it is refused
    (a mount: an ordinary upload), changing nothing."""
    caller, row = CALLERS[caller_name], MATRIX[operation]
    make_caller(world, caller, "private", settings)
    if row.prepare:
        row.prepare(world)
    answers = []
    for key in ("secret", "missing"):
        session = Session(caller, credentials)
        before = snapshot()
        run = row.run(session, world, key)
        after = snapshot()
        if expected_outcome(operation, caller, key, "private") == "uploaded":
            assert [r.status_code for r in run.responses] == [202]
            assert after["links"] == before["links"]
        else:
            assert_refused(caller, run, challenged_scope(operation, run))
            assert after == before
        name = run.name
        answers.append(([normalized(r, name) for r in run.responses], claims_normalized(session.claims, name)))
    assert answers[0] == answers[1]


# Push-creates-repository within the quota; never into a missing organization.


@pytest.mark.parametrize("credentials", CREDENTIALS)
@pytest.mark.parametrize("caller_name", ["edit on the organization", "tenant administrator"])
def test_a_push_beyond_the_repository_quota_creates_nothing(world, settings, caller_name, credentials):
    """Spec section 9: a push creating a repository counts against the tenant's repository quota. At the quota it
    is refused with an OCI error (403 DENIED, saying why), not a 500, and nothing changes; an existing
    repository takes pushes still."""
    caller = CALLERS[caller_name]
    make_caller(world, caller, "private", settings)
    acme = Tenant.objects.get(name="acme")
    Tenant.objects.filter(pk=acme.pk).update(repository_quota=acme.repository_count)
    session = Session(caller, credentials)
    before = snapshot()
    run = run_push_new(session, world, "new")
    for response in run.responses:
        body = oci_error(response, 403, "DENIED")
        assert "quota" in body["errors"][0]["message"]
    assert snapshot() == before
    existing = Session(caller, credentials)
    pushed = run_push(existing, world, "private")
    assert [r.status_code for r in pushed.responses] == [201, 202, 202, 201, 201, 201]


@pytest.mark.parametrize("credentials", CREDENTIALS)
@pytest.mark.parametrize("caller_name", ["manage on the organization", "tenant administrator"])
def test_a_push_never_creates_an_organization(world, settings, caller_name, credentials):
    caller = CALLERS[caller_name]
    make_caller(world, caller, "private", settings)
    session = Session(caller, credentials)
    before = snapshot()
    scope = repository_scope("nowhere/app", "pull,push")
    data = os.urandom(20)
    response = session.call(
        "post", f"/v2/nowhere/app/blobs/uploads/?digest={digest_of(data)}", scope, data=data, content_type=OCTETS
    )
    oci_error(response, 403, "DENIED")
    assert snapshot() == before
    assert not storage.exists(digest_of(data))


@pytest.mark.parametrize("credentials", CREDENTIALS)
@pytest.mark.parametrize("caller_name", ["user of another tenant", "read on the organization"])
def test_an_upload_session_is_reached_only_through_its_repository(world, settings, caller_name, credentials):
    """Someone else's upload session in a repository the caller may not push to is not theirs to append to or
    finish through a repository they may push to: 404 BLOB_UPLOAD_UNKNOWN, and the session is unchanged."""
    caller = CALLERS[caller_name]
    make_caller(world, caller, "private", settings)
    prepare_mount(world)
    session = Session(caller, credentials)
    scope = repository_scope(MOUNT_TARGET, "pull,push")
    before = snapshot()
    for key in ("private", "public"):
        location = f"/v2/{MOUNT_TARGET}/blobs/uploads/{world.session(key)}"
        data = os.urandom(30)
        oci_error(session.call("get", location, scope), 404, "BLOB_UPLOAD_UNKNOWN")
        appended = session.call("patch", location, scope, data=data, content_type=OCTETS)
        oci_error(appended, 404, "BLOB_UPLOAD_UNKNOWN")
        finished = session.call("put", f"{location}?digest={digest_of(data)}", scope, data=data, content_type=OCTETS)
        oci_error(finished, 404, "BLOB_UPLOAD_UNKNOWN")
        oci_error(session.call("delete", location, scope), 404, "BLOB_UPLOAD_UNKNOWN")
    assert snapshot() == before
