"""Blobs on an S3-compatible object store: django-storages' S3Storage with one boto3 client per process.

Imported only when STORAGES["blobs"] names :class:`S3BlobStorage` (SWR_BLOB_STORAGE=s3, registry/settings.py
``blob_settings``), so that boto3 is loaded only where it is used.

django-storages keeps its boto3 resource in a ``threading.local``; under gunicorn's gevent workers every
greenlet is a thread of its own for ``threading.local``, so each request would build a new boto3 session
and client (tens of milliseconds and megabytes each). boto3's clients are safe to share between threads
(and so between greenlets): here one resource, and its client, serves every request of a process. A
process started by fork (gunicorn's workers) makes its own.
"""

import contextlib
import functools
import os
import threading
from collections.abc import Iterator

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as StoreConnectionError
from storages.backends.s3 import S3Storage

from swr.distribution.errors import BlobUploadUnknown, Unavailable

PIECE = 64 * 1024  # bytes read at a time from a stream (swr/distribution/storage.py PIECE)
MIN_PART_BYTES = 5 * 1024 * 1024  # S3's least part of a multipart upload, the last one excepted
PART_BYTES = 8 * 1024 * 1024  # parts of a streamed upload: 10,000 parts (S3's most) make blobs up to 80 GiB
MAX_COPY_PART_BYTES = 5 * 1024 * 1024 * 1024  # S3's largest CopyObject, and largest part
CONTENT_TYPE = "application/octet-stream"  # what a signed URL's GET answers with
LINK = "swr-bytes-at"  # user metadata of a link (:meth:`S3BlobStorage.link`): the key that holds its bytes


