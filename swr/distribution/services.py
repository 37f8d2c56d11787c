"""The registry's writes (spec section 9): uploads, blobs, manifests, tags. One function per operation.

Bytes go to the blob storage first (swr/distribution/storage.py), outside any transaction and without a
database connection held; then the facts are written in one transaction, with the audit record of a push
or a delete (swr/audit.py). A repository's counters change with the rows they count, in that transaction:
``size`` (bytes of the distinct blobs it holds: RepositoryBlob rows) and ``num_images`` (its tags).

Lock order, as in swr/services.py: the repository is locked ``FOR KEY SHARE`` first (a concurrent
repository delete, which takes it ``FOR UPDATE``, waits or has already removed it: NAME_UNKNOWN), then the
rows under it. Its counters are changed last, by one UPDATE each. One exception, on every layer's push: the
first try of an upload's link (:func:`_link`) writes without that lock, and the link's foreign key, checked
at COMMIT, fails it when the repository went; the second try takes the lock first.

The three statements of a layer's push that find their rows by the repository's names (a session started,
a chunk recorded, the final mark: :func:`upload_start_by_name`, :func:`upload_append_small`,
:func:`upload_finish_by_name`) are hand-written SQL (docs/architecture.md, "Hand-written SQL"); what they do
not find goes the ORM's way, which says why.
"""

import contextlib
import hashlib
import io
import re
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from swr import services
from swr.audit import Actor, record
from swr.distribution import digests, manifests, selectors, storage
from swr.distribution.errors import (
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    Denied,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameUnknown,
    RangeInvalid,
    SizeInvalid,
)
from swr.errors import InvalidTagName, RepositoryExists, RepositoryQuotaExceeded, TagExists, TagNotFound
from swr.models import TAG_PATTERN, Blob, Manifest, ManifestBlob, Namespace, Repository, RepositoryBlob, Tag, Upload
from swr.sql import Table

_TAG = re.compile(TAG_PATTERN)


def _label(repository: Repository) -> str:
    return f"{repository.namespace.name}/{repository.name}"


def _hold(repository: Repository) -> None:
    """Inside a transaction: keep the repository from being deleted until it ends; NAME_UNKNOWN if it is gone."""
    if not services.lock_row(Repository, repository.pk, "KEY SHARE"):
        raise NameUnknown(f"Repository {_label(repository)} was deleted.")


def hold_digest(digest: str) -> None:
    """Inside a transaction: the lock of blob ``digest``'s bytes until it ends (swr/distribution/gc.py).

    An upload that ends as ``digest`` takes it to mark itself (Upload.digest); the garbage collector takes
    it to delete the bytes of a blob whose row it removed. Whichever comes second sees what the first did:
    the collector sees the mark and keeps the bytes, or the upload finds the bytes gone and stores its own.
    PostgreSQL: a transaction-level advisory lock on 64 bits of the digest's hash. SQLite: every write
    transaction holds the database's write lock already (transaction_mode IMMEDIATE), so nothing is done.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_digest_lock_key(digest)])


def _digest_lock_key(digest: str) -> int:
    """The key of ``digest``'s advisory lock on PostgreSQL: 64 bits of its hash, as a signed bigint."""
    return int.from_bytes(hashlib.sha256(digest.encode()).digest()[:8], "big", signed=True)


def _session_match(u: Table, upload_id, names: tuple[str, str] | None) -> tuple[str, list]:
    """The WHERE conditions, and their parameters, of a statement on upload session ``upload_id`` (``u``: its
    table): that session while it is live (written to within SWR_UPLOAD_TTL) and, with ``names`` (the
    namespace's and the repository's), of the repository so named. The rule of :func:`upload_get` and
    :func:`upload_live` in SQL, for the statements that find and change a session at once."""
    updated_at = Upload._meta.get_field("updated_at")
    sql = f"{u['pk']} = %s AND {u['updated_at']} >= %s"
    params = [
        Upload._meta.pk.get_db_prep_value(upload_id, connection),
        updated_at.get_db_prep_value(timezone.now() - settings.SWR_UPLOAD_TTL, connection),
    ]
    if names is not None:
        r, n = Table(Repository, "r"), Table(Namespace, "n")
        sql += f" AND {u['repository']} = (SELECT {r['pk']} FROM {r} {selectors.named_repository(r, n)})"
        params += list(names)
    return sql, params


