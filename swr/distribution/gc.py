"""Online garbage collection of the registry's bytes (spec section 9): mark and sweep over the database.

What is kept (the mark): a blob that a manifest refers to (ManifestBlob), that a repository holds
(RepositoryBlob), or that an open upload is ending as (Upload.digest). What goes (the sweep), oldest
first, once older than the grace period (SWR_GC_GRACE_MINUTES):

1. with ``delete_untagged`` only (default: keep, as CNCF distribution's ``--delete-untagged`` is off by
   default): manifests no tag names, that no kept index lists and whose subject is not kept;
2. repository links (RepositoryBlob) that no manifest of their repository refers to: a blob pushed but never
   used by a manifest, or left by a deleted tag's or manifest's last reference. The grace period is the
   time a client has between pushing its layers and pushing the manifest that uses them;
3. upload sessions untouched for SWR_UPLOAD_TTL, and the parts of uploads whose rows are gone;
4. on an object store only, multipart uploads neither completed nor aborted (a worker killed while it stored a
   part or composed a blob): aborted, which removes their parts, bytes that no listing of the bucket's objects
   shows. Kept while the upload session they belong to is open (a part of ``uploads/<its id>/``, or the blob it
   is ending as), so that a push streaming for longer than the grace period is not cut off;
5. blobs nothing keeps: the row, then its bytes;
6. only when asked (``stray_bytes``; ``swr_gc --stray-bytes``, never on the schedule): bytes under ``blobs/``
   that no blob row and no open upload names, once older than both the grace period and SWR_UPLOAD_TTL (by then
   an upload that stored them has linked them or expired): a blob's bytes whose delete failed after its row had
   gone (the store was away), and a copy a worker killed while it composed a blob from several parts left under
   a key of its own (storage._copy_whole). Found by listing the store's ``blobs/``, as CNCF distribution's
   collector walks its storage; a blob's bytes go under the digest's lock, as in step 5. Asked for only, because
   it takes the database for the whole truth about the store: pointed at a store that another database (or an
   empty one) also uses, it would remove that one's blobs; and a walk of a large store takes long.

Pushes go on meanwhile. Each removal runs in its own short transaction, locks what it removes and checks
again under the lock that nothing keeps it; a push locks what it links (swr/distribution/services.py):

- a link is removed under the repository's ``KEY SHARE`` lock and the link's ``FOR UPDATE``; a manifest
  push locks the links it refers to ``FOR KEY SHARE`` in its transaction, so one waits for the other, and
  a push that finds a link gone answers MANIFEST_BLOB_UNKNOWN (the client pushes the blob again);
- a blob row is removed under ``FOR UPDATE``; an upload's end and a mount lock it ``FOR KEY SHARE``
  before linking it, and when it is gone the upload creates it again (a mount answers "upload it");
- the bytes are deleted after the row's removal has committed, in a second transaction that holds the
  digest's lock (``services.hold_digest``) and finds neither a row nor an upload marked with the digest.
  An upload marks itself under that lock before it looks at the store: either the collector sees the
  mark and keeps the bytes, or it deleted them before the mark and the upload stores its own.

On SQLite every write transaction holds the database's write lock, which orders all of this as well.
"""

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from swr import services as domain
from swr.audit import Actor, record
from swr.distribution import manifests, storage
from swr.distribution.services import _discard, hold_digest
from swr.models import Blob, Manifest, ManifestBlob, Repository, RepositoryBlob, Tag, Upload

BATCH = 500


