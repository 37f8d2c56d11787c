"""The blob store's settings (registry/settings.py blob_settings; README "Blobs on S3"): the defaults, django-storages'
own AWS_* names, and a wrong value refused when the settings load, not on the first push."""

import hashlib
import io
import os
import stat
import subprocess
import sys
import threading
import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.utils import timezone
from storages.backends.s3 import S3Storage

from registry.settings import blob_settings
from swr.distribution import storage

from .helpers import ROOT

S3 = {"SWR_BLOB_STORAGE": "s3", "AWS_STORAGE_BUCKET_NAME": "swr-blobs"}


def test_the_default_is_a_folder_without_redirects():
    settings = blob_settings({})
    assert settings["SWR_BLOB_STORAGE"] == "filesystem"
    assert settings["SWR_BLOB_REDIRECT"] is False
    assert settings["blobs"]["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    assert blob_settings({"SWR_BLOB_ROOT": "/srv/blobs"})["blobs"]["OPTIONS"] == {"location": "/srv/blobs"}


def test_s3_takes_django_storages_names_and_redirects_by_default():
    settings = blob_settings(
        {
            **S3,
            "AWS_S3_ENDPOINT_URL": "http://127.0.0.1:8333",
            "AWS_ACCESS_KEY_ID": "key",
            "AWS_SECRET_ACCESS_KEY": "secret",
            "AWS_S3_REGION_NAME": "eu-west-1",
            "AWS_S3_ADDRESSING_STYLE": "path",
        }
    )
    assert settings["SWR_BLOB_STORAGE"] == "s3"
    assert settings["SWR_BLOB_REDIRECT"] is True
    assert settings["SWR_BLOB_REDIRECT_SECONDS"] == 300
    assert settings["SWR_BLOB_REDIRECT_ENDPOINT_URL"] is None
    assert settings["blobs"]["BACKEND"] == "swr.distribution.s3.S3BlobStorage"
    options = settings["blobs"]["OPTIONS"]
    assert (options["bucket_name"], options["endpoint_url"]) == ("swr-blobs", "http://127.0.0.1:8333")
    assert (options["access_key"], options["secret_key"], options["region_name"]) == ("key", "secret", "eu-west-1")
    assert options["addressing_style"] == "path"
    assert options["querystring_expire"] == 300


def test_unset_credentials_leave_them_to_boto3():
    options = blob_settings(S3)["blobs"]["OPTIONS"]
    assert options["access_key"] is None
    assert options["secret_key"] is None
    assert options["endpoint_url"] is None


def test_redirects_can_be_turned_off_and_timed():
    settings = blob_settings({**S3, "SWR_BLOB_REDIRECT": "false", "SWR_BLOB_REDIRECT_SECONDS": "60"})
    assert settings["SWR_BLOB_REDIRECT"] is False
    assert settings["SWR_BLOB_REDIRECT_SECONDS"] == 60
    endpoint = blob_settings({**S3, "SWR_BLOB_REDIRECT_ENDPOINT_URL": "https://s3.example.com"})
    assert endpoint["SWR_BLOB_REDIRECT_ENDPOINT_URL"] == "https://s3.example.com"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"SWR_BLOB_STORAGE": "s4"}, "SWR_BLOB_STORAGE"),
        ({"SWR_BLOB_STORAGE": "s3"}, "AWS_STORAGE_BUCKET_NAME"),
        ({"SWR_BLOB_REDIRECT": "true"}, "SWR_BLOB_REDIRECT"),
        ({**S3, "SWR_BLOB_REDIRECT": "maybe"}, "SWR_BLOB_REDIRECT"),
        ({**S3, "SWR_BLOB_REDIRECT_SECONDS": "5m"}, "SWR_BLOB_REDIRECT_SECONDS"),
        ({**S3, "SWR_BLOB_REDIRECT_SECONDS": "0"}, "SWR_BLOB_REDIRECT_SECONDS"),
        ({**S3, "SWR_BLOB_REDIRECT_SECONDS": "604801"}, "SWR_BLOB_REDIRECT_SECONDS"),
        ({**S3, "AWS_S3_ADDRESSING_STYLE": "dns"}, "AWS_S3_ADDRESSING_STYLE"),
    ],
)
def test_a_wrong_value_is_refused_by_name(environ, named):
    with pytest.raises(ImproperlyConfigured, match=named):
        blob_settings(environ)


