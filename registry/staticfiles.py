"""Static files storage: hashed, compressed names once ``collectstatic`` has run, the plain names before.

whitenoise's manifest storage names each file by its content hash (cached for
ever by browsers), from the manifest that ``collectstatic`` writes. Without that
manifest, as when ``gunicorn registry.wsgi:application`` is started on a fresh
checkout, every ``{% static %}`` raises ValueError and the admin and Swagger UI
(``/docs/``) answer 500. This storage then gives the plain names, which
whitenoise serves from the apps' own static folders (``WHITENOISE_USE_FINDERS``).
"""

from django.contrib.staticfiles.storage import StaticFilesStorage
from whitenoise.storage import CompressedManifestStaticFilesStorage


class ManifestOrPlainStaticFilesStorage(CompressedManifestStaticFilesStorage):
    """whitenoise's CompressedManifestStaticFilesStorage, with plain URLs while no manifest was collected."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.collected = self.manifest_storage.exists(self.manifest_name)

    def url(self, name, force=False):
        if self.collected:
            return super().url(name, force)
        return StaticFilesStorage.url(self, name)
