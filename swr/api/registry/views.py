"""The registry's routes (OCI distribution-spec v1.1, spec section 9): plain Django views, bodies streamed.

Each view authorizes the caller for the repository and the actions it needs (swr/api/registry/auth.py),
reads through swr/distribution/selectors.py and writes through swr/distribution/services.py. Errors
leave in the OCI body (swr/api/registry/errors.py). Blob bodies are never read whole: an upload is
streamed from the request into the blob storage, a download from the storage into the answer; while the
bytes flow, the view holds no database connection.
"""

import contextlib
import io
import logging
import re
import uuid
from functools import wraps

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils.http import urlencode
from django.views.decorators.csrf import csrf_exempt

from swr.api.registry import auth
from swr.api.registry.errors import oci_error_response, to_oci_error
from swr.distribution import digests, selectors, services, storage
from swr.distribution.errors import (
    BlobUnknown,
    DigestInvalid,
    ManifestInvalid,
    NameUnknown,
    OciError,
    RangeInvalid,
    SizeInvalid,
    Unauthorized,
    Unavailable,
    Unsupported,
)
from swr.middleware import is_chunked
from swr.models import TAG_PATTERN

logger = logging.getLogger("swr.api")
API_VERSION_HEADER = ("Docker-Distribution-API-Version", "registry/2.0")
_TAG = re.compile(TAG_PATTERN)
# At most 19 digits: a byte position fits 64 bits (and int() of thousands of digits is refused).
_CONTENT_RANGE = re.compile(r"\A(?:bytes[ =])?(\d{1,19})-(\d{1,19})\Z")
_RANGE = re.compile(r"\A(\d*)-(\d*)\Z")  # one byte range (RFC 9110 section 14.1.2), after "bytes="
PAGE_MAX = 10000
MAX_POSITION = 2**63 - 1  # the last byte position a Content-Range may name: a signed 64-bit integer in SQL
# A blob body is taken from the server (gunicorn) in reads of this size and handed on in the storage's pieces.
# gunicorn's reader receives up to 1 MiB per recv() and copies what it holds beyond a read again on every read:
# the smaller the reads, the more copies. Server CPU per 200 MB layer (bench/pushpull.py's push, on this 2-core
# machine, noisy): 128 KiB reads through a BufferedReader 650-1000 ms; 256 KiB reads through _BodyStream
# 370-565 ms; 512 KiB and 1 MiB reads a little less, but a worker's peak during a 1 GiB push then reached 98.7
# and 104 MiB (bench/upload_memory.py; at 256 KiB: 94.7-95.7 MiB, +0.6 to +4.7 MiB over its resident size).
BODY_READ = 256 * 1024
# A blob GET is read from the storage and handed to the server in pieces of this size. A 200 MB blob fetched with
# curl through one gevent worker on the benchmark's machine: 0.12-0.18 s in 64 KiB pieces (the storage's PIECE),
# 0.09-0.12 s in 256 KiB pieces; what a pull holds in memory grows by the same 192 KiB.
SEND_PIECE = 256 * 1024


