"""Registry push/pull throughput: Corral against the CNCF distribution registry, same run.

Builds one OCI image of 4 random, uncompressed layers (~200 MB by default), then for each
registry pushes it with ``skopeo copy --preserve-digests`` to a fresh repository and pulls it
back into a ``dir:`` layout, timing both. skopeo's blob-info cache is cleared before every
copy so no run skips or mounts blobs. Prints MB/s (median of the runs) and Corral's ratios.

    .venv/bin/python bench/registry_throughput.py [--layer-mb 50] [--runs 3]

Needs skopeo and docker-registry (Debian packages) and Corral installed in this Python.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

BLOB_INFO_CACHES = [
    Path("/var/lib/containers/cache/blob-info-cache-v1.boltdb"),
    Path.home() / ".local/share/containers/cache/blob-info-cache-v1.boltdb",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_image(root: Path, layers: int, layer_mb: int) -> int:
    """An OCI layout with uncompressed random layers; returns the total bytes of layers."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> tuple[str, int]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return f"sha256:{digest}", len(data)

    descs, diff_ids, total = [], [], 0
    for i in range(layers):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            payload = os.urandom(layer_mb * 1024 * 1024)
            info = tarfile.TarInfo(f"layer{i}.bin")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        digest, size = put(buf.getvalue())
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                      "digest": digest, "size": size})
        diff_ids.append(digest)
        total += size
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    cdigest, csize = put(config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": cdigest, "size": csize},
        "layers": descs}).encode()
    mdigest, msize = put(manifest)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdigest,
        "size": msize, "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}))
    return total


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # answering (401 is fine)
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout}s")


def start_corral(work: Path) -> tuple[subprocess.Popen, str, list[str]]:
    port = free_port()
    env = {**os.environ, "CORRAL_CREATE_ON_PUSH": "1", "CORRAL_LOG_LEVEL": "warning"}
    proc = subprocess.Popen([sys.executable, "-m", "corral.cli", "up", "--port", str(port),
                             "--data-dir", str(work / "corral")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/_corral/health")
    import boto3

    ecr = boto3.client("ecr", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    password = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    import base64

    creds = base64.b64decode(password).decode()
    return proc, f"127.0.0.1:{port}", ["--creds", creds]


def start_distribution(work: Path) -> tuple[subprocess.Popen, str, list[str]]:
    port = free_port()
    config = work / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {work / 'distribution'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen(["docker-registry", "serve", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/v2/")
    return proc, f"127.0.0.1:{port}", []


def clear_skopeo_cache() -> None:
    for cache in BLOB_INFO_CACHES:
        cache.unlink(missing_ok=True)


def skopeo(*args: str) -> float:
    clear_skopeo_cache()
    start = time.perf_counter()
    subprocess.run(["skopeo", "copy", "--quiet", *args], check=True)
    return time.perf_counter() - start


def measure(name: str, host: str, auth: list[str], layout: Path, work: Path, runs: int,
            total: int) -> dict[str, float]:
    push, pull = [], []
    for i in range(runs):
        ref = f"docker://{host}/bench/{name}-{i}:v1"
        push.append(skopeo("--dest-tls-verify=false", *[a.replace("--creds", "--dest-creds")
                                                         for a in auth],
                           "--preserve-digests", f"oci:{layout}:bench", ref))
        out = work / f"pull-{name}-{i}"
        pull.append(skopeo("--src-tls-verify=false", *[a.replace("--creds", "--src-creds")
                                                       for a in auth], ref, f"dir:{out}"))
        shutil.rmtree(out)
    mb = total / 1e6
    return {"push": mb / statistics.median(push), "pull": mb / statistics.median(pull)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layer-mb", type=int, default=50, help="size of each of the 4 layers")
    ap.add_argument("--runs", type=int, default=3, help="push+pull rounds per registry")
    args = ap.parse_args()
    for tool in ("skopeo", "docker-registry"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing: apt-get install {'skopeo' if tool == 'skopeo' else 'docker-registry'}")
            return 2
    with tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp:
        work = Path(tmp)
        layout = work / "image"
        total = build_image(layout, 4, args.layer_mb)
        print(f"image: 4 uncompressed layers, {total / 1e6:.0f} MB; {args.runs} runs each")
        results, procs = {}, []
        try:
            for name, start in (("corral", start_corral), ("distribution", start_distribution)):
                proc, host, auth = start(work)
                procs.append(proc)
                results[name] = measure(name, host, auth, layout, work, args.runs, total)
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=15)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
    print(f"\n{'registry':<14}{'push MB/s':>12}{'pull MB/s':>12}")
    for name, r in results.items():
        print(f"{name:<14}{r['push']:>12.1f}{r['pull']:>12.1f}")
    c, d = results["corral"], results["distribution"]
    print(f"{'corral/dist':<14}{c['push'] / d['push']:>11.2f}x{c['pull'] / d['pull']:>11.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
