"""The blob store: the registry's bytes, through Django's storage API (STORAGES["blobs"]).

Blobs are stored once per content under ``blobs/<algorithm>/<first two hex digits>/<hex>``;
an upload's parts under ``uploads/<upload id>/<part number>`` until the upload ends. Nothing
here holds a blob in memory whole: bytes move in pieces of ``PIECE`` bytes, hashed as they pass.
The default backend is a folder under ``var/`` (registry/settings.py); any backend of Django's
storage API serves.

On an S3-compatible object store (SWR_BLOB_STORAGE=s3: swr/distribution/s3.py, a backend with
``is_object_store``) the same operations take the store's own paths: a part goes up as a multipart
upload of 8 MiB parts (one part in memory, nothing on local disk) and is given its place by a link, not a
copy; an upload's parts become the blob by server-side copies (CopyObject, UploadPartCopy); reads are
ranged GETs streamed as they are consumed; parts are removed by DeleteObjects; pulls may be redirected to a
signed URL (:func:`signed_url`). The multipart uploads a killed worker left incomplete are found and aborted
by the garbage collector (:func:`stale_multipart_uploads`).
"""

import contextlib
import os
import uuid
from collections.abc import Iterator

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import FileSystemStorage, storages

from swr.distribution import digests

PIECE = 64 * 1024


def storage():
    return storages["blobs"]


def _object_store():
    """The backend when it is an object store (swr/distribution/s3.py S3BlobStorage), else None."""
    store = storages["blobs"]
    return store if getattr(store, "is_object_store", False) else None


def blob_key(digest: str) -> str:
    algorithm, encoded = digest.split(":", 1)
    return f"blobs/{algorithm}/{encoded[:2]}/{encoded}"


def part_key(upload_id, number: int) -> str:
    return f"uploads/{upload_id}/{number}"


class HashingReader(File):
    """A File over a stream that reads at most ``limit`` bytes (None: until it ends) and hashes them as they pass.

    Given to ``Storage.save()``, which reads it in chunks: the bytes go to the storage and through the
    hash objects, never whole into memory. ``size`` is what was read; ``hexdigest(algorithm)`` the digest.
    """

    def __init__(self, stream, limit: int | None, algorithms=("sha256",)):
        super().__init__(stream)
        self.limit = limit
        self.read_size = 0
        self.hashes = {name: digests.hasher(name) for name in algorithms}

    def read(self, size: int = -1) -> bytes:
        if self.limit is not None:
            left = self.limit - self.read_size
            if left <= 0:
                return b""
            size = left if size is None or size < 0 else min(size, left)
        data = self.file.read(size if size is not None and size >= 0 else PIECE)
        if data:
            self.read_size += len(data)
            for hash_object in self.hashes.values():
                hash_object.update(data)
        return data

    def chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
        while True:
            data = self.read(chunk_size or PIECE)
            if not data:
                return
            yield data

    def multiple_chunks(self, chunk_size=None) -> bool:
        return True

    @property
    def size(self):
        return self.read_size

    def digest(self, algorithm: str = "sha256") -> str:
        return f"{algorithm}:{self.hashes[algorithm].hexdigest()}"


class PartsReader:
    """The parts of an upload read one after the other, as one stream."""

    def __init__(self, keys: list[str]):
        self.keys = list(keys)
        self.current = None

    def read(self, size: int = -1) -> bytes:
        while True:
            if self.current is None:
                if not self.keys:
                    return b""
                self.current = open_key(self.keys.pop(0))
            data = self.current.read(size if size and size > 0 else PIECE)
            if data:
                return data
            self.current.close()
            self.current = None

    def close(self):
        if self.current is not None:
            self.current.close()


def save_part(key: str, stream, limit: int | None) -> HashingReader:
    """Store ``stream`` (at most ``limit`` bytes; None: to its end) under ``key``, hashing it; the reader, for
    its size and digest."""
    reader = HashingReader(stream, limit)
    if (store := _object_store()) is not None:
        store.put_stream(key, reader)
    elif isinstance(store := storage(), FileSystemStorage):
        _write_new_file(store, key, reader)
    else:
        _save_exact(key, reader)
    return reader