class _BodyStream:
    """A request body (Django's request, or gunicorn's de-chunked ``wsgi.input``) as a readable stream: the
    server is asked for BODY_READ bytes at a time, whatever size the consumer reads; ``read(n)`` answers n bytes
    unless the body ends first; SIZE_INVALID when it ends before ``length`` (its Content-Length). Holds one
    BODY_READ piece at a time; never the body whole."""

    def __init__(self, source, head: bytes = b"", length: int | None = None):
        self.source = source
        self.data = head  # bytes read from ``source`` and not handed out yet, from ``offset`` on
        self.offset = 0
        self.length = length  # the Content-Length, None for a chunked body
        self.received = len(head)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(BODY_READ), b""))
        pieces = []
        while size > 0:
            if self.offset >= len(self.data):
                self.data, self.offset = _read_body(self.source, BODY_READ), 0
                self.received += len(self.data)
                if not self.data:
                    if self.length is not None and self.received < self.length:
                        raise SizeInvalid(_ended_early(self.received, self.length))
                    break
            piece = self.data[self.offset : self.offset + size]
            self.offset += len(piece)
            size -= len(piece)
            pieces.append(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _read_body(source, size: int) -> bytes:
    """Up to ``size`` bytes of the request body from ``source`` (the server's stream of it). SIZE_INVALID (400)
    when the connection broke off in the middle or the client framed it wrongly (a malformed chunk): the server's
    reader raises its own exceptions for these (gunicorn's NoMoreData, InvalidChunkSize...; Django's
    UnreadablePostError), and a read of the client's bytes does nothing else that could fail."""
    try:
        return source.read(size)
    except Exception as error:  # noqa: BLE001 (whatever the server's reader raises is about the client's bytes)
        raise SizeInvalid(f"The request body could not be read whole: {error or type(error).__name__}.") from None


def _ended_early(received: int, length: int) -> str:
    """SIZE_INVALID's message for a body that ended before its Content-Length (the client closed its side)."""
    return f"The request body ended after {received} of its {length} bytes (Content-Length): send it whole."


def registry_view(methods: tuple[str, ...]):
    """A registry route answering ``methods``: CSRF-exempt (no cookies here), OCI errors, the API version header."""

    def decorate(view):
        @csrf_exempt
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                error = Unsupported(f"Method {request.method} is not allowed here: use {', '.join(methods)}.")
                response = oci_error_response(error, request)
                response["Allow"] = ", ".join(methods)
            else:
                try:
                    response = view(request, *args, **kwargs)
                except Exception as exc:  # every failure answers in the OCI body (spec section 9)
                    error = to_oci_error(exc)
                    if error is None:
                        logger.exception("Unhandled error on %s %s", request.method, request.path, exc_info=exc)
                        error = Unavailable("Internal error. The details are in the server log.")
                    response = oci_error_response(error, request)
            response[API_VERSION_HEADER[0]] = API_VERSION_HEADER[1]
            return response

        return wrapper

    return decorate


def _release_connection() -> None:
    """Give the request's database connection back (to the pool) before bytes flow for a long time."""
    if not connection.in_atomic_block:
        connection.close()


def _body(request) -> tuple[object, int | None]:
    """The request body as a stream, and its length (None: chunked and longer than SWR_MAX_BODY_BYTES, read
    until it ends).

    A body of at most SWR_MAX_BODY_BYTES (a small layer's PATCH, which skopeo and docker send chunked; a chunk)
    is read whole here, as ReadBodyFirstMiddleware reads the management API's: a view that calls this before it
    first reads the database then keeps its connection (:func:`_release_while_streaming`). Larger bodies are
    streamed, a chunked one after the part read to find out. A connection that the authentication took (Basic
    credentials are checked in the database) is given back before the client's bytes are waited for. A body
    that ends before its Content-Length (the client closed its side) is SIZE_INVALID (400): here, before the
    view's lookups (Basic credentials were checked already), when it is small; when a streamed one ends."""
    limit = settings.SWR_MAX_BODY_BYTES
    raw = request.META.get("CONTENT_LENGTH") or ""
    if raw:
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
            raise SizeInvalid(f"Invalid Content-Length {raw[:50]!r}.")
        length = int(raw)
        if length > limit:
            return _BodyStream(request, length=length), length
        _release_connection()
        body = _read_body(request, length)
        if len(body) < length:
            raise SizeInvalid(_ended_early(len(body), length))
        return io.BytesIO(body), length
    if is_chunked(request.META):
        _release_connection()
        source = request.META["wsgi.input"]
        head = bytearray()
        while len(head) <= limit and (piece := _read_body(source, min(BODY_READ, limit + 1 - len(head)))):
            head += piece
        if len(head) <= limit:
            return io.BytesIO(head), len(head)
        return _BodyStream(source, bytes(head)), None
    return request, 0


def _release_while_streaming(stream) -> None:
    """Before ``stream`` (of :func:`_body`) is stored: give the database connection back unless the body was
    read whole already (a slow client then holds no connection; a small body costs no second checkout)."""
    if not isinstance(stream, io.BytesIO):
        _release_connection()


def _repository(request, name: str, actions: set[str]):
    """(caller, repository) for ``actions`` on ``name``; NAME_UNKNOWN when it does not exist (and the caller may
    know it)."""
    caller = auth.authorize(request, name, actions)
    repository = selectors.repository(name)
    if repository is None:
        raise NameUnknown(f"Repository {name} is unknown to the registry.")
    return caller, repository


def _upload_location(name: str, upload) -> str:
    return f"/v2/{name}/blobs/uploads/{upload.id}"


def _upload_answer(name: str, upload, status: int = 202) -> HttpResponse:
    response = HttpResponse(status=status)
    response["Location"] = _upload_location(name, upload)
    response["Range"] = f"0-{max(upload.size - 1, 0)}"
    response["Docker-Upload-UUID"] = str(upload.id)
    response["Content-Length"] = "0"
    return response


def _blob_created(name: str, digest: str) -> HttpResponse:
    response = HttpResponse(status=201)
    response["Location"] = f"/v2/{name}/blobs/{digest}"
    response["Docker-Content-Digest"] = digest
    response["Content-Length"] = "0"
    return response


def _page_size(request) -> int | None:
    raw = request.GET.get("n")
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        raise OciError(f"Invalid n {raw[:50]!r}: a number of entries.", status_code=400)
    return min(int(raw), PAGE_MAX)


def _page_link(request, path: str, n: int | None, last: str | None) -> str | None:
    if n is None or last is None:
        return None
    return f'<{path}?{urlencode({"n": n, "last": last})}>; rel="next"'


@registry_view(("GET", "HEAD"))
def version_check(request):
    """``GET /v2/``: 200 to a caller with valid credentials, else 401 with the challenge."""
    auth.authenticate(request, required=True)
    return JsonResponse({})


@registry_view(("GET", "HEAD"))
def catalog(request):
    """``GET /v2/_catalog?n=&last=``: the repositories the caller may pull, in lexical order."""
    caller = auth.authorize_catalog(request)
    n, last = _page_size(request), request.GET.get("last") or None
    names = selectors.catalog(caller.user, n, last)
    response = JsonResponse({"repositories": names})
    if n is not None and len(names) == n and names:
        response["Link"] = _page_link(request, "/v2/_catalog", n, names[-1])
    return response


@registry_view(("GET", "HEAD", "PUT", "DELETE"))
def manifest(request, name: str, reference: str):
    if request.method in ("GET", "HEAD"):
        _, repository = _repository(request, name, {"pull"})
        found = selectors.manifest(repository, reference)
        if request.method == "GET":
            services.count_download(repository)
        response = HttpResponse(bytes(found.content) if request.method == "GET" else b"", content_type=found.media_type)
        response["Content-Length"] = str(found.size)
        response["Docker-Content-Digest"] = found.digest
        return response
    if request.method == "DELETE":
        caller, repository = _repository(request, name, {"delete"})
        services.manifest_delete(repository, reference, caller.actor)
        return HttpResponse(status=202)
    return _manifest_put(request, name, reference)


def _manifest_put(request, name: str, reference: str) -> HttpResponse:
    caller = auth.authorize(request, name, {"pull", "push"})
    tags = [] if ":" in reference else [reference]
    tags += [t for t in request.GET.getlist("tag") if t not in tags]
    for tag in tags:
        if not _TAG.match(tag):
            raise ManifestInvalid(f"Invalid tag {tag[:200]!r}: a tag is [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}.")
    stream, length = _body(request)
    limit = settings.SWR_MAX_MANIFEST_BYTES
    if length is not None and length > limit:
        raise ManifestInvalid(f"The manifest is {length} bytes; the limit is {limit}.", status_code=413)
    content = stream.read(limit + 1) if length is None else stream.read(length)
    repository = _repository_for_push(caller, name)
    pushed = services.manifest_put(
        repository, reference, content, request.META.get("CONTENT_TYPE", ""), caller.actor, tags
    )
    response = HttpResponse(status=201)
    response["Location"] = f"/v2/{name}/manifests/{pushed.digest}"
    response["Docker-Content-Digest"] = pushed.digest
    response["Content-Length"] = "0"
    if ":" in reference and tags:
        response["OCI-Tag"] = ", ".join(tags)  # the tags of ?tag= (distribution-spec "Pushing Manifests")
    if pushed.subject:
        response["OCI-Subject"] = pushed.subject
    return response


def _repository_for_push(caller, name: str):
    repository = selectors.repository(name)  # the usual case, one query: it exists
    if repository is not None:
        return repository
    namespace_name, repository_name = selectors.split_name(name)
    namespace = selectors.namespace(namespace_name)
    if namespace is None:
        raise NameUnknown(f"Organization {namespace_name!r} is unknown: create it with the management API first.")
    return services.repository_for_push(namespace, repository_name, caller.actor)


@registry_view(("GET", "HEAD", "DELETE"))
def blob(request, name: str, digest: str):
    if request.method == "DELETE":
        caller, repository = _repository(request, name, {"delete"})
        services.blob_delete(repository, digest, caller.actor)
        return HttpResponse(status=202)
    auth.authorize(request, name, {"pull"})  # the permission check, before any answer
    if not digests.is_valid(digest):
        _repository(request, name, {"pull"})  # NAME_UNKNOWN first, as for every route of a repository
    digest = digests.parse(digest)
    # Every layer of a push begins with two HEADs, mostly of a blob no repository holds: on a folder that lacks
    # its bytes the answer is a 404 without the database. Otherwise one query on the link (every layer of a
    # pull is a GET). A HEAD answer has no body, so a missing repository and a missing blob are the same 404
    # to the client; a GET's precise error (NAME_UNKNOWN or BLOB_UNKNOWN) costs a second query, when it fails.
    if request.method == "HEAD" and storage.surely_absent(digest):
        raise BlobUnknown(f"Blob {digest} is unknown to repository {name}.")
    size = selectors.linked_blob_size(name, digest)
    if size is None:
        if request.method != "HEAD":
            _repository(request, name, {"pull"})  # NAME_UNKNOWN
        raise BlobUnknown(f"Blob {digest} is unknown to repository {name}.")
    if request.method == "HEAD":  # from the database alone
        response = HttpResponse(status=200)
        response["Content-Length"] = str(size)
    elif settings.SWR_BLOB_REDIRECT:
        # The object store serves the bytes: a signed URL valid SWR_BLOB_REDIRECT_SECONDS (a Range header goes
        # along with the client's request to it).
        response = HttpResponse(status=307)
        response["Location"] = storage.signed_url(digest)
        response["Content-Length"] = "0"
    else:
        start, end, status = 0, size - 1, 200
        header = request.META.get("HTTP_RANGE")
        if header and (wanted := _range(header, size)) is not None:
            (start, end), status = wanted, 206
        try:
            stream = storage.open_blob(digest, start, end) if size else None
        except FileNotFoundError:
            raise BlobUnknown(f"Blob {digest} is unknown to repository {name}.") from None
        _release_connection()
        response = StreamingHttpResponse(_read_range(stream, end - start + 1), status=status)
        response["Content-Length"] = str(max(end - start + 1, 0))
        if status == 206:
            response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Type"] = "application/octet-stream"
    response["Docker-Content-Digest"] = digest
    response["Accept-Ranges"] = "bytes"
    return response


def _range(header: str, size: int) -> tuple[int, int] | None:
    """The first and last byte that a ``Range`` header asks for within a blob of ``size`` bytes (RFC 9110
    section 14), or None to answer with the whole blob (200), as a server may: the header names another unit
    than ``bytes`` (which must be ignored), lists several ranges (this registry serves one), or the blob is
    empty. RANGE_INVALID (416, with ``Content-Range: bytes */<size>``) when its one range is malformed, invalid
    (``bytes=500-0``: the OCI conformance suite expects 416, RFC 9110 section 14.2 lets a server reject it) or
    lies outside the blob."""
    unit, _, ranges = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in ranges or size == 0:
        return None
    match = _RANGE.match(ranges.strip())
    if match is None or match.groups() == ("", ""):
        raise RangeInvalid(f"Invalid Range {header[:100]!r}: send one range, bytes=<start>-<end>.", size=size)
    first, last = (_position(digits) if digits else None for digits in match.groups())
    if first is None:  # a suffix: the last ``last`` bytes, all of them when the blob is shorter
        if last == 0:
            raise RangeInvalid(f"Range {header[:100]!r} asks for no bytes.", size=size)
        return max(size - last, 0), size - 1
    if last is not None and last < first:
        raise RangeInvalid(f"Invalid Range {header[:100]!r}: its end comes before its start.", size=size)
    if first >= size:
        raise RangeInvalid(f"Range {header[:100]!r} is outside the blob's {size} bytes.", size=size)
    return first, size - 1 if last is None else min(last, size - 1)


def _position(digits: str) -> int:
    """A byte position of a Range header; more than 19 digits is beyond any blob (int() refuses over 4300)."""
    return int(digits) if len(digits) <= 19 else 10**19


def _read_range(stream, left: int):
    """The next ``left`` bytes of ``stream`` (None: none), in pieces; closes it."""
    if stream is None:
        return
    with contextlib.closing(stream):
        while left > 0:
            data = stream.read(min(SEND_PIECE, left))
            if not data:
                return
            left -= len(data)
            yield data


@registry_view(("POST",))
def upload_start(request, name: str):
    """``POST /v2/<name>/blobs/uploads/``: start an upload; with ``digest``, the whole blob in this request;
    with ``mount`` and ``from``, link a blob of another repository the caller may pull."""
    caller = auth.authorize(request, name, {"pull", "push"})
    stream, length = _body(request)  # a small body before the database: no connection held while it comes
    if "mount" not in request.GET and "digest" not in request.GET:  # a session for PATCH and PUT: one statement
        namespace_name, repository_name = selectors.split_name(name)
        if (started := services.upload_start_by_name(namespace_name, repository_name)) is not None:
            return _upload_answer(name, started)
    repository = _repository_for_push(caller, name)  # the repository is created, or the push refused
    mount, source_name = request.GET.get("mount"), request.GET.get("from")
    if mount:
        digest = digests.parse(mount)
        source = _mount_source(caller, name, source_name)
        if source is not None and services.blob_mount(repository, digest, source) is not None:
            return _blob_created(name, digest)
        # Not mountable (unknown, or not the caller's to read): an ordinary upload, as the spec says.
    digest = request.GET.get("digest")
    if digest is None:  # a session for PATCH and PUT to come (a body sent along is not read)
        return _upload_answer(name, services.upload_start(repository))
    digest = digests.parse(digest)
    upload = services.upload_start(repository)
    _release_while_streaming(stream)
    upload = services.upload_append(upload, stream, length)
    services.upload_finish(upload, digest, repository)
    return _blob_created(name, digest)


def _mount_source(caller, name: str, source_name: str | None):
    """The repository a blob may be mounted from: one the caller may pull; None otherwise (never told why).

    A bearer token that was not asked about ``source_name`` answers 401 with a challenge for both
    repositories (as CNCF distribution does): the client gets a token that says, and asks again.
    """
    if not source_name:
        return None
    try:
        source = selectors.repository(source_name)
    except OciError:
        return None
    if not caller.was_asked(source_name, "pull"):
        raise Unauthorized(
            "The token does not say whether you may pull the repository to mount from.",
            scope=f"repository:{name}:pull,push repository:{source_name}:pull",
        )
    return source if source is not None and caller.may(source_name, "pull") else None


@registry_view(("GET", "PATCH", "PUT", "DELETE"))
def upload(request, name: str, upload_id: str):
    auth.authorize(request, name, {"pull", "push"})
    if request.method in ("PATCH", "PUT"):
        stream, length = _body(request)  # a small body before the database: no connection held while it comes
    if request.method == "PATCH" and isinstance(stream, io.BytesIO) and length:
        appended = _append_small(request, name, upload_id, stream, length)
        if appended is not None:
            return _upload_answer(name, appended)
        stream.seek(0)  # not appended: the path below says why, or appends it
    if request.method == "PUT" and length == 0 and (finished := _finish_by_name(request, name, upload_id)):
        return _blob_created(name, finished)
    session = selectors.upload(name, upload_id)  # the session with its repository: one query
    if session is None:  # the precise answer: NAME_UNKNOWN, or BLOB_UPLOAD_UNKNOWN
        _, repository = _repository(request, name, {"pull", "push"})
        session = services.upload_get(repository, upload_id)
    repository = session.repository
    session = services.upload_live(session)
    if request.method == "GET":
        response = _upload_answer(name, session, status=204)
        return response
    if request.method == "DELETE":
        services.upload_cancel(session)
        return HttpResponse(status=204)
    start, end = _content_range(request, length)
    if request.method == "PATCH":
        _release_while_streaming(stream)
        session = services.upload_append(session, stream, length, start, end)
        return _upload_answer(name, session)
    digest = request.GET.get("digest")
    if not digest:
        raise DigestInvalid("Finish the upload with ?digest=<digest of the whole blob>.")
    digest = digests.parse(digest)
    if length is None or length > 0:  # the last chunk, with Content-Length or chunked
        _release_while_streaming(stream)
        session = services.upload_append(session, stream, length, start, end)
    services.upload_finish(session, digest, repository)
    return _blob_created(name, digest)


def _content_range(request, length: int | None) -> tuple[int | None, int | None]:
    """The first and last byte of a chunk by its Content-Range (``<start>-<end>``; distribution-spec "Pushing a
    blob in chunks"), (None, None) without one; RANGE_INVALID (416) when it is malformed or does not match the
    body's ``length`` (None: chunked, not known yet)."""
    content_range = request.META.get("HTTP_CONTENT_RANGE")
    if not content_range:
        return None, None
    match = _CONTENT_RANGE.match(content_range.strip())
    if not match:
        raise RangeInvalid(f"Invalid Content-Range {content_range[:100]!r}: send <start>-<end>.")
    start, end = int(match.group(1)), int(match.group(2))
    if end > MAX_POSITION:  # beyond any blob, and beyond the database's 64-bit integers
        raise RangeInvalid(f"Content-Range {content_range[:100]!r} lies beyond any blob (at most {MAX_POSITION}).")
    if end < start or (length is not None and end - start + 1 != length):
        raise RangeInvalid(f"Content-Range {content_range[:100]!r} does not match the body's length.")
    return start, end


def _append_small(request, name: str, upload_id: str, stream: io.BytesIO, length: int):
    """A PATCH whose chunk was read whole (a layer of skopeo's or docker's push), appended in one statement
    (services.upload_append_small); None when that did not append it, and the view's usual path answers: an
    invalid name, upload id or Content-Range, an unknown, expired or another repository's session, a chunk
    that does not start where the session ends."""
    try:
        start, _ = _content_range(request, length)
    except OciError:
        return None
    found = _session_names(name, upload_id)
    return found and services.upload_append_small(*found, stream.getvalue(), start)


def _finish_by_name(request, name: str, upload_id: str) -> str | None:
    """A final PUT without a body (the end of skopeo's and docker's layer push) finished in the statement that
    finds and marks the session (services.upload_finish_by_name): the blob's digest; None when it was not, and
    the view's usual path answers (an invalid name, upload id or digest, a Content-Range, an unknown, expired or
    another repository's session). A digest that the bytes do not have is DIGEST_INVALID here as there."""
    if request.META.get("HTTP_CONTENT_RANGE"):
        return None
    try:
        digest = digests.parse(request.GET.get("digest") or "")
    except OciError:
        return None
    found = _session_names(name, upload_id)
    return digest if found and services.upload_finish_by_name(*found, digest) else None


def _session_names(name: str, upload_id: str) -> tuple[str, str, uuid.UUID] | None:
    """(namespace name, repository name, upload key) of an upload URL for the statements that find a session by
    them; None when the name or the id is invalid (the view's usual path says which)."""
    try:
        return (*selectors.split_name(name), uuid.UUID(upload_id))
    except (OciError, ValueError):
        return None


@registry_view(("GET", "HEAD"))
def tags_list(request, name: str):
    _, repository = _repository(request, name, {"pull"})
    n, last = _page_size(request), request.GET.get("last") or None
    names = selectors.tags(repository, n, last)
    response = JsonResponse({"name": name, "tags": names})
    if n is not None and names and len(names) == n:
        response["Link"] = _page_link(request, f"/v2/{name}/tags/list", n, names[-1])
    return response


@registry_view(("GET", "HEAD"))
def referrers(request, name: str, digest: str):
    """``GET /v2/<name>/referrers/<digest>``: an index of the manifests whose subject is ``digest``; an empty
    one when there are none, in a repository not pushed to yet too (distribution-spec "Listing Referrers")."""
    auth.authorize(request, name, {"pull"})
    repository = selectors.repository(name)
    digest = digests.parse(digest)
    artifact_type = request.GET.get("artifactType") or None
    response = JsonResponse(selectors.referrers(repository, digest, artifact_type))
    response["Content-Type"] = "application/vnd.oci.image.index.v1+json"
    if artifact_type:
        response["OCI-Filters-Applied"] = "artifactType"
    return response
