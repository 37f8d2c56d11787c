"""A small OCI distribution client for pushing large blobs without holding them: the memory measurements
(bench/upload_memory.py, tests/test_upload_memory.py) push bytes generated on the fly.

It speaks what every registry client speaks (distribution-spec v1.1): the WWW-Authenticate challenge
(Bearer: a token from the realm with HTTP Basic; or Basic itself), POST /v2/<name>/blobs/uploads/, then
either a monolithic PUT of the whole body (with Content-Length) or a streamed PATCH (Transfer-Encoding:
chunked, no Content-Length) closed by an empty PUT. Nothing here imports Django.
"""

import base64
import hashlib
import http.client
import json
import random
import re
import urllib.parse
from collections.abc import Callable, Iterable, Iterator

CHUNK = 1024 * 1024


def generated(size: int, seed: int = 0, chunk: int = CHUNK) -> Iterator[bytes]:
    """``size`` pseudo-random bytes in pieces of ``chunk``: the same bytes for the same seed, none of them stored."""
    rng = random.Random(seed)
    left = size
    while left > 0:
        piece = rng.randbytes(min(chunk, left))
        left -= len(piece)
        yield piece


def digest_of(pieces: Iterable[bytes]) -> str:
    sha = hashlib.sha256()
    for piece in pieces:
        sha.update(piece)
    return f"sha256:{sha.hexdigest()}"


class RegistryError(Exception):
    pass


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    """The scheme and parameters of a WWW-Authenticate header: ('bearer', {'realm': ..., 'service': ...})."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', rest))


class RegistryClient:
    """Requests to one registry as one user, answering its authentication challenge once per repository."""

    def __init__(self, base: str, username: str, password: str, timeout: float = 600):
        parts = urllib.parse.urlsplit(base)
        self.host, self.port = parts.hostname, parts.port or 80
        self.basic = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.timeout = timeout
        self.authorization: dict[str, str] = {}  # repository name -> Authorization header value

    def request(
        self,
        method: str,
        target: str,
        *,
        name: str,
        body: bytes | Callable[[], Iterable[bytes]] | None = None,
        length: int | None = None,
        headers: dict | None = None,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """(status, headers, body) of one request to ``target`` (a path, or the URL a Location gave).

        ``body`` is bytes, or a function that returns the pieces to send: with ``length`` they go with
        that Content-Length, without it as Transfer-Encoding: chunked. A 401 is answered once (Bearer:
        a token for the challenge's scope; Basic: the credentials) and the request sent again, so a
        request with a generated body should come after one that authenticated for ``name``.
        """
        status, answer_headers, answer = self._send(method, target, name, body, length, headers)
        if status == 401 and "WWW-Authenticate" in answer_headers:
            self._authenticate(name, answer_headers["WWW-Authenticate"])
            status, answer_headers, answer = self._send(method, target, name, body, length, headers)
        return status, answer_headers, answer

    def _send(self, method, target, name, body, length, headers):
        parts = urllib.parse.urlsplit(target)
        path = urllib.parse.urlunsplit(("", "", parts.path, parts.query, ""))
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            connection.putrequest(method, path, skip_accept_encoding=True)
            all_headers = dict(headers or {})
            if name in self.authorization:
                all_headers["Authorization"] = self.authorization[name]
            streamed = callable(body) and length is None
            if streamed:
                all_headers["Transfer-Encoding"] = "chunked"
            elif callable(body):
                all_headers["Content-Length"] = str(length)
            else:
                all_headers["Content-Length"] = str(len(body or b""))
            for key, value in all_headers.items():
                connection.putheader(key, value)
            connection.endheaders()
            try:
                if callable(body):
                    for piece in body():
                        connection.send(b"%x\r\n%s\r\n" % (len(piece), piece) if streamed else piece)
                    if streamed:
                        connection.send(b"0\r\n\r\n")
                elif body:
                    connection.send(body)
            except OSError:  # the server answered before the body ended (an error, or a refusal): read its answer
                pass
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()

    def _authenticate(self, name: str, header: str) -> None:
        scheme, params = _challenge(header)
        if scheme == "basic":
            self.authorization[name] = self.basic
            return
        if scheme != "bearer" or "realm" not in params:
            raise RegistryError(f"unknown challenge: {header}")
        query = {key: params[key] for key in ("service", "scope") if key in params}
        realm = urllib.parse.urlsplit(params["realm"])
        target = urllib.parse.urlunsplit(("", "", realm.path, urllib.parse.urlencode(query), ""))
        connection = http.client.HTTPConnection(realm.hostname, realm.port or 80, timeout=self.timeout)
        try:
            connection.request("GET", target, headers={"Authorization": self.basic})
            response = connection.getresponse()
            answer = response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise RegistryError(f"token request answered {response.status}: {answer[:300]!r}")
        token = json.loads(answer)
        self.authorization[name] = "Bearer " + (token.get("token") or token["access_token"])

    def start_upload(self, name: str) -> str:
        """POST /v2/<name>/blobs/uploads/: the upload's Location."""
        status, headers, answer = self.request("POST", f"/v2/{name}/blobs/uploads/", name=name)
        if status != 202 or not headers.get("Location"):
            raise RegistryError(f"POST blobs/uploads/ answered {status}: {answer[:300]!r}")
        return headers["Location"]

    def push_blob(self, name: str, size: int, seed: int, *, streamed: bool) -> str:
        """Push ``size`` generated bytes as one blob: streamed PATCH then PUT, or one monolithic PUT. Its digest."""
        digest = digest_of(generated(size, seed))
        location = self.start_upload(name)
        if streamed:
            status, headers, answer = self.request(
                "PATCH", location, name=name, body=lambda: generated(size, seed),
                headers={"Content-Type": "application/octet-stream"},
            )  # fmt: skip
            if status != 202:
                raise RegistryError(f"streamed PATCH answered {status}: {answer[:300]!r}")
            location, body, length = headers["Location"], b"", None
        else:
            body, length = (lambda: generated(size, seed)), size
        separator = "&" if "?" in location else "?"
        status, headers, answer = self.request(
            "PUT", f"{location}{separator}digest={urllib.parse.quote(digest)}", name=name, body=body, length=length,
            headers={"Content-Type": "application/octet-stream"},
        )  # fmt: skip
        if status != 201:
            raise RegistryError(f"PUT of the upload answered {status}: {answer[:300]!r}")
        return digest

    def blob_size(self, name: str, digest: str) -> int | None:
        """Content-Length of HEAD /v2/<name>/blobs/<digest>, or None when the registry has no such blob."""
        status, headers, _ = self.request("HEAD", f"/v2/{name}/blobs/{digest}", name=name)
        return int(headers["Content-Length"]) if status == 200 else None
