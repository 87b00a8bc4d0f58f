"""Runs whose inputs and output live in object stores, through Beam's FileSystems: s3:// on a real
moto_server and gs:// on the real gcp-storage-emulator, both on 127.0.0.1. Each run's output folder
must equal a local run's, and a second run on it must reuse its shards."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Callable

import pyarrow.parquet as pq
import pytest

from crawl.serve import Route
from dataset import fileio

from conftest import ROOT
from pipeline_helpers import IN_MEMORY, jpeg, run_local, serve

BIN = Path(sys.executable).parent
BUCKET = "altcap-test"
CREDENTIALS = {"key": "testing", "secret": "testing", "region": "us-east-1"}
IMAGES = 6
SETTINGS = ["shards.samples_per_shard=100"]
# An access token that never expires, in Application Default Credentials' authorized_user form:
# Beam looks for credentials before it talks to GCS, and without any it retries for 15-30 s per
# process (measured: 21 s) before it goes anonymous; the emulator ignores the token.
EMULATOR_ADC = {"type": "authorized_user", "client_id": "emulator", "client_secret": "emulator",
                "refresh_token": "emulator", "token": "emulator", "expiry": "2999-01-01T00:00:00Z"}


@dataclasses.dataclass
class Store:
    scheme: str
    beam_args: list[str]  # what `altcap run` needs on its command line to reach the store
    upload: Callable[[str, bytes], None]  # by the store's own client: only the run configures Beam


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{process.args[0]} did not listen on port {port} within {timeout} s")


def start(command: list[str], port: int, cwd: Path) -> subprocess.Popen:
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, process)
    return process


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto_server with the test bucket; yields the Beam options that reach it."""
    import boto3

    port = free_port()
    server = start([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], port,
                   tmp_path_factory.mktemp("moto"))
    endpoint = f"http://127.0.0.1:{port}"
    try:
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=CREDENTIALS["key"],
                              aws_secret_access_key=CREDENTIALS["secret"], region_name=CREDENTIALS["region"])
        client.create_bucket(Bucket=BUCKET)
        yield Store("s3", [f"--s3_endpoint_url={endpoint}", f"--s3_access_key_id={CREDENTIALS['key']}",
                           f"--s3_secret_access_key={CREDENTIALS['secret']}",
                           f"--s3_region_name={CREDENTIALS['region']}"],
                    lambda name, data: client.put_object(Bucket=BUCKET, Key=name, Body=data))
    finally:
        server.terminate()
        server.wait()


@pytest.fixture(scope="module")
def gcs(tmp_path_factory):
    """The gcp-storage-emulator with the test bucket, reached through STORAGE_EMULATOR_HOST."""
    from google.cloud import storage

    folder = tmp_path_factory.mktemp("gcs")
    credentials = folder / "adc.json"
    credentials.write_text(json.dumps(EMULATOR_ADC))
    port = free_port()
    server = start([str(BIN / "gcp-storage-emulator"), "start", "-H", "127.0.0.1", "--port", str(port),
                    "--default-bucket", BUCKET, "--in-memory", "--quiet"], port, folder)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
        env.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(credentials))
        bucket = storage.Client.create_anonymous_client().bucket(BUCKET)
        try:
            yield Store("gs", [], lambda name, data: bucket.blob(name).upload_from_string(data))
        finally:
            server.terminate()
            server.wait()


@pytest.fixture(scope="module")
def site():
    routes = {f"/{i}.jpg": Route(jpeg(500 + 10 * i, 420, (40 * i, 90, 30))) for i in range(IMAGES)}
    routes["/tiny.jpg"] = Route(jpeg(60, 60))
    with serve(routes) as served:
        yield served


def image_list(site) -> bytes:
    """Every image, and three pairs that must end as rejects: of the text rules (before the
    shards), the download and the image rules (in a shard)."""
    lines = [f"a red photo number {i}\t{site.url(f'/{i}.jpg')}" for i in range(IMAGES)]
    lines += [f"\t{site.url('/0.jpg')}", f"a missing photo\t{site.url('/gone.jpg')}",
              f"a tiny photo\t{site.url('/tiny.jpg')}"]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def local_run(site, tmp_path_factory):
    folder = tmp_path_factory.mktemp("local")
    (folder / "list.tsv").write_bytes(image_list(site))
    stats = run_local([folder / "list.tsv"], folder / "out", *SETTINGS, site.connect_to)
    return str(folder / "out"), str(folder / "list.tsv"), stats


def tree(root: str) -> dict[str, str]:
    """Relative path -> full path of every file under ``root``, local or remote."""
    return {path[len(root) + 1:]: path for path in fileio.match(fileio.join(root, "**"))}


