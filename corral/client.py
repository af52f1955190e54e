"""A small client for CLI subcommands: the health endpoint plus signed AWS API calls.

Without an explicit endpoint it talks to the server of the settings' data dir
(:func:`corral.server_file.find_endpoint`), so `corral status` finds the port `up` used."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import botocore.session
from botocore.config import Config

from corral.config import Settings
from corral.server_file import find_endpoint


class ServerUnreachable(Exception):
    pass


class CorralError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class CorralClient:
    def __init__(self, endpoint: str | None, settings: Settings):
        self.endpoint = find_endpoint(endpoint, settings.data_dir).rstrip("/")
        self.settings = settings
        self._session = botocore.session.get_session()
        creds = self._session.get_credentials()
        if creds is None:  # nothing configured: use Corral's root key from the settings
            self._session.set_credentials(settings.root_access_key, settings.root_secret_key)
        self.region = self._session.get_config_variable("region") or settings.region

    def aws(self, service: str):
        return self._session.create_client(
            service, region_name=self.region, endpoint_url=self.endpoint,
            config=Config(retries={"max_attempts": 2}, connect_timeout=3, read_timeout=30),
        )

    def admin(self, action: str, body: dict | None = None) -> dict:
        """Call one of Corral's own actions (``POST /_corral/api/<action>``), SigV4-signed."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        req = AWSRequest(method="POST", url=f"{self.endpoint}/_corral/api/{action}",
                         data=json.dumps(body or {}).encode(),
                         headers={"Content-Type": "application/json"})
        SigV4Auth(self._session.get_credentials().get_frozen_credentials(), "corral",
                  self.region).add_auth(req)
        prepared = req.prepare()
        http = urllib.request.Request(prepared.url, data=prepared.body, method="POST",
                                      headers=dict(prepared.headers))
        try:
            with urllib.request.urlopen(http, timeout=600) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            try:
                detail = json.load(e)
            except ValueError:
                detail = {"__type": str(e.code), "message": e.reason}
            raise CorralError(detail.get("__type", "Error"), detail.get("message", "")) from None
        except (urllib.error.URLError, OSError) as e:
            raise ServerUnreachable(
                f"No Corral server answers at {self.endpoint} ({e}). Start one with `corral up` "
                "or point --endpoint / CORRAL_ENDPOINT at it."
            ) from None

    def health(self) -> dict:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/_corral/health", timeout=5) as r:
                return json.load(r)
        except (urllib.error.URLError, OSError) as e:
            raise ServerUnreachable(
                f"No Corral server answers at {self.endpoint} ({e}). Start one with `corral up` "
                "or point --endpoint / CORRAL_ENDPOINT at it."
            ) from None

    def status(self) -> dict:
        report = self.health()
        report["identity"] = self.aws("sts").get_caller_identity()
        report["region"] = self.region
        repos = 0
        for page in self.aws("ecr").get_paginator("describe_repositories").paginate():
            repos += len(page["repositories"])
        report["counts"] = {"ecr": f"{repos} repositories"}
        return report