@pytest.mark.parametrize(("environ", "loaded"), [({}, False), (S3, True)], ids=["filesystem", "s3"])
def test_boto3_is_imported_only_for_s3(environ, loaded):
    code = (
        "import sys, django; django.setup(); from swr.distribution import storage; storage.storage();"
        "import swr.api.urls; print('boto3' in sys.modules)"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SWR_BLOB", "AWS_"))}
    env |= {"DJANGO_SETTINGS_MODULE": "registry.settings", **environ}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(loaded)


def test_one_boto3_client_serves_every_thread_of_a_process(settings):
    """django-storages keeps a boto3 resource per thread, and a gevent worker's greenlets are threads to it: a
    new boto3 session for every request. S3BlobStorage keeps one per process (making one sends no request)."""
    s3 = blob_settings({**S3, "AWS_S3_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "k"})
    settings.STORAGES = {**settings.STORAGES, "blobs": s3["blobs"]}
    store = storage.storage()
    plain = S3Storage(**s3["blobs"]["OPTIONS"])
    seen = []

    def look():
        seen.append((store.client, plain.connection.meta.client))

    threads = [threading.Thread(target=look) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    look()

    assert len({id(ours) for ours, _ in seen}) == 1
    assert len({id(theirs) for _, theirs in seen}) == 4  # django-storages' own: one per thread


def test_a_part_on_a_folder_is_a_new_file_with_the_storages_modes(settings, tmp_path):
    """storage.save_part writes a folder's part itself (not through FileSystemStorage.save): the bytes, their
    digest, the upload's folder made on its first part, the storage's file and folder modes exactly (as
    FileSystemStorage.save gives them, whatever the umask), and never over a file that exists."""
    settings.STORAGES = {
        **settings.STORAGES,
        "blobs": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path), "file_permissions_mode": 0o664, "directory_permissions_mode": 0o775},
        },
    }
    assert storages["blobs"].location == str(tmp_path)
    data = os.urandom(200_000)  # more than one piece
    key = storage.part_key(uuid.uuid4(), 0)
    umask = os.umask(0o077)  # stricter than both modes
    try:
        reader = storage.save_part(key, io.BytesIO(data), len(data))
        django_saved = storages["blobs"].save(storage.part_key(uuid.uuid4(), 0), io.BytesIO(b"by Django"))
    finally:
        os.umask(umask)
    path = tmp_path / key
    assert path.read_bytes() == data
    assert reader.size == len(data)
    assert reader.digest("sha256") == "sha256:" + hashlib.sha256(data).hexdigest()
    modes = {stat.S_IMODE(p.stat().st_mode) for p in (path, tmp_path / django_saved)}
    folder_modes = {stat.S_IMODE(p.stat().st_mode) for p in (path.parent, path.parent.parent)}  # uploads/ too
    folder_modes |= {stat.S_IMODE((tmp_path / django_saved).parent.stat().st_mode)}
    assert (modes, folder_modes) == ({0o664}, {0o775})
    with pytest.raises(FileExistsError):
        storage.save_part(key, io.BytesIO(b"other bytes"), 11)
    assert path.read_bytes() == data
    assert storage.save_part(key[:-1] + "1", io.BytesIO(b"abc"), 2).size == 2  # at most ``limit`` bytes
    assert (tmp_path / (key[:-1] + "1")).read_bytes() == b"ab"


def test_a_one_part_blob_on_a_folder_is_renamed_into_folders_with_the_storages_modes(settings, tmp_path):
    """storage.commit_parts renames a one-part upload into place: the blob's folders (blobs/sha256/<two hex
    digits>/) are made when missing, with the storage's folder mode whatever the umask, as FileSystemStorage.save
    makes them for a blob copied from several parts; a missing part is FileNotFoundError and stores nothing."""
    settings.STORAGES = {
        **settings.STORAGES,
        "blobs": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path), "file_permissions_mode": 0o664, "directory_permissions_mode": 0o775},
        },
    }
    blobs = []
    umask = os.umask(0o077)
    try:
        for _ in range(2):  # the second blob of the same two-digit folder finds it made
            data = os.urandom(1000)
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            part = storage.part_key(uuid.uuid4(), 0)
            storage.save_part(part, io.BytesIO(data), len(data))
            assert storage.commit_parts([part], digest) is True
            assert not (tmp_path / part).exists()
            blobs.append((digest, data))
        missing = "sha256:" + hashlib.sha256(b"never uploaded").hexdigest()
        with pytest.raises(FileNotFoundError):
            storage.commit_parts([storage.part_key(uuid.uuid4(), 0)], missing)
    finally:
        os.umask(umask)
    for digest, data in blobs:
        path = tmp_path / storage.blob_key(digest)
        assert path.read_bytes() == data
        folders = [path.parent, path.parent.parent, path.parent.parent.parent]
        assert {stat.S_IMODE(folder.stat().st_mode) for folder in folders} == {0o775}
    assert not (tmp_path / storage.blob_key(missing)).exists()