def contents(root: str, listing: str) -> dict[str, object]:
    """What each file of a run's folder holds, with the path of its input list (part of every
    record's ``source``) replaced by one name: tars by member, parquet files by row, shard stats
    without their time. The run's summaries (run.json, stats.json, report.html) name the paths
    and times themselves: compared apart."""
    def unlocated(data: bytes) -> bytes:
        return data.replace(listing.encode(), b"<list>")

    found = {}
    for name, path in tree(root).items():
        data = fileio.read_bytes(path)
        if name.endswith(".tar"):
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                found[name] = {member.name: unlocated(tar.extractfile(member).read()) for member in tar}
        elif name.endswith(".parquet"):
            rows = pq.read_table(io.BytesIO(data)).to_pylist()
            found[name] = unlocated(json.dumps(rows, sort_keys=True, default=str).encode())
        elif name.endswith("_stats.json"):  # a shard's funnel, and how long it took
            found[name] = {k: v for k, v in json.loads(unlocated(data)).items() if k != "elapsed_s"}
        elif name not in ("run.json", "stats.json", "report.html"):
            found[name] = unlocated(data)
    return found


def assert_same_output(remote: str, remote_list: str, local: str, local_list: str) -> None:
    assert sorted(tree(remote)) == sorted(tree(local))
    assert contents(remote, remote_list) == contents(local, local_list)
    remote_stats = json.loads(fileio.read_bytes(fileio.join(remote, "stats.json")))
    local_stats = json.loads(fileio.read_bytes(fileio.join(local, "stats.json")))
    for field in ("funnel", "samples", "shards", "rejects", "check"):
        assert remote_stats[field] == local_stats[field], field
    assert remote_stats["check"]["ok"] and remote_stats["output"] == remote
    assert b"<html" in fileio.read_bytes(fileio.join(remote, "report.html"))


def shard_files(root: str) -> dict[str, bytes]:
    return {name: fileio.read_bytes(path) for name, path in tree(root).items() if name.startswith("shards/")}


@pytest.mark.parametrize("name", ["s3", "gcs"])
def test_run_in_an_object_store_equals_a_local_run_and_resumes(name, request, site, local_run):
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    store = request.getfixturevalue(name)
    local, local_list, local_stats = local_run
    assert local_stats["samples"] == IMAGES and local_stats["shards"] == 1 and local_stats["rejects"] == 3
    store.upload("lists/list.tsv", image_list(site))
    listing, out = f"{store.scheme}://{BUCKET}/lists/list.tsv", f"{store.scheme}://{BUCKET}/out"
    run = ([listing], out, *SETTINGS, site.connect_to)
    FileSystems.set_options(None)  # the run must hand its options to the launcher's own reads and writes
    site.server.requests.clear()
    run_local(*run, beam_args=IN_MEMORY + store.beam_args)
    assert sum(site.server.requests.values()) == IMAGES + 2

    FileSystems.set_options(PipelineOptions(store.beam_args))
    assert_same_output(out, listing, local, local_list)
    shards = shard_files(out)
    site.server.requests.clear()
    again = run_local(*run, beam_args=IN_MEMORY + store.beam_args)
    assert sum(site.server.requests.values()) == 0  # every shard reused, no image fetched again
    assert shard_files(out) == shards
    assert again["samples"] == IMAGES and again["check"]["ok"]


NO_CREDENTIALS = """
import sys
from pipeline.cli import main

for store in ("s3", "gs"):
    main(["run", "--input", f"{store}://altcap-test/list.tsv", "--output", f"{store}://altcap-test/out"])
sys.modules["google.cloud.storage"] = None  # as if apache-beam[gcp] were not installed
main(["run", "--input", "gs://altcap-test/list.tsv", "--output", "gs://altcap-test/out"])
"""


def test_a_store_without_credentials_or_client_is_one_line(tmp_path):
    """Unchecked, Beam retries an s3:// call without credentials for minutes. The environment has
    no credentials, and no cloud metadata server is asked (the machine may be a cloud VM)."""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
           "NO_GCE_CHECK": "true", "AWS_EC2_METADATA_DISABLED": "true"}
    done = subprocess.run([sys.executable, "-c", NO_CREDENTIALS], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env=env)
    errors = [line for line in done.stderr.splitlines() if line.startswith("altcap:")]
    assert errors == [
        "altcap: error: s3://altcap-test/list.tsv: no credentials for s3:// found: pass --s3_access_key_id and "
        "--s3_secret_access_key (and --s3_endpoint_url for an S3-compatible store) or set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY",
        "altcap: error: gs://altcap-test/list.tsv: no credentials for gs:// found: run `gcloud auth "
        "application-default login` or set GOOGLE_APPLICATION_CREDENTIALS; public files can be read over "
        "https://storage.googleapis.com/",
        "altcap: error: gs://altcap-test/list.tsv: gs:// paths need google.cloud.storage: pip install "
        "'apache-beam[gcp]'",
    ], done.stderr
