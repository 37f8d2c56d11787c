"""Blobs on an S3-compatible object store: django-storages' S3Storage with one boto3 client per process.

Imported only when STORAGES["blobs"] names :class:`S3BlobStorage` (SWR_BLOB_STORAGE=s3, registry/settings.py
``blob_settings``), so that boto3 is loaded only where it is used.

django-storages keeps its boto3 resource in a ``threading.local``; under gunicorn's gevent workers every
greenlet is a thread of its own for ``threading.local``, so each request would build a new boto3 session
and client (tens of milliseconds and megabytes each). boto3's clients are safe to share between threads
(and so between greenlets): here one resource, and its client, serves every request of a process. A
process started by fork (gunicorn's workers) makes its own.
"""

import os
import threading

from storages.backends.s3 import S3Storage


class S3BlobStorage(S3Storage):
    """S3Storage whose boto3 resource is made once per process (see the module docstring)."""

    is_object_store = True  # swr/distribution/storage.py takes the object store's own paths for this backend

    def __init__(self, **settings):
        super().__init__(**settings)
        self._shared_lock = threading.Lock()
        self._shared = None  # (process id, resource)

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