@pytest.mark.parametrize(
    "backend", ["django.core.files.storage.FileSystemStorage", "django.core.files.storage.InMemoryStorage"]
)
def test_stored_blob_keys_lists_what_is_under_blobs_written_before_a_time(settings, tmp_path, backend):
    """storage.stored_blob_keys (the garbage collector's step 6): every key under ``blobs/`` last written before the
    given time, with its size, on a folder (os.walk) and through Django's storage API alone (InMemoryStorage);
    digest_of_key names the digest of a blob's key only."""
    options = {"location": str(tmp_path)} if backend.endswith("FileSystemStorage") else {}
    settings.STORAGES = {**settings.STORAGES, "blobs": {"BACKEND": backend, "OPTIONS": options}}
    store = storages["blobs"]
    blob = "sha256:" + hashlib.sha256(b"a blob").hexdigest()
    copy = storage.blob_key(blob) + ".0f" * 8
    store.save(storage.blob_key(blob), ContentFile(b"a blob"))
    store.save(copy, ContentFile(b"half"))
    store.save(storage.part_key(uuid.uuid4(), 0), ContentFile(b"a part"))  # not under blobs/

    assert sorted(storage.stored_blob_keys(timezone.now() + timedelta(seconds=5))) == sorted(
        [(storage.blob_key(blob), 6), (copy, 4)]
    )
    assert list(storage.stored_blob_keys(timezone.now() - timedelta(minutes=5))) == []
    assert storage.digest_of_key(storage.blob_key(blob)) == blob
    assert storage.digest_of_key(copy) is None
    assert storage.digest_of_key(storage.blob_key(blob).replace("/sha256/", "/sha512/")) is None
    assert storage.digest_of_key(storage.part_key(uuid.uuid4(), 0)) is None


def test_only_keys_of_the_form_the_registry_writes_are_blob_store_keys():
    """storage.is_blob_store_key: what step 6 of the collector may remove. An object store's listing may hold keys
    the registry never writes, which django-storages would clean up into a live blob's name before a delete."""
    key = storage.blob_key("sha256:" + "ab" * 32)
    assert storage.is_blob_store_key(key)
    assert storage.is_blob_store_key(key + ".0123abcd")
    for odd in (
        key.replace("/sha256/", "/sha256//"),
        key.replace("/ab/", "/ab/./"),
        key + "/x/..",
        "blobs/../uploads/" + str(uuid.uuid4()) + "/0",
        "blobs/sha256/abc/" + "ab" * 32,
        "uploads/" + str(uuid.uuid4()) + "/0",
    ):
        assert not storage.is_blob_store_key(odd), odd