def _write_new_file(store: FileSystemStorage, key: str, reader: HashingReader) -> None:
    """Write ``reader`` to a new file at ``key`` of a folder (a part's own name: an upload id and a fresh UUID;
    FileExistsError if it exists): what FileSystemStorage.save does there, without its search for a free name
    and its file lock. The file and a folder it makes take the storage's modes exactly, whatever the umask, as
    there (FILE_UPLOAD_PERMISSIONS, FILE_UPLOAD_DIRECTORY_PERMISSIONS). A third of a small chunk's cost in
    the worker (docs/performance.md)."""
    path = store.path(key)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags, 0o666)
    except FileNotFoundError:  # the upload's first part: its folder is new
        _make_folders(store, os.path.dirname(path))
        descriptor = os.open(path, flags, 0o666)
    with open(descriptor, "wb") as file:
        if store.file_permissions_mode is not None:
            os.fchmod(descriptor, store.file_permissions_mode)
        for piece in reader.chunks():
            file.write(piece)


def _make_folders(store: FileSystemStorage, directory: str) -> None:
    """The folders of ``directory``, with the storage's folder mode as FileSystemStorage.save makes them."""
    if store.directory_permissions_mode is None:
        os.makedirs(directory, exist_ok=True)
        return
    # As Django's FileSystemStorage does: makedirs gives its mode only to the last folder, the umask shapes every
    # folder it makes (with a umask of 0 the ones above would be 0o777, writable by anyone).
    umask = os.umask(0o777 & ~store.directory_permissions_mode)
    try:
        os.makedirs(directory, store.directory_permissions_mode, exist_ok=True)
    finally:
        os.umask(umask)


def _save_exact(key: str, content: File) -> None:
    """Save under exactly ``key`` (Django's save() picks another name when one exists: a stale part or blob)."""
    store = storage()
    if store.exists(key):
        store.delete(key)
    saved = store.save(key, content)
    if saved != key:  # a concurrent writer of the same key: the content is the same (addressed by digest)
        store.delete(saved)


def rename(source: str, target: str) -> None:
    """Give the bytes at ``source`` the key ``target`` (on a folder, an atomic rename; on an object store, a link
    that the reads and deletes of parts below follow; else a streamed copy)."""
    store = storage()
    if isinstance(store, FileSystemStorage):
        os.replace(store.path(source), store.path(target))
        return
    if _object_store() is not None:  # no copy: ``target`` names ``source`` (S3BlobStorage.link)
        store.link(source, target)
        return
    with store.open(source, "rb") as file:
        _save_exact(target, HashingReader(file, None, ()))
    store.delete(source)


def digest_of_parts(keys: list[str], algorithm: str) -> tuple[str, int]:
    """Read the parts once, in a stream: their digest and total size."""
    if (store := _object_store()) is not None:
        keys = [source for _, source, _ in store.resolve(keys)]
    reader = HashingReader(PartsReader(keys), None, (algorithm,))
    for _ in reader.chunks():
        pass
    return reader.digest(algorithm), reader.size


def commit_parts(keys: list[str], digest: str) -> bool:
    """Make the parts the blob ``digest`` (if the store does not hold it yet), then remove the parts; True when
    the parts became the blob, False when the store held it already.

    On a folder, a one-part upload is renamed into place (no copy); on an object store the parts are copied
    inside the store (S3BlobStorage.compose, which completes the object at once); otherwise the parts are
    copied in a stream to a key of their own, renamed into the blob's when whole (:func:`_copy_whole`).
    FileNotFoundError when a part is missing; nothing is then stored under the blob's key.
    """
    store = storage()
    key = blob_key(digest)
    stored = not store.exists(key)
    if stored:
        if _object_store() is not None:
            store.compose(keys, key)
        elif len(keys) == 1 and isinstance(store, FileSystemStorage):
            target = store.path(key)
            try:
                os.replace(store.path(keys[0]), target)
            except FileNotFoundError:  # the first blob of its folder (blobs/<algorithm>/<two hex digits>/)
                if not os.path.exists(store.path(keys[0])):
                    raise
                _make_folders(store, os.path.dirname(target))
                os.replace(store.path(keys[0]), target)
        else:
            _copy_whole(keys, key)
    delete_parts(keys)
    return stored


def _copy_whole(keys: list[str], key: str) -> None:
    """Copy the parts, in a stream, into blob ``key`` through a key of this call's own, which becomes ``key`` only
    once the copy is whole: a part that goes meanwhile (a concurrent PUT or DELETE of the same upload ended it)
    raises FileNotFoundError and leaves nothing at ``key``, where a partial copy would be taken for the blob by
    every later upload of the same bytes (commit_parts looks only whether ``key`` exists)."""
    pending = f"{key}.{uuid.uuid4().hex}"
    try:
        _save_exact(pending, HashingReader(PartsReader(keys), None, ()))
        rename(pending, key)
    except BaseException:
        with contextlib.suppress(Exception):  # a store that is away: the garbage collector cannot see it
            storage().delete(pending)
        raise


