"""A real S3 server for the tests: moto's, in a thread of this process, on 127.0.0.1 and a free port.

`S3Server` starts it, creates a bucket, and points fsspec/s3fs (and every subprocess the tests start) at it through
the environment (endpoint URL, dummy credentials, a private RUBBERSHEET_CACHE); `stop` shuts it down and puts the
environment back. tests/conftest.py holds the session fixture that uses it.
"""
from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path


class S3Server:
    def __init__(self, cache: Path, bucket: str = "rubbersheet-test"):
        self.bucket = bucket
        self.cache = cache
        self._saved: dict[str, str | None] = {}
        self._server = None
        self.endpoint = ""

    def start(self) -> "S3Server":
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self._set(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_SESSION_TOKEN=None,
                  AWS_PROFILE=None, AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=None,
                  FSSPEC_S3_ENDPOINT_URL=self.endpoint, RUBBERSHEET_CACHE=str(self.cache))
        from curate.storage import filesystem

        filesystem(f"s3://{self.bucket}").mkdir(self.bucket)
        return self

    def url(self, name: str = "ds") -> str:
        """A fresh prefix in the bucket (each test gets its own)."""
        return f"s3://{self.bucket}/{uuid.uuid4().hex[:10]}/{name}"

    def _set(self, **values: str | None) -> None:
        for key, value in values.items():
            self._saved.setdefault(key, os.environ.get(key))
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
