"""Reading a pushed manifest (OCI image-spec manifest.md and image-index.md; Docker image manifest v2 schema 2).

:func:`parse` checks the shape a registry relies on and returns what it stores: the media type,
the blobs the manifest refers to, the manifests an index lists, the subject and the artifact type.
Anything else in the document is kept as pushed (the registry serves the bytes it received).
"""

import json
from dataclasses import dataclass, field

from swr.distribution import digests
from swr.distribution.errors import ManifestInvalid

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGE_MANIFESTS = {OCI_MANIFEST, DOCKER_MANIFEST}
INDEXES = {OCI_INDEX, DOCKER_LIST}
MEDIA_TYPES = IMAGE_MANIFESTS | INDEXES


# Largest size a descriptor may state (image-spec: int64).
MAX_SIZE = 2**63 - 1


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    artifact_type: str = ""
    annotations: dict = field(default_factory=dict)

    @property
    def nondistributable(self) -> bool:
        """A layer that a registry may accept without holding it (image-spec layer.md, "non-distributable")."""
        return ".nondistributable." in self.media_type or ".foreign." in self.media_type


@dataclass(frozen=True)
class Parsed:
    media_type: str
    config: Descriptor | None
    layers: list[Descriptor]
    manifests: list[Descriptor]
    subject: Descriptor | None
    artifact_type: str
    annotations: dict

    @property
    def blobs(self) -> list[Descriptor]:
        """The blobs the manifest needs in the repository: its config and its distributable layers."""
        return [d for d in ([self.config] if self.config else []) + self.layers if not d.nondistributable]

    @property
    def image_size(self) -> int:
        """Bytes of the image: config and layers; for an index, the sum over its manifests' descriptors."""
        if self.media_type in INDEXES:
            return sum(d.size for d in self.manifests)
        return (self.config.size if self.config else 0) + sum(d.size for d in self.layers)


def _descriptor(value, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise ManifestInvalid(f"{where} must be a descriptor object.")
    digest, size, media_type = value.get("digest"), value.get("size"), value.get("mediaType", "")
    if not isinstance(digest, str) or not digests.is_valid(digest):
        raise ManifestInvalid(f"{where} has an invalid digest: {str(digest)[:200]!r}.")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_SIZE:
        raise ManifestInvalid(f"{where} has an invalid size: {str(size)[:50]!r}.")
    if not isinstance(media_type, str):
        raise ManifestInvalid(f"{where} has an invalid mediaType.")
    artifact_type = value.get("artifactType", "")
    annotations = value.get("annotations") or {}
    if not isinstance(artifact_type, str) or not isinstance(annotations, dict):
        raise ManifestInvalid(f"{where} has an invalid artifactType or annotations.")
    return Descriptor(media_type, digest, size, artifact_type, annotations)


def parse(content: bytes, content_type: str | None) -> Parsed:
    """The manifest ``content`` sent with ``content_type``; MANIFEST_INVALID (400) for one that cannot be used."""
    try:
        document = json.loads(content)
    except (ValueError, UnicodeDecodeError) as error:
        raise ManifestInvalid(f"The manifest is not JSON: {error}.") from None
    except RecursionError:
        raise ManifestInvalid("The manifest is nested too deeply to read.") from None
    if not isinstance(document, dict):
        raise ManifestInvalid("The manifest must be a JSON object.")
    declared = document.get("mediaType")
    header = (content_type or "").split(";", 1)[0].strip().lower()
    if declared is not None and not isinstance(declared, str):
        raise ManifestInvalid("mediaType must be a string.")
    if declared and header in MEDIA_TYPES and declared != header:
        raise ManifestInvalid(f"The manifest's mediaType {declared!r} differs from its Content-Type {header!r}.")
    media_type = header if header in MEDIA_TYPES else declared
    if media_type not in MEDIA_TYPES:
        media_type = OCI_INDEX if "manifests" in document else OCI_MANIFEST
    if document.get("schemaVersion") != 2:
        raise ManifestInvalid("schemaVersion must be 2.")
    annotations = document.get("annotations") or {}
    artifact_type = document.get("artifactType", "")
    if not isinstance(annotations, dict) or not isinstance(artifact_type, str):
        raise ManifestInvalid("annotations must be an object and artifactType a string.")
    subject = _descriptor(document["subject"], "subject") if document.get("subject") is not None else None
    if media_type in INDEXES:
        entries = document.get("manifests")
        if not isinstance(entries, list):
            raise ManifestInvalid("An index needs a manifests array.")
        children = [_descriptor(entry, f"manifests[{n}]") for n, entry in enumerate(entries)]
        return Parsed(media_type, None, [], children, subject, artifact_type, annotations)
    if "config" not in document:
        raise ManifestInvalid("An image manifest needs a config descriptor.")
    config = _descriptor(document["config"], "config")
    layers = document.get("layers", [])
    if not isinstance(layers, list):
        raise ManifestInvalid("layers must be an array.")
    descriptors = [_descriptor(entry, f"layers[{n}]") for n, entry in enumerate(layers)]
    return Parsed(media_type, config, descriptors, [], subject, artifact_type or config.media_type, annotations)