@dataclass
class Report:
    """What one run removed (or, in a dry run, would remove). ``bytes``: of the blobs removed."""

    dry_run: bool = False
    manifests: int = 0
    links: int = 0
    uploads: int = 0
    part_folders: int = 0
    multipart_uploads: int = 0
    blobs: int = 0
    bytes: int = 0
    stray_objects: int = 0
    stray_bytes: int = 0
    digests: list[str] = field(default_factory=list)

    def summary(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        return (
            f"{verb} {self.blobs} blobs ({self.bytes} bytes), "
            f"{self.stray_objects} stray objects ({self.stray_bytes} bytes), {self.manifests} untagged manifests, "
            f"{self.links} unused repository links, {self.uploads} expired uploads, "
            f"{self.part_folders} abandoned upload folders, {self.multipart_uploads} incomplete multipart uploads"
        )


def collect(
    *,
    actor: Actor,
    grace: timedelta | None = None,
    dry_run: bool = False,
    delete_untagged: bool | None = None,
    stray_bytes: bool = False,
) -> Report:
    """One run of the collector; its report. ``grace``: default SWR_GC_GRACE_MINUTES; ``delete_untagged``:
    default SWR_GC_DELETE_UNTAGGED; ``stray_bytes``: also step 6 (the module's docstring says when not to). A run
    that removed anything leaves an audit record ``registry.gc``."""
    grace = settings.SWR_GC_GRACE if grace is None else grace
    delete_untagged = settings.SWR_GC_DELETE_UNTAGGED if delete_untagged is None else delete_untagged
    cutoff = timezone.now() - grace
    report = Report(dry_run=dry_run)
    if delete_untagged:
        _untagged_manifests(cutoff, report)
    _unused_links(cutoff, report)
    _expired_uploads(report)
    _abandoned_parts(cutoff, report)
    _multipart_uploads(cutoff, report)
    _blobs(cutoff, report)
    if stray_bytes:
        _stray_bytes(min(cutoff, timezone.now() - settings.SWR_UPLOAD_TTL), report)
    removed = (
        report.blobs,
        report.stray_objects,
        report.manifests,
        report.links,
        report.uploads,
        report.part_folders,
        report.multipart_uploads,
    )
    if not dry_run and any(removed):
        with transaction.atomic():
            record(actor, "registry.gc", "blobs", detail=report.summary())
    return report


# 1. Untagged manifests


def _untagged_manifests(cutoff, report: Report) -> None:
    tagged = Exists(Tag.objects.filter(manifest=OuterRef("pk")))
    untagged = Manifest.objects.filter(created_at__lt=cutoff).exclude(tagged)
    for repository_id in untagged.values_list("repository_id", flat=True).distinct().order_by():
        if report.dry_run:
            report.manifests += len(_doomed_manifests(repository_id, cutoff))
            continue
        with transaction.atomic():
            # FOR UPDATE on the repository: pushes into it (KEY SHARE) wait, so none tags a manifest being removed.
            if not domain.lock_row(Repository, repository_id, "UPDATE"):
                continue
            doomed = _doomed_manifests(repository_id, cutoff)
            Manifest.objects.filter(pk__in=doomed).delete()
            report.manifests += len(doomed)


def _doomed_manifests(repository_id: int, cutoff) -> list[int]:
    """The untagged manifests of a repository that nothing kept refers to: not listed by a kept index, not
    referring (subject) to a kept manifest, and older than ``cutoff``."""
    rows = list(
        Manifest.objects.filter(repository_id=repository_id)
        .annotate(tagged=Exists(Tag.objects.filter(manifest=OuterRef("pk"))))
        .values_list("pk", "digest", "media_type", "subject_digest", "created_at", "tagged")
    )
    by_digest = {row[1]: row for row in rows}
    kept = {row[1] for row in rows if row[5] or row[4] >= cutoff}
    pending = list(kept)
    while pending:
        digest = pending.pop()
        row = by_digest[digest]
        children = []
        if "index" in row[2] or "list" in row[2]:
            content = Manifest.objects.filter(pk=row[0]).values_list("content", flat=True).first()
            if content is not None:
                children = [d.digest for d in manifests.parse(bytes(content), row[2]).manifests]
        children += [other[1] for other in rows if other[3] == digest]  # its referrers
        for child in children:
            if child in by_digest and child not in kept:
                kept.add(child)
                pending.append(child)
    return [row[0] for row in rows if row[1] not in kept]


# 2. Repository links no manifest uses


def _unused_links(cutoff, report: Report) -> None:
    used = ManifestBlob.objects.filter(manifest__repository_id=OuterRef("repository_id"), blob_id=OuterRef("blob_id"))
    unused = RepositoryBlob.objects.filter(created_at__lt=cutoff).exclude(Exists(used))
    for repository_id in unused.values_list("repository_id", flat=True).distinct().order_by():
        links = list(unused.filter(repository_id=repository_id).values_list("pk", flat=True)[:BATCH])
        if report.dry_run:
            report.links += len(links)
            continue
        with transaction.atomic():
            if not domain.lock_row(Repository, repository_id, "KEY SHARE"):
                continue
            # Locked, then checked again: a manifest push that locked a link first has its reference now.
            locked = list(RepositoryBlob.objects.select_for_update().filter(pk__in=links).values_list("pk", flat=True))
            gone = list(unused.filter(pk__in=locked).values_list("pk", "blob__size"))
            if not gone:
                continue
            RepositoryBlob.objects.filter(pk__in=[pk for pk, _ in gone]).delete()
            Repository.objects.filter(pk=repository_id).update(size=F("size") - sum(size for _, size in gone))
            report.links += len(gone)


# 3. Uploads


def _expired_uploads(report: Report) -> None:
    expired = Upload.objects.filter(updated_at__lt=timezone.now() - settings.SWR_UPLOAD_TTL)
    for upload in expired.order_by("updated_at")[:BATCH]:
        report.uploads += 1
        if report.dry_run:
            continue
        _discard(upload)
        if upload.digest:  # it ended between storing its blob and linking it: the bytes may be nobody's
            _delete_bytes(upload.digest)


def _abandoned_parts(cutoff, report: Report) -> None:
    """Parts whose upload row is gone (a session discarded while a chunk was arriving, a crash)."""
    for upload_id, keys in storage.upload_parts(cutoff).items():
        if _is_uuid(upload_id) and Upload.objects.filter(pk=upload_id).exists():
            continue
        report.part_folders += 1
        if not report.dry_run:
            storage.delete_upload_parts(upload_id, keys)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


# 4. Multipart uploads


def _multipart_uploads(cutoff, report: Report) -> None:
    """Abort what the object store holds of multipart uploads begun before ``cutoff`` and never completed nor
    aborted, unless the upload session they belong to is open (storage.stale_multipart_uploads: none on a
    folder). Parts are stored under ``uploads/<upload id>/``, and blobs composed while the upload is marked
    with the blob's digest (services.upload_finish): either is kept until its session ends or expires (step 3)."""
    for key, upload_id in storage.stale_multipart_uploads(cutoff):
        if _of_open_upload(key):
            continue
        if report.dry_run or storage.abort_multipart_upload(key, upload_id):
            report.multipart_uploads += 1


def _of_open_upload(key: str) -> bool:
    """Whether ``key`` is a part of an open upload (``uploads/<id>/...``) or the blob an upload is ending as."""
    folder, _, rest = key.partition("/")
    if folder == "uploads":
        upload_id = rest.split("/", 1)[0]
        return _is_uuid(upload_id) and Upload.objects.filter(pk=upload_id).exists()
    if folder == "blobs" and rest.count("/") == 2:
        algorithm, _, encoded = rest.split("/")
        return Upload.objects.filter(digest=f"{algorithm}:{encoded}").exists()
    return False


# 5. Blobs


def _blobs(cutoff, report: Report) -> None:
    links = RepositoryBlob.objects.filter(blob_id=OuterRef("pk"))
    if report.dry_run:  # the links step removed nothing: count as if it had
        same = {"manifest__repository_id": OuterRef("repository_id"), "blob_id": OuterRef("blob_id")}
        links = links.filter(Q(created_at__gte=cutoff) | Exists(ManifestBlob.objects.filter(**same)))
    kept = (  # a manifest's reference, a repository's link, an open upload ending as it
        Exists(ManifestBlob.objects.filter(blob_id=OuterRef("pk")))
        | Exists(links)
        | Exists(Upload.objects.filter(digest=OuterRef("digest")))
    )
    candidates = Blob.objects.filter(created_at__lt=cutoff).exclude(kept)
    last = 0
    while True:
        batch = list(candidates.filter(pk__gt=last).order_by("pk").values_list("pk", "digest", "size")[:BATCH])
        if not batch:
            return
        last = batch[-1][0]
        for pk, digest, size in batch:
            if report.dry_run:
                removed = True
            else:
                with transaction.atomic():
                    # FOR UPDATE, then checked again: a push that linked it first (KEY SHARE) is seen now.
                    locked = Blob.objects.select_for_update().filter(pk=pk).values_list("pk", flat=True).first()
                    removed = locked is not None and candidates.filter(pk=pk).delete()[0] > 0
                if removed:
                    _delete_bytes(digest)
            if removed:
                report.blobs += 1
                report.bytes += size
                report.digests.append(digest)


def _delete_bytes(digest: str) -> bool:
    """After a blob's row is gone: delete its bytes unless a row or an upload ending as it appeared since; whether
    they were deleted."""
    with transaction.atomic():
        hold_digest(digest)
        if Blob.objects.filter(digest=digest).exists() or Upload.objects.filter(digest=digest).exists():
            return False
        storage.delete_blob(digest)
    return True


# 6. Stray bytes


def _stray_bytes(before, report: Report) -> None:
    """Remove what the store holds under ``blobs/`` (written before ``before``) that no blob row and no open upload
    names: a blob's bytes under the digest's lock (:func:`_delete_bytes`); a copy of storage._copy_whole (named
    after the blob it was becoming) unless an open upload is ending as that blob; any other key of the form
    ``blobs/<algorithm>/<two characters>/<name>`` at once. A key of another form is left alone: an object store
    may hold keys the registry never writes (``blobs/sha256//...``), which a delete by a cleaned-up name would
    take for a blob's."""
    keys = storage.stored_blob_keys(before)
    while batch := list(itertools.islice(keys, BATCH)):
        batch = [(key, size) for key, size in batch if storage.is_blob_store_key(key)]
        named = {key: storage.digest_of_key(key) or storage.digest_of_key(key.rsplit(".", 1)[0]) for key, _ in batch}
        wanted = [digest for digest in named.values() if digest]
        known = set(Blob.objects.filter(digest__in=wanted).values_list("digest", flat=True))
        marked = set(Upload.objects.filter(digest__in=wanted).values_list("digest", flat=True))
        for key, size in batch:
            digest, copy = named[key], storage.digest_of_key(key) is None
            if digest in marked or (digest in known and not copy):
                continue
            if not report.dry_run:
                if copy:
                    storage.delete_key(key)
                elif not _delete_bytes(digest):
                    continue
            report.stray_objects += 1
            report.stray_bytes += size
