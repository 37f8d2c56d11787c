"""The registry's reads (spec section 9): repositories by their registry name, manifests, tags, referrers.

The three lookups of every layer pushed or pulled (:func:`repository`, :func:`upload`,
:func:`linked_blob_size`) are hand-written SQL, with table and column names from the models' ``_meta``
(docs/architecture.md, "Hand-written SQL"): the ORM spent 1.5-1.9 ms of CPU building each of these joins on
the benchmark's machine, a cursor 0.3 ms, and a layer's push is five requests of a few milliseconds each
(bench/pushpull.py, docs/performance.md). Rows become models through ``Manager.raw()`` (Django's converters
for UUIDs, booleans and dates on each engine) or ``Model.from_db()``; the same SQL runs on SQLite and
PostgreSQL. Every other read goes through the ORM.
"""

import functools
import json
import uuid
from typing import NamedTuple

from django.db import connection
from django.db.models import CharField, Value
from django.db.models.functions import Concat

from swr import names, policy
from swr.distribution import digests, manifests
from swr.distribution.errors import ManifestUnknown, NameInvalid
from swr.models import Blob, Manifest, Namespace, Repository, RepositoryBlob, Tag, Upload, User
from swr.sql import Table


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


class _ByName(NamedTuple):
    """The SQL of the three lookups by registry name; parameters: the namespace's name, the repository's name,
    then the upload's key or the blob's digest."""

    repository: str
    upload: str
    linked_blob_size: str


# The columns of a related row that a lookup selects beside its model's own (named <relation>__<column>), and the
# fields they fill in the related model (Model.from_db; the related model's other fields load when read).
_NAMESPACE_FIELDS = ("id", "name", "tenant_id")
_REPOSITORY_FIELDS = ("id", "namespace_id", "name")


@functools.cache
def _by_name() -> _ByName:
    """Built once per process: table and column names never change while it runs."""
    n, r, u = Table(Namespace, "n"), Table(Repository, "r"), Table(Upload, "u")
    link, blob = Table(RepositoryBlob, "l"), Table(Blob, "b")
    named = named_repository(r, n)
    namespace_ = ", ".join(f"{n[field.removesuffix('_id')]} AS namespace__{field}" for field in _NAMESPACE_FIELDS)
    repository_ = ", ".join(f"{r[field.removesuffix('_id')]} AS repository__{field}" for field in _REPOSITORY_FIELDS)
    return _ByName(
        repository=f"SELECT {r.columns()}, {namespace_} FROM {r} {named}",
        upload=f"SELECT {u.columns()}, {repository_}, {namespace_} "
        f"FROM {u} JOIN {r} ON {r['pk']} = {u['repository']} {named} AND {u['pk']} = %s",
        linked_blob_size=f"SELECT {blob['size']} FROM {link} JOIN {blob} ON {blob['pk']} = {link['blob']} "
        f"JOIN {r} ON {r['pk']} = {link['repository']} {named} AND {blob['digest']} = %s",
    )


def named_repository(r: Table, n: Table) -> str:
    """The SQL that follows ``FROM`` a repository table ``r`` to keep the repository of registry name
    ``<namespace>/<repository>``: a JOIN of its namespace ``n`` and the WHERE on both names (parameters: the
    namespace's name, the repository's). Every hand-written statement that finds a repository by name uses it
    (here and in swr/distribution/services.py)."""
    return f"JOIN {n} ON {n['pk']} = {r['namespace']} WHERE {n['name']} = %s AND {r['name']} = %s"


def _related(found, model, relation: str, fields: tuple[str, ...]):
    """The ``relation`` row that a lookup selected beside ``found`` (as ``<relation>__<field>`` columns), as a
    ``model`` with those fields; the columns are taken off ``found``."""
    values = []
    for field in fields:
        values.append(getattr(found, f"{relation}__{field}"))
        delattr(found, f"{relation}__{field}")
    return model.from_db(found._state.db, fields, values)


def repository(name: str) -> Repository | None:
    """The repository of registry name ``<namespace>/<repository>``, in one query (every push and pull), or None.

    ``repository.namespace`` comes with its id, name and tenant_id; its other fields load when read (one query
    each, as with ``.only()``: not to be saved)."""
    namespace_name, repository_name = split_name(name)
    found = next(iter(Repository.objects.raw(_by_name().repository, [namespace_name, repository_name])), None)
    if found is not None:
        found.namespace = _related(found, Namespace, "namespace", _NAMESPACE_FIELDS)
    return found


def upload(name: str, upload_id: str) -> Upload | None:
    """The upload session ``upload_id`` of repository ``<namespace>/<repository>``, in one query; None when
    either is unknown (or ``upload_id`` is no UUID).

    ``upload.repository`` comes with its id, namespace_id and name, and its namespace with id, name and
    tenant_id: what the services and their error messages read. Other fields load when read (one query each,
    as with ``.only()``: not to be saved)."""
    namespace_name, repository_name = split_name(name)
    try:
        key = uuid.UUID(upload_id)
    except ValueError:
        return None
    key = Upload._meta.pk.get_db_prep_value(key, connection)  # a UUID on PostgreSQL, its hex on SQLite
    found = next(iter(Upload.objects.raw(_by_name().upload, [namespace_name, repository_name, key])), None)
    if found is not None:
        found.repository = _related(found, Repository, "repository", _REPOSITORY_FIELDS)
        found.repository.namespace = _related(found, Namespace, "namespace", _NAMESPACE_FIELDS)
    return found


def linked_blob_size(name: str, digest: str) -> int | None:
    """The size of blob ``digest`` when repository ``<namespace>/<repository>`` holds it; None otherwise (the
    repository or the blob unknown), in one query on the link (a blob HEAD or GET: every layer of a push and
    of a pull)."""
    namespace_name, repository_name = split_name(name)
    with connection.cursor() as cursor:
        cursor.execute(_by_name().linked_blob_size, [namespace_name, repository_name, digest])
        row = cursor.fetchone()
    return row[0] if row else None


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