def answering(method):
    """Let a failure of the store itself (unreachable, timed out, or a 5xx answer, once boto3's retries are spent)
    end the request as 503, which clients retry, instead of a 500 of the registry."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except (StoreConnectionError, HTTPClientError) as error:
            raise Unavailable(f"The blob store is not reachable: {error}", status_code=503) from error
        except ClientError as error:
            if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) < 500:
                raise
            raise Unavailable(f"The blob store failed: {error}", status_code=503) from error

    return wrapper


def _abort(client, bucket: str, key: str, upload_id: str) -> None:
    """Abort a multipart upload that failed (the store removes its parts). One the store no longer knows was
    aborted already (NoSuchUpload), and its failure is the one to answer, not this."""
    with contextlib.suppress(client.exceptions.NoSuchUpload):
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)


def _upload_gone(error: ClientError) -> BlobUploadUnknown | None:
    """BLOB_UPLOAD_UNKNOWN (404) when the store ended a multipart upload while it was sent (NoSuchUpload): the
    garbage collector aborts those of upload sessions that ended meanwhile (cancelled or expired; swr_gc step 4),
    so the push must start a new upload. None for any other error."""
    if error.response.get("Error", {}).get("Code") != "NoSuchUpload":
        return None
    return BlobUploadUnknown(
        "The blob store no longer holds this upload's parts: its session ended while they were sent (cancelled or "
        "expired, then collected). Start a new upload."
    )


class S3BlobStorage(S3Storage):
    """S3Storage whose boto3 resource is made once per process (see the module docstring)."""

    is_object_store = True  # swr/distribution/storage.py takes the object store's own paths for this backend

    def __init__(self, **settings):
        super().__init__(**settings)
        self._shared_lock = threading.Lock()
        self._shared = None  # (process id, resource)
        self._signers = None  # (process id, {endpoint URL: client})

    @property
    def connection(self):
        shared = self._shared
        if shared is None or shared[0] != os.getpid():
            with self._shared_lock:
                shared = self._shared
                if shared is None or shared[0] != os.getpid():
                    resource = self._create_session().resource(
                        "s3",
                        region_name=self.region_name,
                        use_ssl=self.use_ssl,
                        endpoint_url=self.endpoint_url,
                        config=self.client_config,
                        verify=self.verify,
                    )
                    shared = self._shared = (os.getpid(), resource)
        return shared[1]

    @property
    def client(self):
        """The process's boto3 S3 client."""
        return self.connection.meta.client

    @answering
    def exists(self, name):
        return super().exists(name)

    # The object store's own paths of swr/distribution/storage.py: streamed, multipart, server-side.

    @answering
    def put_stream(self, key: str, reader) -> None:
        """Store the bytes of ``reader`` (its ``read(n)``) under ``key``, holding at most one part in memory.

        Less than PART_BYTES: one PUT. More: a multipart upload of PART_BYTES parts, aborted (its parts removed
        by the store) when reading or sending fails, so that nothing is left behind.
        """
        client, bucket = self.client, self.bucket_name
        buffer = bytearray()
        _fill(buffer, reader, PART_BYTES)
        if len(buffer) < PART_BYTES:
            client.put_object(Bucket=bucket, Key=key, Body=buffer, ContentType=CONTENT_TYPE)
            return
        upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, ContentType=CONTENT_TYPE)["UploadId"]
        try:
            parts = []
            while buffer:
                number = len(parts) + 1
                answer = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=buffer)
                parts.append({"ETag": answer["ETag"], "PartNumber": number})
                buffer.clear()
                _fill(buffer, reader, PART_BYTES)
            client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except ClientError as error:
            _abort(client, bucket, key, upload_id)
            if (gone := _upload_gone(error)) is not None:
                raise gone from error
            raise
        except BaseException:
            _abort(client, bucket, key, upload_id)
            raise

    @answering
    def link(self, source: str, target: str) -> None:
        """Give the bytes at ``source`` the key ``target`` too, without copying them (S3 has no rename): an empty
        object at ``target`` whose metadata names ``source``. :meth:`resolve` follows it; so do :meth:`compose`
        and storage.py's reads and deletes of an upload's parts, the only keys that are linked."""
        self.client.put_object(
            Bucket=self.bucket_name, Key=target, Body=b"", Metadata={LINK: source}, ContentType=CONTENT_TYPE
        )

    @answering
    def resolve(self, keys: list[str], *, missing_ok: bool = False) -> list[tuple[str, str, int]]:
        """For each key: (the key, the key that holds its bytes, their size), following links (one HEAD each,
        two for a link). FileNotFoundError for a missing key, or with ``missing_ok`` leave it out."""
        resolved = []
        for key in keys:
            try:
                head = self.client.head_object(Bucket=self.bucket_name, Key=key)
                source = head.get("Metadata", {}).get(LINK)
                if source is not None:
                    head = self.client.head_object(Bucket=self.bucket_name, Key=source)
            except self.client.exceptions.ClientError as error:
                if error.response["ResponseMetadata"]["HTTPStatusCode"] != 404:
                    raise
                if missing_ok:
                    continue
                raise FileNotFoundError(key) from None
            resolved.append((key, source or key, head["ContentLength"]))
        return resolved

    @answering
    def compose(self, keys: list[str], target: str) -> None:
        """Make ``target`` the bytes of ``keys`` (links followed) one after the other, inside the store where it can.

        One object up to 5 GiB: one CopyObject. Otherwise a multipart upload whose parts are server-side
        copies (UploadPartCopy) of the objects, or of ranges of them, of at least MIN_PART_BYTES; only what
        is smaller (small chunks of a chunked upload, and the ends of objects) passes through this process,
        gathered in a buffer of less than 2 x MIN_PART_BYTES into parts of at least MIN_PART_BYTES.
        """
        client, bucket = self.client, self.bucket_name
        resolved = self.resolve(keys)
        keys = [source for _, source, _ in resolved]
        sizes = [size for _, _, size in resolved]
        if len(keys) == 1 and sizes[0] <= MAX_COPY_PART_BYTES:
            client.copy_object(Bucket=bucket, Key=target, CopySource={"Bucket": bucket, "Key": keys[0]})
            return
        if sum(sizes) < MIN_PART_BYTES:
            buffer = bytearray()
            for key in keys:
                self._read_into(buffer, key, 0, None)
            client.put_object(Bucket=bucket, Key=target, Body=buffer, ContentType=CONTENT_TYPE)
            return
        upload_id = client.create_multipart_upload(Bucket=bucket, Key=target, ContentType=CONTENT_TYPE)["UploadId"]
        parts: list[dict] = []
        buffer = bytearray()

        def send(**body) -> None:
            number = len(parts) + 1
            common = {"Bucket": bucket, "Key": target, "UploadId": upload_id, "PartNumber": number}
            if "Body" in body:
                etag = client.upload_part(**common, **body)["ETag"]
            else:
                etag = client.upload_part_copy(**common, **body)["CopyPartResult"]["ETag"]
            parts.append({"ETag": etag, "PartNumber": number})

        try:
            for index, (key, size) in enumerate(zip(keys, sizes, strict=True)):
                last = index == len(keys) - 1
                offset = 0
                if buffer:  # a small part is pending: complete it from the head of this object
                    offset = min(MIN_PART_BYTES - len(buffer), size)
                    if offset:
                        self._read_into(buffer, key, 0, offset - 1)
                    if len(buffer) >= MIN_PART_BYTES:
                        send(Body=buffer)
                        buffer.clear()
                while size - offset >= MIN_PART_BYTES or (last and size > offset and not buffer):
                    end = min(size, offset + MAX_COPY_PART_BYTES) - 1
                    source = {"Bucket": bucket, "Key": key}
                    send(CopySource=source, CopySourceRange=f"bytes={offset}-{end}")
                    offset = end + 1
                if size > offset:  # an end smaller than a part: gathered with what follows
                    self._read_into(buffer, key, offset, size - 1)
                    if len(buffer) >= MIN_PART_BYTES:
                        send(Body=buffer)
                        buffer.clear()
            if buffer:  # the last part may be smaller
                send(Body=buffer)
            client.complete_multipart_upload(
                Bucket=bucket, Key=target, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except ClientError as error:
            _abort(client, bucket, target, upload_id)
            if (gone := _upload_gone(error)) is not None:
                raise gone from error
            raise
        except BaseException:
            _abort(client, bucket, target, upload_id)
            raise

    @answering
    def open_range(self, key: str, start: int = 0, end: int | None = None):
        """The bytes ``start`` to ``end`` (inclusive; None: to the end) of ``key`` as a stream (``read(n)``,
        ``close()``), read from the store as they are consumed. FileNotFoundError when there is no such key."""
        arguments = {"Bucket": self.bucket_name, "Key": key}
        if start or end is not None:
            arguments["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            return self.client.get_object(**arguments)["Body"]
        except self.client.exceptions.NoSuchKey:
            raise FileNotFoundError(key) from None

    def _read_into(self, buffer: bytearray, key: str, start: int, end: int | None) -> None:
        """Append bytes ``start`` to ``end`` of ``key`` (a part's worth at most) to ``buffer``."""
        with contextlib.closing(self.open_range(key, start, end)) as stream:
            while data := stream.read(PIECE):
                buffer += data

    @answering
    def delete_many(self, keys: list[str]) -> None:
        """Remove ``keys`` (missing ones are no error), a thousand per request (DeleteObjects)."""
        for first in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[first : first + 1000]]
            answer = self.client.delete_objects(Bucket=self.bucket_name, Delete={"Objects": batch, "Quiet": True})
            if answer.get("Errors"):
                raise OSError(f"The object store did not delete {answer['Errors'][:3]}")

    def keys_before(self, prefix: str, before) -> Iterator[tuple[str, int]]:
        """The keys starting with ``prefix`` last modified before ``before`` (an aware datetime), with their sizes
        in bytes, page by page of ListObjectsV2 (a thousand keys each; storage.stored_blob_keys): a bucket of
        millions of blobs is never listed into memory whole."""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket_name, Prefix=prefix):
            for item in page.get("Contents", ()):
                if item["LastModified"] < before:
                    yield item["Key"], item["Size"]

    @answering
    def stale_multipart_uploads(self, before, prefix: str = "") -> list[tuple[str, str]]:
        """The multipart uploads of keys starting with ``prefix`` that were begun before ``before`` (an aware
        datetime) and neither completed nor aborted, as (key, upload id), from every page of ListMultipartUploads.
        Keys are bucket keys as this class's own methods name them, with no ``location`` before them (the
        registry's multipart uploads are begun by :meth:`put_stream` and :meth:`compose`).

        Such an upload is what a worker killed while it stored a part or composed a blob left behind: its parts
        hold bytes of the bucket that no listing of objects shows. Some stores give the time to the second only
        (SeaweedFS), which makes an upload up to a second older than it is."""
        paginator = self.client.get_paginator("list_multipart_uploads")
        return [
            (upload["Key"], upload["UploadId"])
            for page in paginator.paginate(Bucket=self.bucket_name, Prefix=prefix)
            for upload in page.get("Uploads", ())
            if upload["Initiated"] < before
        ]

    @answering
    def abort_multipart_upload(self, key: str, upload_id: str) -> bool:
        """Abort the multipart upload ``upload_id`` of ``key`` (AbortMultipartUpload): the store removes its
        parts. False when the store no longer knows it (NoSuchUpload: completed or aborted meanwhile)."""
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket_name, Key=key, UploadId=upload_id)
        except self.client.exceptions.NoSuchUpload:
            return False
        return True

    def signed_url(self, key: str, seconds: int, endpoint_url: str | None = None) -> str:
        """A URL that GETs ``key`` from the store without credentials for ``seconds`` (SigV4 query signature);
        at ``endpoint_url`` (the store as clients reach it) when given, else at the store's own address."""
        client = self.client if not endpoint_url or endpoint_url == self.endpoint_url else self._signer(endpoint_url)
        return client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket_name, "Key": key}, ExpiresIn=seconds
        )

    def _signer(self, endpoint_url: str):
        """A client of this process that signs URLs for ``endpoint_url`` (it sends no request)."""
        signers = self._signers
        if signers is None or signers[0] != os.getpid():
            signers = self._signers = (os.getpid(), {})
        client = signers[1].get(endpoint_url)
        if client is None:
            client = signers[1][endpoint_url] = self._create_session().client(
                "s3", region_name=self.region_name, endpoint_url=endpoint_url, config=self.client_config
            )
        return client


def _fill(buffer: bytearray, stream, size: int) -> None:
    """Read from ``stream`` into ``buffer`` until it holds ``size`` bytes or the stream ends."""
    while len(buffer) < size:
        data = stream.read(min(PIECE, size - len(buffer)))
        if not data:
            return
        buffer += data
