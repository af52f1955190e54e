"""The composition root: builds stores, services, controllers and the ASGI app from Settings.

Nothing else wires components together.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from corral import __version__
from corral.admin import AdminApi
from corral.aws import models
from corral.aws.gateway import Gateway
from corral.aws.protocols import HttpRequest
from corral.aws.provider import Provider
from corral.config import Settings
from corral.controller import Controller
from corral.ecr.provider import EcrProvider
from corral.ecs.provider import EcsProvider
from corral.elb.provider import ElbProvider
from corral.events import EventBus
from corral.iam.credentials import Credentials
from corral.iam.enforce import PolicyAuthorizer
from corral.iam.provider import IamProvider
from corral.iam.sts import StsProvider
from corral.logs.provider import LogsProvider
from corral.registry.api import RegistryApi
from corral.registry.blobs import BlobStore
from corral.registry.storage import FilesystemDriver
from corral.store import Store

log = logging.getLogger("corral")

MAX_BODY = 64 * 1024 * 1024  # larger than any AWS API request Corral serves


@dataclass
class Corral:
    settings: Settings
    store: Store
    gateway: Gateway
    admin: AdminApi
    events: EventBus
    controllers: list[Controller] = field(default_factory=list)
    asgi: Starlette | None = None
    credential_vendor: object | None = None  # corral.iam.vending.CredentialVendor

    def service_states(self) -> dict[str, str]:
        served = set(self.gateway.providers)
        return {name: ("running" if name in served else "not implemented")
                for name in models.SERVICES}


def providers(settings: Settings, blobs: BlobStore | None = None,
              credentials: Credentials | None = None) -> dict[str, Provider]:
    """Every service provider Corral serves, by botocore service name."""
    blobs = blobs or blob_store(settings)
    credentials = credentials or Credentials(None, settings)  # type: ignore[arg-type]
    from corral.scan.inspector_api import Inspector2Provider

    return {p.service: p for p in (EcrProvider(settings, blobs), StsProvider(),
                                   IamProvider(credentials), Inspector2Provider(settings),
                                   EcsProvider(settings), ElbProvider(settings),
                                   LogsProvider(settings))}


def blob_store(settings: Settings) -> BlobStore:
    return BlobStore(FilesystemDriver(settings.data_dir / "registry"))


def build(settings: Settings) -> Corral:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.db_url)
    store.migrate()
    credentials = Credentials(store, settings)
    credentials.bootstrap()
    blobs = blob_store(settings)
    authorizer = PolicyAuthorizer(store)
    served = providers(settings, blobs, credentials)
    served["sts"].authorizer = authorizer  # AssumeRole evaluates the caller's policies
    gateway = Gateway(settings, store, credentials, authorizer, served)
    registry = RegistryApi(settings, store, blobs, authorizer, settings.create_on_push)
    admin = AdminApi(store, credentials, settings.public_endpoint)
    corral = Corral(settings, store, gateway, admin, EventBus())
    store.events = corral.events  # events emitted in transactions go out after their commits
    _wire_lifecycle(corral, blobs)
    _wire_iam(corral)
    _wire_scanning(corral, blobs)
    _wire_ecs(corral, blobs, authorizer)
    _wire_elb(corral)
    _wire_logs(corral)
    _register_shutdown(corral)
    corral.asgi = _asgi(corral, registry)
    return corral


def _register_shutdown(corral: Corral) -> None:
    """``corral down``: the server stops as on SIGTERM, just after answering."""
    import os
    import signal
    import threading

    @corral.admin.action("server/shutdown", transaction=False)
    def shutdown(_ctx, _body: dict) -> dict:
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
        return {"shutting_down": True}


def _wire_iam(corral: Corral) -> None:
    """Role credentials for workloads: the vendor, its admin actions (`iam/vend-credentials`)."""
    from corral.iam import admin as iam_admin
    from corral.iam.vending import CredentialVendor

    corral.credential_vendor = CredentialVendor(corral.store, corral.settings.local_endpoint)
    iam_admin.register(corral.admin, corral.credential_vendor)


def _wire_lifecycle(corral: Corral, blobs: BlobStore) -> None:
    """Lifecycle policies and garbage collection: the controller, `corral lifecycle`/`gc`."""
    from corral.ecr.lifecycle import admin as lifecycle_admin
    from corral.ecr.lifecycle.executor import LifecycleController, LifecycleRunner
    from corral.registry.gc import GarbageCollector

    s = corral.settings
    gc = GarbageCollector(corral.store, blobs, grace=s.gc_grace, upload_max_age=s.upload_max_age)
    runner = LifecycleRunner(corral.store, gc)
    lifecycle_admin.register(corral.admin, runner, gc)
    corral.controllers.append(LifecycleController(runner, s.lifecycle_interval))


def _wire_scanning(corral: Corral, blobs: BlobStore) -> None:
    """Image scanning: the scan controller (woken by pushes, scan requests and advisory
    imports, published after their commits), `corral vulndb`."""
    from corral.scan import admin as scan_admin
    from corral.scan.controller import ScanController
    from corral.scan.scanner import Scanner

    controller = ScanController(corral.store, Scanner(corral.store, blobs))
    for topic in ("scan.requested", "advisories.imported"):
        corral.events.subscribe(topic, controller.wake)
    scan_admin.register(corral.admin)
    corral.controllers.append(controller)


def runtime_driver(settings: Settings):
    """The container runtime tasks run on (CORRAL_RUNTIME)."""
    if settings.runtime == "docker":
        from corral.runtime.docker import DockerDriver

        return DockerDriver(settings.data_dir / "runtime",
                            socket=settings.docker_host.removeprefix("unix://"))
    from corral.runtime.oci import OciDriver

    return OciDriver(settings.data_dir / "runtime", runtime=settings.runtime)


def _wire_ecs(corral: Corral, blobs: BlobStore, authorizer: PolicyAuthorizer) -> None:
    """ECS: the provider's collaborators, the task agent (woken by task changes), the service
    scheduler (woken by service and task changes), the event stream `corral events` reads,
    and `corral tasks`."""
    from corral.ecs import admin as ecs_admin
    from corral.ecs.agent import TaskAgent
    from corral.ecs.event_stream import EventStream
    from corral.ecs.scheduler import ServiceScheduler
    from corral.runtime.images import ImageResolver

    s = corral.settings
    driver = runtime_driver(s)
    images = ImageResolver(corral.store, blobs, authorizer, s)
    agent = TaskAgent(corral.store, driver, images, s.data_dir, stop_timeout=s.ecs_stop_timeout,
                      pids_limit=s.ecs_pids_limit)
    ecs = corral.gateway.providers["ecs"]
    ecs.authorizer = authorizer
    corral.events.subscribe("ecs.task.changed", agent.wake)
    stream = EventStream()  # task and service state changes as EventBridge events
    stream.subscribe(corral.events)
    scheduler = ServiceScheduler(corral.store)
    ecs_admin.register(corral.admin, agent, stream, scheduler)
    for topic in ("ecs.service.changed", "ecs.task.changed"):
        corral.events.subscribe(topic, scheduler.wake)
    corral.controllers += [agent, scheduler]
    from corral.ecs.log_shipper import LogShipper  # the awslogs log driver

    agent.shipper = LogShipper(corral.store, driver, authorizer, s.public_endpoint,
                               lambda task_id: agent.task_dir(task_id) / "logs")
    corral.controllers.append(agent.shipper)


def _wire_elb(corral: Corral) -> None:
    """Application Load Balancers: the data plane (a proxy per listener on its host port,
    health checks, draining), woken by ELBv2 changes published after their commits."""
    from corral.elb.balancer import LoadBalancerController

    controller = LoadBalancerController(corral.store, corral.settings.host)
    corral.events.subscribe("elb.changed", controller.wake)
    corral.controllers.append(controller)


def _wire_logs(corral: Corral) -> None:
    """CloudWatch Logs: the retention controller (expired events and the events of deleted
    streams, in chunks), woken by retention changes and deletions after their commits, and
    the Logs Insights query runner."""
    from corral.logs.query_runner import QueryRunner
    from corral.logs.retention import RetentionController

    controller = RetentionController(corral.store, interval=60.0)
    for topic in ("logs.retention.changed", "logs.purge"):
        corral.events.subscribe(topic, controller.wake)
    runner = QueryRunner(corral.store)  # Logs Insights queries, one worker thread
    corral.events.subscribe("logs.query.started", runner.wake)
    corral.events.subscribe("logs.query.stopped", runner.stopped)
    corral.controllers += [controller, runner]


async def _http_request(request: Request) -> HttpRequest:
    """The plain request the AWS-style pipelines work on: raw path, query, headers, body."""
    scope = request.scope
    return HttpRequest(
        method=request.method,
        path=scope.get("raw_path", scope["path"].encode()).decode("utf-8", "surrogateescape"),
        query=scope.get("query_string", b"").decode("latin-1"),
        header_list=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
        body=await request.body(),
        client=request.client.host if request.client else None,
        secure=scope.get("scheme") == "https",  # aws:SecureTransport: this request's listener
    )


def _credentials(corral: Corral):
    from corral.iam.admin import credentials_endpoint

    return credentials_endpoint(corral.credential_vendor)


def _asgi(corral: Corral, registry: RegistryApi) -> Starlette:
    async def health(_: Request) -> Response:
        return JSONResponse({
            "status": "running",
            "version": __version__,
            "services": corral.service_states(),
        })

    async def aws(request: Request) -> Response:
        declared = request.headers.get("content-length", "0")
        if declared.isdigit() and int(declared) > MAX_BODY:
            return Response("Request body too large", status_code=413)
        http = await _http_request(request)
        out = await run_in_threadpool(corral.gateway.handle, http)
        return Response(out.body, status_code=out.status, headers=out.headers)

    async def admin(request: Request) -> Response:
        http = await _http_request(request)
        out = await run_in_threadpool(corral.admin.handle, request.path_params["action"], http)
        return Response(out.body, status_code=out.status, headers=out.headers)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        for controller in corral.controllers:
            controller.start()
        yield
        for controller in corral.controllers:
            controller.stop()
        corral.store.close()

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]
    return Starlette(routes=[
        Route("/_corral/health", health, methods=["GET"]),
        Route("/_corral/credentials/{id}", _credentials(corral), methods=["GET"]),
        Route("/_corral/api/{action:path}", admin, methods=["POST"]),
        Route("/v2", registry.handle, methods=methods),
        Route("/v2/{path:path}", registry.handle, methods=methods),
        Route("/{path:path}", aws, methods=methods),
    ], lifespan=lifespan)
