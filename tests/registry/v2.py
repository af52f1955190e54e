"""A thin raw-HTTP client for the /v2/ API, authenticated the way ECR clients are.

``Authorization: Basic <authorizationToken>`` where the token is GetAuthorizationToken's
``base64("AWS:<password>")`` — exactly what docker/skopeo send after ``login``. Locations in
responses are relative; ``url()`` resolves them against the server.
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import urljoin

import requests

from tests.registry.oci_images import Blob, Built


def basic(password: str) -> str:
    return "Basic " + base64.b64encode(f"AWS:{password}".encode()).decode()


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


class V2:
    def __init__(self, endpoint: str, token: str | None):
        self.endpoint = endpoint
        self.session = requests.Session()
        if token is not None:
            self.session.headers["Authorization"] = f"Basic {token}"

    def url(self, path: str) -> str:
        return urljoin(self.endpoint, path)

    def request(self, method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 60)
        return self.session.request(method, self.url(path), **kw)

    def get(self, path: str, **kw) -> requests.Response:
        return self.request("GET", path, **kw)

    def head(self, path: str, **kw) -> requests.Response:
        return self.request("HEAD", path, **kw)

    def put(self, path: str, **kw) -> requests.Response:
        return self.request("PUT", path, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return self.request("POST", path, **kw)

    def patch(self, path: str, **kw) -> requests.Response:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw) -> requests.Response:
        return self.request("DELETE", path, **kw)

    # --- pushing ---------------------------------------------------------------------------

    def start_upload(self, name: str) -> str:
        r = self.post(f"/v2/{name}/blobs/uploads/", headers={"Content-Length": "0"})
        assert r.status_code == 202, r.text
        return r.headers["Location"]

    def push_blob(self, name: str, data: bytes, algorithm: str = "sha256") -> str:
        """Monolithic ``POST ?digest=`` (end-4b); returns the digest."""
        digest = digest_of(data, algorithm)
        r = self.post(f"/v2/{name}/blobs/uploads/", params={"digest": digest}, data=data,
                      headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
        return digest

    def push_manifest(self, name: str, ref: str, blob: Blob) -> requests.Response:
        return self.put(f"/v2/{name}/manifests/{ref}", data=blob.data,
                        headers={"Content-Type": blob.media_type})

    def push_image(self, name: str, built: Built, tag: str | None = "v1") -> None:
        """Blobs, then platform manifests by digest, then the top manifest by tag."""
        for image in built.images:
            for blob in image.blobs:
                self.push_blob(name, blob.data)
            if built.is_index:
                r = self.push_manifest(name, image.manifest.digest, image.manifest)
                assert r.status_code == 201, r.text
        r = self.push_manifest(name, tag or built.digest, built.top)
        assert r.status_code == 201, r.text


def error_code(r: requests.Response) -> str:
    return r.json()["errors"][0]["code"]