def _mark(upload_id, digest: str, names: tuple[str, str] | None = None) -> tuple | None:
    """Mark upload ``upload_id`` as ending as blob ``digest`` (Upload.digest, what the garbage collector keeps),
    under the digest's lock (:func:`hold_digest`), in one statement that is its own transaction: the session's
    (parts, size, sha256, repository id), or None when no live session matched (:func:`_session_match`).

    PostgreSQL: the UPDATE takes the lock itself (one round trip instead of BEGIN, the lock, the UPDATE and
    COMMIT); SQLite: the statement's write lock orders it, as hold_digest says."""
    u = Table(Upload)
    where, params = _session_match(u, upload_id, names)
    update = f"UPDATE {u} SET {u['digest']} = %s"
    returning = f"RETURNING {u['parts']}, {u['size']}, {u['sha256']}, {u['repository']}"
    if connection.vendor == "postgresql":
        sql = f"WITH held AS (SELECT pg_advisory_xact_lock(%s)) {update} FROM held WHERE {where} {returning}"
        params = [_digest_lock_key(digest), digest, *params]
    else:
        sql, params = f"{update} WHERE {where} {returning}", [digest, *params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _hold_links(repository: Repository, blob_ids: list[int]) -> int:
    """Inside a transaction: lock the links of ``repository`` to ``blob_ids`` against their removal (``FOR KEY
    SHARE``, so that the garbage collector waits for this transaction); how many of them still exist."""
    if not blob_ids:
        return 0
    links = Table(RepositoryBlob)
    lock = " FOR KEY SHARE" if connection.vendor == "postgresql" else ""
    marks = ", ".join(["%s"] * len(blob_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {links} WHERE {links['repository']} = %s AND {links['blob']} IN ({marks}){lock}",
            [repository.pk, *blob_ids],
        )
        return len(cursor.fetchall())


def repository_for_push(namespace: Namespace, name: str, actor: Actor) -> Repository:
    """The repository ``name`` of ``namespace``, created (private, category other, within the tenant's quota,
    audited) when a push finds it missing (spec section 9). The caller checked that ``actor`` may push.

    DENIED (403) when the tenant owns its quota of repositories already: the push may not create one."""
    existing = Repository.objects.filter(namespace=namespace, name=name).first()
    if existing is not None:
        existing.namespace = namespace
        return existing
    try:
        return services.repository_create(
            namespace=namespace, name=name, is_public=False, creator=actor.user, actor=actor
        )
    except RepositoryExists:  # created by a concurrent push meanwhile
        found = Repository.objects.get(namespace=namespace, name=name)
        found.namespace = namespace
        return found
    except RepositoryQuotaExceeded as error:
        raise Denied(f"{error.message} A push cannot create repository {namespace.name}/{name}.") from None


# Uploads


def _discard(upload: Upload) -> None:
    keys = [storage.part_key(upload.id, n) for n in range(upload.parts)]
    Upload.objects.filter(pk=upload.pk).delete()
    storage.delete_parts(keys)


def upload_start(repository: Repository) -> Upload:
    """A new upload session in ``repository`` (POST .../blobs/uploads/); NAME_UNKNOWN when it was deleted.

    One INSERT: its foreign key holds the repository while it runs (PostgreSQL locks the repository's row
    FOR KEY SHARE to check it, as :func:`_hold` would) and refuses it once the repository is gone. Abandoned
    sessions are the garbage collector's to remove (swr/distribution/gc.py), not a push's.
    """
    try:
        return Upload.objects.create(repository=repository)
    except IntegrityError:  # the repository was deleted meanwhile
        raise NameUnknown(f"Repository {_label(repository)} was deleted.") from None


def upload_start_by_name(namespace_name: str, repository_name: str) -> Upload | None:
    """A new upload session in repository ``<namespace_name>/<repository_name>``, found by its names in the
    INSERT itself (one round trip instead of the repository's lookup and the INSERT: the POST of every layer's
    push); None when no repository has those names, or the one found was deleted meanwhile (its foreign key
    fails at the statement's end): the caller then takes the path that creates it, or says why not.

    The session's columns are what ``Upload.objects.create()`` would write (the fields' defaults and
    ``pre_save``), its repository's id from the SELECT; the Upload returned holds them (already saved)."""
    upload = Upload()
    u, r, n = Table(Upload), Table(Repository, "r"), Table(Namespace, "n")
    columns, values, params = [], [], []
    for field in Upload._meta.concrete_fields:
        columns.append(u[field.name])
        if field.name == "repository":
            values.append(r["pk"])
        else:
            values.append("%s")
            params.append(field.get_db_prep_save(field.pre_save(upload, add=True), connection))
    sql = (
        f"INSERT INTO {u} ({', '.join(columns)}) SELECT {', '.join(values)} FROM {r} {selectors.named_repository(r, n)}"
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, namespace_name, repository_name])
            return upload if cursor.rowcount == 1 else None
    except IntegrityError:  # the repository was deleted while the statement ran: as if it had not been found
        return None


def upload_get(repository: Repository, upload_id: str) -> Upload:
    """The live upload session ``upload_id`` of ``repository``; BLOB_UPLOAD_UNKNOWN (404) otherwise."""
    try:
        key = uuid.UUID(upload_id)
    except ValueError:
        raise BlobUploadUnknown(f"Upload {upload_id[:100]!r} is unknown.") from None
    upload = Upload.objects.filter(pk=key, repository=repository).first()
    if upload is None:
        raise BlobUploadUnknown(f"Upload {upload_id} is unknown to repository {_label(repository)}.")
    return upload_live(upload)


def upload_live(upload: Upload) -> Upload:
    """``upload`` (as read by :func:`upload_get` or ``selectors.upload``) while it is live; an abandoned one
    (untouched for SWR_UPLOAD_TTL) is removed with its parts: BLOB_UPLOAD_UNKNOWN (404)."""
    if upload.updated_at < timezone.now() - settings.SWR_UPLOAD_TTL:
        _discard(upload)
        raise BlobUploadUnknown(f"Upload {upload.id} expired: start a new one.")
    return upload


def upload_append(
    upload: Upload, stream, length: int | None, start: int | None = None, end: int | None = None
) -> Upload:
    """Store the bytes of ``stream`` (``length`` of them, or to its end when None) as the upload's next part.

    ``start`` and ``end``: the offsets of the chunk's first and last byte, as the client says (Content-Range,
    distribution-spec "Pushing a blob in chunks"); ``start`` must be the size so far and the bytes must end at
    ``end``, else RANGE_INVALID (416), and the part is removed (a chunked body's length is known only once it
    is stored). The bytes are stored before the session row is locked: a concurrent append that got there
    first makes this one's part void (416), and it is removed.
    """
    if start is not None and start != upload.size:
        raise RangeInvalid(f"The upload holds {upload.size} bytes: the next chunk starts there, not at {start}.")
    number = upload.parts
    # Written under a name of this request's own: a concurrent chunk for the same place writes elsewhere.
    pending = f"{storage.part_key(upload.id, number)}.{uuid.uuid4().hex}"
    try:
        reader = storage.save_part(pending, stream, length)
    except Exception:  # a body that broke off (SIZE_INVALID), a store that failed: no part is left behind
        with contextlib.suppress(Exception):  # a store that is away: the collector takes the part later
            storage.delete_parts([pending])
        raise
    if length is not None and reader.size != length:
        storage.delete_parts([pending])
        raise SizeInvalid(f"The body ended after {reader.size} of its {length} bytes.")
    if end is not None and upload.size + reader.size - 1 != end:
        storage.delete_parts([pending])
        raise RangeInvalid(
            f"Content-Range says the chunk ends at byte {end}; its {reader.size} bytes end at "
            f"{upload.size + reader.size - 1}."
        )
    if reader.size == 0:
        storage.delete_parts([pending])
        return upload
    sha256, now = reader.digest("sha256") if number == 0 else "", timezone.now()
    with transaction.atomic():
        changed = Upload.objects.filter(pk=upload.pk, parts=number, size=upload.size).update(
            parts=number + 1, size=F("size") + reader.size, sha256=sha256, updated_at=now
        )
        if changed:  # this chunk won its place: it becomes part ``number`` before anyone can read the session
            storage.rename(pending, storage.part_key(upload.id, number))
    if not changed:
        storage.delete_parts([pending])
        raise RangeInvalid("Another chunk of this upload arrived at the same time: ask for the upload's status.")
    # The UPDATE matched the session as it was read: it holds what was set there, no need to read it again.
    upload.parts, upload.size, upload.sha256, upload.updated_at = number + 1, upload.size + reader.size, sha256, now
    return upload


def upload_append_small(
    namespace_name: str, repository_name: str, upload_id: uuid.UUID, data: bytes, start: int | None
) -> Upload | None:
    """Store ``data`` (a chunk read whole: at most SWR_MAX_BODY_BYTES, not empty) as the next part of upload
    ``upload_id`` of repository ``<namespace_name>/<repository_name>``, recorded in one statement: the
    upload's id, size and parts (not a model to save), or None when that statement finds no live session of
    that repository whose bytes end at ``start`` (when given; Content-Range). The caller then takes the path
    that says why (:func:`upload_get`, :func:`upload_live`, :func:`upload_append`): this one stored nothing.

    A small chunk (a layer of skopeo's or docker's push, sent chunked) costs one round trip to the database
    instead of the session's lookup and a transaction (docs/performance.md). The bytes are stored under a
    name of their own first; the UPDATE gives them their place (its RETURNING: the part's number) and they
    are renamed into it after it committed. A PUT that reads the session in between misses that part and
    answers BLOB_UPLOAD_INVALID (:func:`upload_finish`); a client sends it after the PATCH's answer.
    """
    pending = f"{storage.part_key(upload_id, 'next')}.{uuid.uuid4().hex}"
    reader = storage.save_part(pending, io.BytesIO(data), len(data))
    try:
        found = _record_part(namespace_name, repository_name, upload_id, reader, start)
    except Exception:  # the database refused or is away: the chunk is nobody's
        storage.delete_parts([pending])
        raise
    if found is None:
        storage.delete_parts([pending])
        return None
    parts, size = found
    storage.rename(pending, storage.part_key(upload_id, parts - 1))
    return Upload(id=upload_id, parts=parts, size=size)


def _record_part(namespace_name: str, repository_name: str, upload_id: uuid.UUID, reader, start: int | None):
    """The UPDATE of :func:`upload_append_small`: (parts, size) after it, or None when it matched no session.

    The session must be a live one of the repository of that name (:func:`_session_match`) and, with ``start``,
    hold exactly ``start`` bytes. ``sha256`` keeps the chunk's digest when it is the first part (Upload's
    docstring), as :func:`upload_append` does. Column values on the right of SET are the old ones."""
    u = Table(Upload)
    where, match = _session_match(u, upload_id, (namespace_name, repository_name))
    at_start = f" AND {u['size']} = %s" if start is not None else ""
    sql = (
        f"UPDATE {u} SET {u['parts']} = {u['parts']} + 1, {u['size']} = {u['size']} + %s, "
        f"{u['sha256']} = CASE WHEN {u['parts']} = 0 THEN %s ELSE '' END, {u['updated_at']} = %s "
        f"WHERE {where}{at_start} RETURNING {u['parts']}, {u['size']}"
    )
    now = Upload._meta.get_field("updated_at").get_db_prep_value(timezone.now(), connection)
    params = [reader.size, reader.digest("sha256"), now, *match, *([start] if start is not None else [])]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def upload_finish(upload: Upload, digest: str, repository: Repository) -> Blob:
    """End the upload as blob ``digest``: verify the digest, store the blob once, link it to the repository.

    DIGEST_INVALID (400) when the bytes have another digest (the session is then ended: its bytes are useless).
    BLOB_UPLOAD_INVALID (400) when a part the session counts is not in the store: a chunk of
    :func:`upload_append_small` still being renamed into place (a PUT sent before its PATCH was answered), or
    parts that a concurrent PUT or DELETE of the same upload took; nothing is then stored under ``digest``.
    BLOB_UPLOAD_UNKNOWN (404) when the session ended meanwhile.
    """
    digest = digests.parse(digest)
    if _mark(upload.id, digest) is None:
        raise BlobUploadUnknown(f"Upload {upload.id} ended meanwhile: start a new one.")
    return _finish_marked(upload, digest, repository)


def upload_finish_by_name(namespace_name: str, repository_name: str, upload_id: uuid.UUID, digest: str) -> Blob | None:
    """End upload ``upload_id`` of repository ``<namespace_name>/<repository_name>`` as blob ``digest`` (a valid
    digest), as :func:`upload_finish` does, finding the session by the statement that marks it: None when it
    finds no live session of that repository (the caller then takes the path that says why). The final PUT
    of a layer's push without a body (skopeo's, docker's) saves the session's lookup (docs/performance.md)."""
    found = _mark(upload_id, digest, (namespace_name, repository_name))
    if found is None:
        return None
    parts, size, sha256, repository_id = found
    upload = Upload(id=upload_id, parts=parts, size=size, sha256=sha256, repository_id=repository_id)
    repository = Repository.from_db(None, ["id", "name"], [repository_id, repository_name])
    repository.namespace = Namespace(name=namespace_name)  # for messages: neither is to be saved
    return _finish_marked(upload, digest, repository)


def _finish_marked(upload: Upload, digest: str, repository: Repository) -> Blob:
    """The end of :func:`upload_finish` once the session is marked with ``digest``."""
    keys = [storage.part_key(upload.id, n) for n in range(upload.parts)]
    algorithm = digests.algorithm(digest)
    with _parts_arrived(upload):
        if algorithm == "sha256" and upload.parts <= 1 and (upload.sha256 or upload.parts == 0):
            actual = upload.sha256 or digests.of(b"")
        else:
            actual, _ = storage.digest_of_parts(keys, algorithm)
    if actual != digest:
        _discard(upload)
        raise DigestInvalid(f"The uploaded bytes have digest {actual}, not {digest}.")
    with _parts_arrived(upload):
        stored = storage.store_empty(digest) if not keys else storage.commit_parts(keys, digest)
    return _link(repository, digest, upload.size, upload=upload, stored=stored)


@contextlib.contextmanager
def _parts_arrived(upload: Upload):
    """Around a read or a move of the upload's parts: BLOB_UPLOAD_INVALID (400) for a part not in the store
    (FileNotFoundError; the folder and the object store both raise it). storage.commit_parts leaves nothing at
    the blob's key then."""
    try:
        yield
    except FileNotFoundError:
        raise BlobUploadInvalid(
            f"A part of upload {upload.id} is not in the store: a chunk still being stored (send the PUT once its "
            "PATCH is answered), or a PUT or DELETE of the same upload at the same time ended it."
        ) from None


def _link(repository: Repository, digest: str, size: int, upload: Upload, *, stored: bool) -> Blob:
    """Record that the store holds blob ``digest`` and that ``repository`` holds it; end ``upload``.
    ``stored``: this upload's bytes became the blob (the store did not hold it). NAME_UNKNOWN (404) when the
    repository was deleted meanwhile.

    The first try takes no lock on the repository before it writes (one round trip less on a layer's push):
    the link's foreign key is checked at COMMIT (Django's foreign keys are deferred, on both databases;
    PostgreSQL then locks the repository's row FOR KEY SHARE, as :func:`_hold` would) and fails the
    transaction when the repository is gone. When the
    upload stored the bytes, no row can be there either (a blob's row is written after its bytes and removed
    before them, swr/distribution/gc.py): the row is written without looking for one first, and without a
    savepoint around it (three round trips less). When a concurrent upload of the same bytes wrote it first,
    its unique digest fails the transaction. After either failure the transaction runs once more, holding the
    repository first and looking for the blob's row: it finds it, or answers NAME_UNKNOWN."""
    try:
        if stored and connection.vendor == "postgresql":
            # Inside a caller's transaction (a test's), a savepoint to roll back to (the foreign key is then
            # checked at the caller's COMMIT).
            with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext():
                return _link_new_blob(repository, digest, size, upload)
        return _link_once(repository, digest, size, upload, hold=False, seek=not stored)
    except IntegrityError:  # the blob's row, created by a concurrent upload of the same bytes; the repository gone
        return _link_once(repository, digest, size, upload, hold=True, seek=True)


def _link_new_blob(repository: Repository, digest: str, size: int, upload: Upload) -> Blob:
    """The first try of :func:`_link` when the upload stored the bytes, on PostgreSQL: what :func:`_link_once`
    writes without ``hold`` and ``seek`` (the blob's row, its link to the repository, the repository's size,
    the end of the session), in one statement that is its own transaction (one round trip instead of six).
    Its data-modifying WITH clauses all run, whatever the final SELECT reads, in an order PostgreSQL chooses
    unless one reads another: the session's end waits for the repository's row (``grown``), so that the
    statement locks the repository before the session, as a repository's delete does (the other order
    deadlocked with it: a 500). The link's foreign key is checked at the statement's COMMIT. IntegrityError
    when the digest's row exists or the repository is gone (``grown`` then changes nothing and the session
    stays for the retry), as in :func:`_link_once`."""
    b, link, r, u = Table(Blob), Table(RepositoryBlob), Table(Repository), Table(Upload)
    now = Blob._meta.get_field("created_at").get_db_prep_value(timezone.now(), connection)
    sql = (
        f"WITH new_blob AS (INSERT INTO {b} ({b['digest']}, {b['size']}, {b['created_at']}) "
        f"VALUES (%s, %s, %s) RETURNING {b['pk']}), "
        f"new_link AS (INSERT INTO {link} ({link['repository']}, {link['blob']}, {link['created_at']}) "
        f"SELECT %s, {b['pk']}, %s FROM new_blob), "
        f"grown AS (UPDATE {r} SET {r['size']} = {r['size']} + %s WHERE {r['pk']} = %s RETURNING 1), "
        f"ended AS (DELETE FROM {u} WHERE {u['pk']} = %s AND EXISTS (SELECT FROM grown)) "
        f"SELECT {b['pk']} FROM new_blob"
    )
    params = [digest, size, now, repository.pk, now, size, repository.pk, upload.pk]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        (blob_id,) = cursor.fetchone()
    return Blob(id=blob_id, digest=digest, size=size)


def _link_once(repository: Repository, digest: str, size: int, upload: Upload, *, hold: bool, seek: bool) -> Blob:
    """One try of :func:`_link`: ``hold``, lock the repository first; ``seek``, look for the blob's row (and lock
    it against the garbage collector) before creating one."""
    with transaction.atomic():
        if hold:
            _hold(repository)
        blob = next(iter(Blob.objects.filter(digest=digest)[:1]), None) if seek else None
        if blob is not None and not services.lock_row(Blob, blob.pk, "KEY SHARE"):
            blob = None  # removed by the garbage collector meanwhile: the upload's mark kept the bytes
        created = blob is None
        if created:
            blob = Blob.objects.create(digest=digest, size=size)
        _link_blob(repository, blob, new_blob=created)
        Upload.objects.filter(pk=upload.pk).delete()
    return blob


def _link_blob(repository: Repository, blob: Blob, *, new_blob: bool = False) -> bool:
    """Inside a transaction holding the repository: link ``blob`` to it once; True if this call linked it.

    ``new_blob``: this transaction created the blob's row, so no other can have linked it yet (its link is
    written without looking for one, and without a savepoint)."""
    if new_blob:
        RepositoryBlob.objects.create(repository=repository, blob=blob)
    else:
        if RepositoryBlob.objects.filter(repository=repository, blob=blob).exists():
            return False
        try:
            with transaction.atomic():
                RepositoryBlob.objects.create(repository=repository, blob=blob)
        except IntegrityError:  # linked by a concurrent request
            return False
    Repository.objects.filter(pk=repository.pk).update(size=F("size") + blob.size)
    return True


def upload_cancel(upload: Upload) -> None:
    """End an upload session without a blob (DELETE .../blobs/uploads/<id>)."""
    _discard(upload)


def blob_mount(repository: Repository, digest: str, source: Repository) -> Blob | None:
    """Link blob ``digest`` of ``source`` into ``repository`` (the caller may pull ``source``); None when
    ``source`` does not hold it (the client then uploads it)."""
    blob = Blob.objects.filter(digest=digest, repository_links__repository=source).first()
    if blob is None or not storage.exists(digest):
        return None
    with transaction.atomic():
        _hold(repository)
        if not services.lock_row(Blob, blob.pk, "KEY SHARE"):
            return None  # collected meanwhile (its last link went): the client uploads it
        _link_blob(repository, blob)
    return blob


def blob_delete(repository: Repository, digest: str, actor: Actor) -> None:
    """Unlink blob ``digest`` from ``repository`` (its bytes stay while anything else holds them)."""
    digest = digests.parse(digest)
    with transaction.atomic():
        _hold(repository)
        removed, _ = RepositoryBlob.objects.filter(repository=repository, blob__digest=digest).delete()
        if not removed:
            raise BlobUnknown(f"Repository {_label(repository)} holds no blob {digest}.")
        size = Blob.objects.get(digest=digest).size
        Repository.objects.filter(pk=repository.pk).update(size=F("size") - size)
        record(actor, "blob.delete", f"{_label(repository)}@{digest}")


# Manifests and tags


@dataclass(frozen=True)
class Pushed:
    digest: str
    subject: str


def manifest_put(
    repository: Repository, reference: str, content: bytes, content_type: str, actor: Actor, tags: list[str]
) -> Pushed:
    """Store a manifest pushed as ``reference`` (a tag or a digest) and point ``tags`` at it.

    MANIFEST_INVALID for a document that cannot be used or one over SWR_MAX_MANIFEST_BYTES (413),
    DIGEST_INVALID when ``reference`` is a digest the bytes do not have, MANIFEST_BLOB_UNKNOWN when a blob it
    refers to is not in the repository.
    """
    if len(content) > settings.SWR_MAX_MANIFEST_BYTES:
        raise ManifestInvalid(
            f"The manifest is {len(content)} bytes; the limit is {settings.SWR_MAX_MANIFEST_BYTES}.", status_code=413
        )
    parsed = manifests.parse(content, content_type)
    if digests.is_valid(reference) or ":" in reference:
        expected = digests.parse(reference)
        digest = digests.of(content, digests.algorithm(expected))
        if digest != expected:
            raise DigestInvalid(f"The manifest's bytes have digest {digest}, not {expected}.")
    else:
        digest = digests.of(content)
    needed = {d.digest: d for d in parsed.blobs}
    found = Blob.objects.filter(digest__in=needed, repository_links__repository=repository)
    held = {digest: (pk, size) for digest, pk, size in found.values_list("digest", "id", "size")}
    missing = [d for d in needed if d not in held]
    if missing:
        raise ManifestBlobUnknown(
            f"The manifest refers to {len(missing)} blob(s) that repository {_label(repository)} does not hold: "
            "push them first.",
            detail={"digests": missing[:10], "missing": len(missing)},
        )
    wrong = [d for d in needed.values() if held[d.digest][1] != d.size]
    if wrong:
        raise ManifestInvalid(
            f"Blob {wrong[0].digest} is {held[wrong[0].digest][1]} bytes; the manifest says {wrong[0].size}."
        )
    with transaction.atomic():
        _hold(repository)
        if _hold_links(repository, [pk for pk, _ in held.values()]) < len(held):
            raise ManifestBlobUnknown(
                f"A blob the manifest refers to left repository {_label(repository)} meanwhile: push it again."
            )
        manifest = Manifest.objects.filter(repository=repository, digest=digest).first()
        if manifest is None:
            try:
                with transaction.atomic():
                    manifest = Manifest.objects.create(
                        repository=repository,
                        digest=digest,
                        media_type=parsed.media_type,
                        size=len(content),
                        content=content,
                        config_digest=parsed.config.digest if parsed.config else "",
                        artifact_type=parsed.artifact_type,
                        subject_digest=parsed.subject.digest if parsed.subject else "",
                        image_size=parsed.image_size,
                    )
                    ManifestBlob.objects.bulk_create(
                        ManifestBlob(manifest=manifest, blob_id=pk) for pk, _ in held.values()
                    )
            except IntegrityError:  # the same manifest pushed by a concurrent request
                manifest = Manifest.objects.get(repository=repository, digest=digest)
        for tag in tags:
            _tag(repository, tag, manifest)
        record(actor, "manifest.push", f"{_label(repository)}{''.join(':' + t for t in tags)}@{digest}")
    return Pushed(digest=digest, subject=parsed.subject.digest if parsed.subject else "")


def _tag(repository: Repository, name: str, manifest: Manifest) -> None:
    updated = Tag.objects.filter(repository=repository, name=name).update(manifest=manifest, updated_at=timezone.now())
    if updated:
        return
    try:
        with transaction.atomic():
            Tag.objects.create(repository=repository, name=name, manifest=manifest)
    except IntegrityError:  # created by a concurrent push of the same tag: this push is the later one
        Tag.objects.filter(repository=repository, name=name).update(manifest=manifest, updated_at=timezone.now())
        return
    Repository.objects.filter(pk=repository.pk).update(num_images=F("num_images") + 1, updated_at=timezone.now())


def manifest_delete(repository: Repository, reference: str, actor: Actor) -> None:
    """Delete by digest (the manifest and every tag on it) or by tag (that tag only).

    MANIFEST_UNKNOWN (404) when the repository holds no such manifest or tag. The manifest is locked
    ``FOR UPDATE`` before its tags are counted: a tag copy onto it (:func:`tag_copy`, which holds it
    ``FOR KEY SHARE``) either ends first, and its tag is counted and removed with the others, or finds the
    manifest gone.
    """
    with transaction.atomic():
        _hold(repository)
        if ":" in reference:
            digest = digests.parse(reference)
            manifest = Manifest.objects.filter(repository=repository, digest=digest).first()
            if manifest is None or not services.lock_row(Manifest, manifest.pk, "UPDATE"):
                raise ManifestUnknown(f"Repository {_label(repository)} holds no manifest {digest}.")
            tags = Tag.objects.filter(manifest=manifest).count()
            manifest.delete()
        else:
            tags = _untag(repository, reference)
            if not tags:
                raise ManifestUnknown(f"Repository {_label(repository)} has no tag {reference!r}.")
        record(actor, "manifest.delete", f"{_label(repository)}{'@' if ':' in reference else ':'}{reference}")
        if ":" in reference and tags:
            Repository.objects.filter(pk=repository.pk).update(num_images=F("num_images") - tags)


def _untag(repository: Repository, name: str) -> int:
    """Inside a transaction holding the repository: remove tag ``name`` and count it off; 1 if it was there."""
    removed, _ = Tag.objects.filter(repository=repository, name=name).delete()
    if removed:
        Repository.objects.filter(pk=repository.pk).update(num_images=F("num_images") - removed)
    return removed


def check_tag_name(name: str, field: str = "tag") -> str:
    """``name`` if it is a tag name (spec section 9: ``[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}``); else 400
    (SVCSTG.SWR.4009021) saying so, with ``field`` in its details."""
    if isinstance(name, str) and _TAG.match(name):
        return name
    shown = name[:200] if isinstance(name, str) else name
    message = (
        f"Invalid image tag name {shown!r}: a tag is 1 to 128 characters, letters, digits, '_', '.' and '-', "
        "and does not start with '.' or '-'."
    )
    raise InvalidTagName(message, details=[{"field": field, "error_msg": message}])


# The management API's tag calls (spec section 10): the same rows, locks and counters as a push and an untag.


def tag_copy(*, repository: Repository, source_tag: str, destination_tag: str, override: bool, actor: Actor) -> Tag:
    """Point tag ``destination_tag`` at the manifest of ``source_tag`` (``POST .../tags``), as a push of that
    manifest with that tag would: the same Tag row, ``num_images`` one more for a new tag.

    400 (SVCSTG.SWR.4009021) for an invalid name; 404 (SVCSTG.SWR.4040048) when the source tag is missing
    (or removed, with its manifest, meanwhile); 409 (SVCSTG.SWR.4090082) when the destination exists and
    ``override`` is false (also when a concurrent copy or push created it first). The source manifest is
    held ``FOR KEY SHARE`` until the end, so a concurrent manifest delete waits, then removes the new tag
    with its manifest: no tag is ever left pointing at nothing.
    """
    check_tag_name(source_tag, "source_tag")
    check_tag_name(destination_tag, "destination_tag")
    label = f"{_label(repository)}:{destination_tag}"
    with transaction.atomic():
        _hold(repository)
        source = Tag.objects.filter(repository=repository, name=source_tag).values_list("manifest_id", flat=True)
        manifest_id = source.first()
        if manifest_id is None or not services.lock_row(Manifest, manifest_id, "KEY SHARE"):
            raise TagNotFound(f"Repository {_label(repository)} has no tag {source_tag!r}.")
        existing = Tag.objects.filter(repository=repository, name=destination_tag)
        moved = 0
        if existing.exists():
            if not override:
                raise TagExists(
                    f"Tag {destination_tag!r} already exists in repository {_label(repository)}: "
                    "send override true to point it at the image of the source tag."
                )
            moved = existing.update(manifest_id=manifest_id, updated_at=timezone.now())
        if not moved:  # a new tag (or one deleted meanwhile)
            try:
                with transaction.atomic():
                    Tag.objects.create(repository=repository, name=destination_tag, manifest_id=manifest_id)
            except IntegrityError:  # created by a concurrent copy or push of the same tag
                if override:
                    existing.update(manifest_id=manifest_id, updated_at=timezone.now())
                    record(actor, "tag.copy", f"{_label(repository)}:{source_tag} -> {label}")
                    return Tag.objects.select_related("manifest").get(repository=repository, name=destination_tag)
                raise TagExists(
                    f"Tag {destination_tag!r} was created in repository {_label(repository)} by another request "
                    "meanwhile: send override true to point it at the image of the source tag."
                ) from None
            Repository.objects.filter(pk=repository.pk).update(
                num_images=F("num_images") + 1, updated_at=timezone.now()
            )
        record(actor, "tag.copy", f"{_label(repository)}:{source_tag} -> {label}")
        return Tag.objects.select_related("manifest").get(repository=repository, name=destination_tag)


def tag_delete(*, repository: Repository, name: str, actor: Actor) -> None:
    """Remove tag ``name`` (``DELETE .../tags/{tag}``), as the registry's untag does: its manifest stays.

    400 (SVCSTG.SWR.4009021) for an invalid name; 404 (SVCSTG.SWR.4040048) when there is no such tag (also
    when a concurrent delete removed it first).
    """
    check_tag_name(name)
    with transaction.atomic():
        _hold(repository)
        if not _untag(repository, name):
            raise TagNotFound(f"Repository {_label(repository)} has no tag {name!r}.")
        record(actor, "tag.delete", f"{_label(repository)}:{name}")


def count_download(repository: Repository) -> None:
    """One more pull of the repository (a manifest GET), for ``num_download``."""
    Repository.objects.filter(pk=repository.pk).update(num_download=F("num_download") + 1)
