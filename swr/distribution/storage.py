"""The blob store: the registry's bytes, through Django's storage API (STORAGES["blobs"]).

Blobs are stored once per content under ``blobs/<algorithm>/<first two hex digits>/<hex>``;
an upload's parts under ``uploads/<upload id>/<part number>`` until the upload ends. Nothing
here holds a blob in memory whole: bytes move in pieces of ``PIECE`` bytes, hashed as they pass.
The default backend is a folder under ``var/`` (registry/settings.py); any backend of Django's
storage API serves, which is how an object store is plugged in.
"""

import contextlib
import os
from collections.abc import Iterator

from django.core.files.base import ContentFile, File
from django.core.files.storage import FileSystemStorage, storages

from swr.distribution import digests

PIECE = 64 * 1024


def storage():
    return storages["blobs"]


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
                self.current = storage().open(self.keys.pop(0), "rb")
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
    _save_exact(key, reader)
    return reader


def _save_exact(key: str, content: File) -> None:
    """Save under exactly ``key`` (Django's save() picks another name when one exists: a stale part or blob)."""
    store = storage()
    if store.exists(key):
        store.delete(key)
    saved = store.save(key, content)
    if saved != key:  # a concurrent writer of the same key: the content is the same (addressed by digest)
        store.delete(saved)


def rename(source: str, target: str) -> None:
    """Give the bytes at ``source`` the key ``target`` (on a folder, an atomic rename; else a streamed copy)."""
    store = storage()
    if isinstance(store, FileSystemStorage):
        os.replace(store.path(source), store.path(target))
        return
    with store.open(source, "rb") as file:
        _save_exact(target, HashingReader(file, None, ()))
    store.delete(source)


def digest_of_parts(keys: list[str], algorithm: str) -> tuple[str, int]:
    """Read the parts once, in a stream: their digest and total size."""
    reader = HashingReader(PartsReader(keys), None, (algorithm,))
    for _ in reader.chunks():
        pass
    return reader.digest(algorithm), reader.size


def commit_parts(keys: list[str], digest: str) -> None:
    """Make the parts the blob ``digest`` (if the store does not hold it yet), then remove the parts.

    On a folder, a one-part upload is renamed into place (no copy); otherwise the parts are copied in a
    stream into the blob's key.
    """
    store = storage()
    key = blob_key(digest)
    if not store.exists(key):
        if len(keys) == 1 and isinstance(store, FileSystemStorage):
            target = store.path(key)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(store.path(keys[0]), target)
        else:
            _save_exact(key, HashingReader(PartsReader(keys), None, ()))
    delete_parts(keys)


def delete_parts(keys: list[str]) -> None:
    store = storage()
    for key in keys:
        if store.exists(key):
            store.delete(key)
    if keys and isinstance(store, FileSystemStorage):
        folder = os.path.dirname(store.path(keys[0]))
        with contextlib.suppress(OSError):  # not empty: another part is still being written
            os.rmdir(folder)


def store_empty(digest: str) -> None:
    """Store the empty blob (an upload that ended without bytes) under ``digest``."""
    if not exists(digest):
        _save_exact(blob_key(digest), ContentFile(b""))


def exists(digest: str) -> bool:
    return storage().exists(blob_key(digest))


def open_blob(digest: str):
    """The blob's bytes as an open binary file (seekable on a folder)."""
    return storage().open(blob_key(digest), "rb")


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
            if all(store.get_modified_time(key) < before for key in keys):
                found[folder] = keys
        except FileNotFoundError:  # the upload ended meanwhile and removed its parts
            continue
    return found


def delete_upload_parts(upload_id: str, keys: list[str]) -> None:
    """Remove the parts ``keys`` of upload ``upload_id`` and, on a folder, its emptied folder."""
    delete_parts(keys)
    store = storage()
    if isinstance(store, FileSystemStorage):
        with contextlib.suppress(OSError):
            os.rmdir(store.path(f"uploads/{upload_id}"))