def delete_parts(keys: list[str]) -> None:
    """Remove the parts ``keys`` (missing ones are no error)."""
    store = storage()
    if _object_store() is not None:  # the parts, and the bytes they link to
        resolved = store.resolve(keys, missing_ok=True)
        store.delete_many(sorted({*keys, *(source for _, source, _ in resolved)}))
        return
    for key in keys:
        if store.exists(key):
            store.delete(key)
    if keys and isinstance(store, FileSystemStorage):
        folder = os.path.dirname(store.path(keys[0]))
        with contextlib.suppress(OSError):  # not empty: another part is still being written
            os.rmdir(folder)


def store_empty(digest: str) -> bool:
    """Store the empty blob (an upload that ended without bytes) under ``digest``; True when the store did not
    hold it before (an object store is not asked: True)."""
    if (store := _object_store()) is not None:
        store.put_stream(blob_key(digest), ContentFile(b""))
        return True
    if exists(digest):
        return False
    _save_exact(blob_key(digest), ContentFile(b""))
    return True


def exists(digest: str) -> bool:
    return storage().exists(blob_key(digest))


def surely_absent(digest: str) -> bool:
    """True when the store certainly does not hold blob ``digest`` and asking is cheaper than the database: a
    folder without its file (one stat). False means "ask the database": the store holds it, or it is an
    object store, where asking is a request (several milliseconds) and the database answers sooner."""
    store = storage()
    return isinstance(store, FileSystemStorage) and not os.path.exists(store.path(blob_key(digest)))


def open_key(key: str, start: int = 0, end: int | None = None):
    """The bytes ``start`` to ``end`` (inclusive; None: to the end) stored under ``key``, as a stream to
    ``read(n)`` and ``close()``; FileNotFoundError when there is none. On an object store, a ranged GET read as
    it is consumed (django-storages' own files download the object whole first)."""
    if (store := _object_store()) is not None:
        return store.open_range(key, start, end)
    file = storage().open(key, "rb")
    if start:
        file.seek(start)
    return file


def open_blob(digest: str, start: int = 0, end: int | None = None):
    """The blob's bytes ``start`` to ``end`` (see :func:`open_key`); FileNotFoundError when the store lacks it."""
    return open_key(blob_key(digest), start, end)


def signed_url(digest: str) -> str:
    """A URL of the object store that GETs the blob without credentials for SWR_BLOB_REDIRECT_SECONDS
    (at SWR_BLOB_REDIRECT_ENDPOINT_URL when set). Only on an object store (SWR_BLOB_STORAGE=s3)."""
    store = _object_store()
    if store is None:
        raise RuntimeError("Signed URLs need an object store: SWR_BLOB_REDIRECT is for SWR_BLOB_STORAGE=s3.")
    return store.signed_url(
        blob_key(digest), settings.SWR_BLOB_REDIRECT_SECONDS, settings.SWR_BLOB_REDIRECT_ENDPOINT_URL
    )


def delete_blob(digest: str) -> None:
    """Remove the bytes of blob ``digest`` (nothing when the store does not hold them)."""
    storage().delete(blob_key(digest))


def upload_parts(before) -> dict[str, list[str]]:
    """The parts under ``uploads/``, by upload id, of the uploads whose every part was last written before
    ``before`` (an aware datetime): what an abandoned upload left behind, once its row is gone."""
    store = storage()
    try:
        folders, _ = store.listdir("uploads")
    except FileNotFoundError:  # nothing was ever uploaded to a folder
        return {}
    found = {}
    for folder in folders:
        try:
            _, names = store.listdir(f"uploads/{folder}")
            keys = [f"uploads/{folder}/{name}" for name in names]
            # An object store may still list a folder it emptied (SeaweedFS): nothing to remove there.
            if keys and all(store.get_modified_time(key) < before for key in keys):
                found[folder] = keys
        except Exception as error:
            if not _missing(error):
                raise
            continue  # the upload ended meanwhile and removed its parts
    return found


