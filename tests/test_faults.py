"""Issue 18: a hostile web, end to end. One real pipeline run fetches one URL per fault of
``crawl.faults.FAULTS`` from a real server on 127.0.0.1 under the safe default address rules, and
every record ends as the table says, a sample or a reject with its stage and reason, with every
record accounted for. A WARC cut inside its last record's header rides along in the same run."""

from __future__ import annotations

import gzip
import json
import socket
import time
from pathlib import Path

import pytest

from crawl.faults import FAULT_HOST, FAULTS, SETTINGS, FaultServer, markdown_table
from crawl.serve import LocalServer, Route
from pipeline.demo import warc_response

from pipeline_helpers import reject_rows, run_local, shard_rows

ROOT = Path(__file__).resolve().parent.parent
CUT_PAGE = "http://gallery.altcap.test/cut.html"
RETRIES = int(SETTINGS["download.retries"])
MAX_REDIRECTS = int(SETTINGS["download.max_redirects"])
RUN_BOUND_S = 45  # the slowest fault costs 2 x 3 s (the slow drip's deadline, retried once)

pytestmark = pytest.mark.timeout(120)  # a fault that hangs the run fails it instead of the suite


WHOLE_PAGE = warc_response("http://gallery.altcap.test/whole.html", b"<html><body>no images</body></html>")


def cut_warc() -> bytes:
    """A page with no images, then a page whose file ends just after its WARC-Target-URI line."""
    cut = gzip.decompress(warc_response(CUT_PAGE, b'<html><img src="/a.jpg" alt="lost"></html>'))
    return WHOLE_PAGE + gzip.compress(cut[:cut.index(b"Content-Type:")], mtime=0)


@pytest.fixture(scope="module")
def fault_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faults")
    with FaultServer() as faults:
        (tmp / "faults.tsv").write_text("".join(f"fault {name}\t{faults.url(name)}\n" for name in FAULTS))
        (tmp / "cut.warc.gz").write_bytes(cut_warc())
        settings = [f"{name}={value}" for name, value in SETTINGS.items()]
        started = time.monotonic()
        stats = run_local([tmp / "faults.tsv", tmp / "cut.warc.gz"], tmp / "out", *settings,
                          f"download.connect_to={json.dumps(faults.connect_to)}")
        elapsed = time.monotonic() - started
        requests = dict(faults.server.requests)
    samples, rejects = shard_rows(tmp / "out"), reject_rows(tmp / "out")
    return {"stats": stats, "samples": samples, "rejects": rejects, "requests": requests, "elapsed": elapsed,
            "outcome": {**{row["url"]: ("sample", "", "") for row in samples},
                        **{row["url"]: ("reject", row["stage"], row["reason"]) for row in rejects if row["url"]}}}


@pytest.mark.parametrize("name", list(FAULTS))
def test_each_fault_ends_as_the_table_says(fault_run, name):
    fault = FAULTS[name]
    expected = ("reject", fault.stage, fault.reason) if fault.reason else ("sample", "", "")
    assert fault_run["outcome"][f"http://{fault.host}/{name}"] == expected


def expected_requests(name: str) -> int:
    """Requests the fault's own path gets: a retry for what may pass (timeouts, resets, 5xx, 429),
    one hop per redirect of the loop, nothing for the connect stall (another socket)."""
    fault = FAULTS[name]
    if fault.host != FAULT_HOST:
        return 0
    if name == "redirect_loop":
        return MAX_REDIRECTS + 1
    transient = name.endswith("_then_ok")
    return RETRIES + 1 if transient or fault.reason in ("timeout", "connection_error", "http_500", "http_502") else 1


def test_faults_are_retried_as_configured_and_no_more(fault_run):
    requests = fault_run["requests"]
    assert {name: requests.get(f"/{name}", 0) for name in FAULTS} == {name: expected_requests(name) for name in FAULTS}
    # Refused hops never reach the server: not past the redirect limit, not on loopback by IP or name.
    assert requests[f"/redirect_chain/{MAX_REDIRECTS}"] == 1 and f"/redirect_chain/{MAX_REDIRECTS + 1}" not in requests
    for name in ("redirect_chain", "redirect_to_loopback", "redirect_to_localhost"):
        assert f"/{name}/target" not in requests, name
    assert requests["/redirect_within_limit/target"] == 1


def test_every_record_is_accounted_for_and_the_run_is_bounded(fault_run):
    stats, samples, rejects = fault_run["stats"], fault_run["samples"], fault_run["rejects"]
    assert stats["check"] == {"ok": True, "problems": []}
    records_in = len(FAULTS) + 1  # one per fault URL, one source reject for the cut WARC record
    assert len(samples) + len(rejects) == records_in
    assert len(fault_run["outcome"]) == len(FAULTS)  # every fault's URL ends once
    assert stats["samples"] == sum(1 for f in FAULTS.values() if not f.reason)
    assert fault_run["elapsed"] < RUN_BOUND_S


def test_a_warc_cut_inside_a_header_is_a_source_reject_in_a_run(fault_run):
    [cut] = [row for row in fault_run["rejects"] if row["stage"] == "source"]
    assert (cut["reason"], cut["page_url"]) == ("truncated_record", CUT_PAGE)
    assert cut["source"].endswith(f"cut.warc.gz@{len(WHOLE_PAGE)}")  # the offset of its gzip member


# --- the server's own faults, byte by byte --------------------------------------------------------

def raw_get(port: int, path: str) -> tuple[bytes, str]:
    """The raw bytes of a response and how the connection ended: "eof" or "reset"."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            return received, "reset"
        return received, "eof"


def test_routes_can_lie_about_their_length_and_end_with_a_reset():
    body = bytes(range(256)) * 40
    routes = {"/fin": Route(body, cut_after=1000), "/rst": Route(body, cut_after=1000, reset=True),
              "/more": Route(body, content_length=len(body) + 5), "/less": Route(body, content_length=100)}
    with LocalServer(routes) as server:
        got = {path: raw_get(server.port, path) for path in routes}
    assert got["/fin"][1] == "eof" and got["/fin"][0].endswith(body[:1000])
    assert got["/rst"][1] == "reset"
    for path, declared in (("/more", len(body) + 5), ("/less", 100)):
        data, ending = got[path]
        assert ending == "eof" and data.endswith(b"\r\n\r\n" + body), path  # all of it, then a close
        assert f"Content-Length: {declared}\r\n".encode() in data


def test_the_connect_stall_accepts_and_never_answers():
    with FaultServer({"connect_stall": FAULTS["connect_stall"]}) as faults:
        stall_port = int(faults.connect_to[1].rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", stall_port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.settimeout(0.3)
            with pytest.raises(TimeoutError):
                sock.recv(1)


# --- README ---------------------------------------------------------------------------------------

def test_the_readme_table_is_the_fault_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## A hostile web: faults and outcomes", 1)[1].split("\n## ", 1)[0]
    assert markdown_table() in section
