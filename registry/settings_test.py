"""Settings for the test suite: the normal settings with a fast password hasher."""

from registry.settings import *  # noqa: F403
from registry.settings import STATIC_ROOT, SWR_BLOB_STORAGE, VAR_DIR
from registry.settings import STORAGES as BASE_STORAGES

STATIC_ROOT.mkdir(parents=True, exist_ok=True)

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    # The tests' blobs, apart from a development server's under var/blobs (on an object store: its bucket;
    # the tests that run on both storages switch with tests/conftest.py's blob_storage fixture).
    "blobs": BASE_STORAGES["blobs"]
    if SWR_BLOB_STORAGE == "s3"
    else {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "test-blobs")},
    },
}