def stored_blob_keys(before) -> Iterator[tuple[str, int]]:
    """Every key under ``blobs/`` last written before ``before`` (an aware datetime), with its size in bytes:
    the blobs' keys (:func:`blob_key`) and whatever else a worker left there (a copy of :func:`_copy_whole` that
    a killed worker never renamed). On a folder, one ``stat`` per file; on an object store, the pages of
    ListObjectsV2 (a thousand keys each). Keys that go while they are listed are left out."""
    store = storage()
    if (object_store := _object_store()) is not None:
        yield from object_store.keys_before("blobs/", before)
        return
    if isinstance(store, FileSystemStorage):
        cutoff = before.timestamp()
        for root, _, names in os.walk(store.path("blobs")):
            for name in names:
                try:
                    stat = os.stat(os.path.join(root, name))
                except FileNotFoundError:
                    continue
                if stat.st_mtime < cutoff:
                    yield os.path.relpath(os.path.join(root, name), store.location).replace(os.sep, "/"), stat.st_size
        return
    yield from _listed_before(store, "blobs", before)


def _listed_before(store, folder: str, before) -> Iterator[tuple[str, int]]:
    """:func:`stored_blob_keys` through Django's storage API alone (listdir, get_modified_time, size)."""
    try:
        folders, names = store.listdir(folder)
    except FileNotFoundError:
        return
    for name in names:
        key = f"{folder}/{name}"
        try:
            if store.get_modified_time(key) < before:
                yield key, store.size(key)
        except Exception as error:
            if not _missing(error):
                raise
    for name in folders:
        yield from _listed_before(store, f"{folder}/{name}", before)


def digest_of_key(key: str) -> str | None:
    """The digest whose bytes :func:`blob_key` stores under ``key``; None for any other key."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != "blobs":
        return None
    _, algorithm, prefix, encoded = parts
    digest = f"{algorithm}:{encoded}"
    return digest if digests.is_valid(digest) and encoded[:2] == prefix else None


def is_blob_store_key(key: str) -> bool:
    """Whether ``key`` has the form of a key this module writes under ``blobs/``: ``blobs/<algorithm>/<two
    characters>/<name>``, no segment empty or a dot's (a store's listing may show keys the registry never wrote)."""
    parts = key.split("/")
    return (
        len(parts) == 4
        and parts[0] == "blobs"
        and len(parts[2]) == 2
        and all(part and part not in (".", "..") for part in parts)
    )


def delete_key(key: str) -> None:
    """Remove exactly the bytes under ``key`` (nothing when there are none): on an object store by the key as
    listed (DeleteObjects), which django-storages' ``delete`` would first clean up into another key's name."""
    if (store := _object_store()) is not None:
        store.delete_many([key])
        return
    storage().delete(key)


def _missing(error: Exception) -> bool:
    """Whether ``error`` says that a key is not there (a folder's FileNotFoundError, an object store's 404)."""
    if isinstance(error, FileNotFoundError):
        return True
    code = getattr(error, "response", {}).get("Error", {}).get("Code")  # botocore's ClientError
    return code in ("404", "NoSuchKey")


def delete_upload_parts(upload_id: str, keys: list[str]) -> None:
    """Remove the parts ``keys`` of upload ``upload_id`` and, on a folder, its emptied folder."""
    delete_parts(keys)
    store = storage()
    if isinstance(store, FileSystemStorage):
        with contextlib.suppress(OSError):
            os.rmdir(store.path(f"uploads/{upload_id}"))


# Where S3BlobStorage begins multipart uploads: a part's key (put_stream, from save_part) and a blob's (compose).
MULTIPART_PREFIXES = ("uploads/", "blobs/")


def stale_multipart_uploads(before) -> list[tuple[str, str]]:
    """On an object store: the multipart uploads under ``uploads/`` and ``blobs/`` (the keys of parts and blobs,
    the only ones the registry stores in parts) begun before ``before`` (an aware datetime) and neither completed
    nor aborted, as (key, upload id): what a worker killed while it stored a part or composed a blob left behind
    (S3BlobStorage.stale_multipart_uploads). On a folder: none, the list is empty."""
    if (store := _object_store()) is None:
        return []
    return [upload for prefix in MULTIPART_PREFIXES for upload in store.stale_multipart_uploads(before, prefix)]


def abort_multipart_upload(key: str, upload_id: str) -> bool:
    """Abort a multipart upload of :func:`stale_multipart_uploads` (the store removes its parts); False when the
    store no longer knows it (completed or aborted meanwhile)."""
    return _object_store().abort_multipart_upload(key, upload_id)
