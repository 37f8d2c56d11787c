"""The registry's reads (spec section 9): repositories by their registry name, manifests, tags, referrers."""

import json
import uuid

from django.db.models import CharField, Value
from django.db.models.functions import Concat

from swr import names, policy
from swr.distribution import digests, manifests
from swr.distribution.errors import ManifestUnknown, NameInvalid
from swr.models import Manifest, Namespace, Repository, RepositoryBlob, Tag, Upload, User


def split_name(name: str) -> tuple[str, str]:
    """``<namespace>/<repository>`` split at its first '/'; NAME_INVALID (400) when a part breaks its rule
    (spec section 2; the namespace ``manage`` is reserved for the management API)."""
    namespace, _, repository = name.partition("/")
    problems = [p for p in (names.NAMESPACE.problem(namespace), names.REPOSITORY.problem(repository)) if p]
    if not repository:
        problems = [f"{name[:300]!r} names no repository: use <organization>/<repository>."]
    if problems:
        raise NameInvalid(f"Invalid repository name {name[:300]!r}: {problems[0]}")
    return namespace, repository


def namespace(name: str) -> Namespace | None:
    return (
        Namespace.objects.select_related("tenant").filter(name=name).first() if names.NAMESPACE.is_valid(name) else None
    )


def repository(name: str) -> Repository | None:
    """The repository of registry name ``<namespace>/<repository>``, with its namespace; None if none.

    Without an ORDER BY (the model's ordering joins the namespace again) and without the tenant: one simple
    query on every push and pull (bench/pushpull.py: the ORM's work per query is most of a layer's cost)."""
    namespace_name, repository_name = split_name(name)
    return _one(
        Repository.objects.select_related("namespace").filter(namespace__name=namespace_name, name=repository_name)
    )


def _one(query):
    """The one row of ``query`` (a unique lookup), None when there is none; no ordering is asked for."""
    rows = list(query.order_by()[:1])
    return rows[0] if rows else None


def upload(name: str, upload_id: str) -> Upload | None:
    """The upload session ``upload_id`` of repository ``<namespace>/<repository>``, with the repository (not its
    namespace, read only if an error message names it), in one query; None when either is unknown (or
    ``upload_id`` is no UUID)."""
    namespace_name, repository_name = split_name(name)
    try:
        key = uuid.UUID(upload_id)
    except ValueError:
        return None
    return _one(
        Upload.objects.select_related("repository").filter(
            pk=key, repository__namespace__name=namespace_name, repository__name=repository_name
        )
    )


def linked_blob_size(name: str, digest: str) -> int | None:
    """The size of blob ``digest`` when repository ``<namespace>/<repository>`` holds it; None otherwise (the
    repository or the blob unknown), in one query on the link (a blob HEAD or GET: every layer of a push and
    of a pull)."""
    namespace_name, repository_name = split_name(name)
    return _one(
        RepositoryBlob.objects.filter(
            repository__namespace__name=namespace_name, repository__name=repository_name, blob__digest=digest
        ).values_list("blob__size", flat=True)
    )


def manifest(repository: Repository, reference: str) -> Manifest:
    """The manifest of ``reference`` (a tag or a digest) in ``repository``; MANIFEST_UNKNOWN (404) otherwise."""
    if ":" in reference:
        found = Manifest.objects.filter(repository=repository, digest=digests.parse(reference)).first()
    else:
        tag = Tag.objects.select_related("manifest").filter(repository=repository, name=reference).first()
        found = tag.manifest if tag else None
    if found is None:
        raise ManifestUnknown(f"Manifest {reference[:200]!r} is unknown to repository {repository}.")
    return found


def tags(repository: Repository, n: int | None, last: str | None) -> list[str]:
    """Tag names in lexical order (byte order), after ``last``, at most ``n``."""
    query = Tag.objects.filter(repository=repository)
    if last:
        query = query.filter(name__gt=last)
    names_ = query.order_by("name").values_list("name", flat=True)
    return list(names_ if n is None else names_[:n])


def repository_tags(repository: Repository, *, with_manifest: bool = True):
    """The tags of ``repository`` with their manifests (one query), for the management API's lists and show
    (spec section 10); without ``with_manifest``, the manifest documents are not read."""
    query = Tag.objects.filter(repository=repository).select_related("manifest")
    return query if with_manifest else query.defer("manifest__content")


def referrers(repository: Repository | None, digest: str, artifact_type: str | None) -> dict:
    """The OCI image index of the manifests in ``repository`` whose subject is ``digest`` (distribution-spec
    "Listing Referrers"), filtered by ``artifact_type`` when given."""
    query = Manifest.objects.filter(repository=repository, subject_digest=digest).order_by("id")
    if repository is None:
        query = query.none()
    if artifact_type:
        query = query.filter(artifact_type=artifact_type)
    entries = []
    for found in query.only("digest", "media_type", "size", "artifact_type", "content"):
        descriptor = {"mediaType": found.media_type, "digest": found.digest, "size": found.size}
        if found.artifact_type:
            descriptor["artifactType"] = found.artifact_type
        annotations = json.loads(bytes(found.content)).get("annotations")
        if annotations:
            descriptor["annotations"] = annotations
        entries.append(descriptor)
    return {"schemaVersion": 2, "mediaType": manifests.OCI_INDEX, "manifests": entries}


def catalog(user: User | None, n: int | None, last: str | None) -> list[str]:
    """Registry names (``<namespace>/<repository>``) of the repositories ``user`` may pull, in lexical order,
    after ``last``, at most ``n``. Anonymous (None): the public ones (the caller checked SWR_ANONYMOUS_PULL)."""
    readable = Repository.objects.filter(is_public=True) if user is None else policy.readable_repositories(user)
    query = readable.annotate(full_name=Concat("namespace__name", Value("/"), "name", output_field=CharField()))
    if last:
        query = query.filter(full_name__gt=last)
    full_names = query.order_by("full_name").values_list("full_name", flat=True)
    return list(full_names if n is None else full_names[:n])
