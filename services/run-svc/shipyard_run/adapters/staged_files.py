"""Files staged in the S3 blob store for those that hold no keys but presigned URLs — a Kubernetes run's
pod, a job submitted through slurmrestd: the staging port, the stdlib-only Python scripts that fetch a
run's code and inputs and send its files back (its outputs, and a trial's files its study reads), the tars
they move, and the bounded, checked reading of what a trial sent."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import shutil
import tarfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from shipyard.kit.blob.s3 import StagedPart
from shipyard.kit.blob.tree import BlobTree
from shipyard_run.adapters import job_files

log = logging.getLogger(__name__)
URL_LIFETIME = timedelta(days=7)  # presigned URLs (S3's longest): a job queued longer cannot fetch


class StagedReads(Protocol):
    """Reads staged objects by range."""

    async def read_staged(self, name: str, offset: int, max_bytes: int) -> StagedPart:
        """At most ``max_bytes`` of the object from ``offset`` (a ranged GET) and its whole size;
        FileNotFoundError when there is none."""


class Staging(StagedReads, Protocol):
    """Objects staged for pods and jobs by name (``runs/<run id>/…``), reached through presigned URLs
    (the S3 blob store's staging area)."""

    async def presign_get(self, name: str, expires: timedelta) -> str:
        """A URL that GETs the object until ``expires`` from now."""

    async def presign_put(self, name: str, expires: timedelta) -> str:
        """A URL that PUTs the object until ``expires`` from now."""

    async def put_staged(self, name: str, source: Path) -> None:
        """Store the file as the object."""

    async def get_staged(self, name: str, target: Path) -> None:
        """Write the object to ``target``; FileNotFoundError when there is none."""

    async def delete_staged(self, folder: str) -> None:
        """Remove every object under ``folder``."""


# The init container's script, and a slurmrestd job's first step (stdlib only: any Python 3 does): fetch
# the tar, unpack each top folder where SHIPYARD_UNPACK says. It prints nothing unless it fails: its log
# heads the run's.
FETCH_SCRIPT = '''\
import json, os, sys, tarfile, urllib.request
places = json.loads(os.environ["SHIPYARD_UNPACK"])
safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
try:
    with urllib.request.urlopen(os.environ["SHIPYARD_INPUTS_URL"], timeout=600) as response:
        with tarfile.open(fileobj=response, mode="r|") as tar:
            for member in tar:
                top, _, rest = member.name.partition("/")
                if top not in places or not rest:
                    continue
                member.name = rest
                tar.extract(member, places[top], **safe)
except Exception as exc:
    sys.exit("shipyard: the run's code and inputs could not be fetched: %s: %s" % (type(exc).__name__, exc))
'''

# Sends each output directory home after the command: a tar, PUT to its presigned URL. Quiet unless it
# fails; then run-svc finds an output missing and says so (the command's own exit code stands).
UPLOAD_SCRIPT = '''\
import json, os, sys, tarfile, tempfile, urllib.request
folders = json.loads(os.environ["SHIPYARD_OUTPUT_DIRS"])
urls = json.loads(os.environ["SHIPYARD_OUTPUT_URLS"])
for index, (folder, url) in enumerate(zip(folders, urls)):
    try:
        with tempfile.TemporaryFile() as spool:
            with tarfile.open(fileobj=spool, mode="w") as tar:
                tar.add(folder, arcname=".")
            size = spool.tell()
            spool.seek(0)
            request = urllib.request.Request(url, data=spool, method="PUT", headers={
                "Content-Length": str(size), "Content-Type": "application/x-tar"})
            urllib.request.urlopen(request, timeout=600).close()
    except Exception as exc:
        sys.exit("shipyard: output %s (%s) could not be uploaded: %s: %s"
                 % (index, folder, type(exc).__name__, exc))
'''

# PUTs files to their presigned URLs (SHIPYARD_PUSH: [[path, url], …]); a file missing is skipped. With a
# process id as its argument it pushes what changed every SHIPYARD_PUSH_EVERY_S seconds while that process
# lives, else once. Quiet unless a PUT fails (then run-svc reads what came last).
PUSH_SCRIPT = '''\
import json, os, sys, time, urllib.request
pairs = json.loads(os.environ["SHIPYARD_PUSH"])
watched = int(sys.argv[1]) if len(sys.argv) > 1 else 0
every = float(os.environ.get("SHIPYARD_PUSH_EVERY_S", "5"))
sent = {}
def push():
    for path, url in pairs:
        try:
            seen = os.stat(path)
        except OSError:
            continue
        mark = (seen.st_size, seen.st_mtime_ns)
        if sent.get(path) == mark:
            continue
        try:
            with open(path, "rb") as source:
                request = urllib.request.Request(url, data=source, method="PUT", headers={
                    "Content-Length": str(seen.st_size), "Content-Type": "application/octet-stream"})
                urllib.request.urlopen(request, timeout=600).close()
            sent[path] = mark
        except Exception as exc:
            name = os.path.basename(path)
            print("shipyard: %s could not be sent: %s: %s" % (name, type(exc).__name__, exc), file=sys.stderr)
def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False
while watched and alive(watched):
    push()
    time.sleep(every)
push()
'''


# Sends the files a study's File or TensorFlowEvent collector reads (SHIPYARD_COLLECT: {"base": the job's
# working directory, "path": the collector's path there, "max": bytes}) to SHIPYARD_COLLECT_URL as JSON, path
# → base64 of the bytes: read by ``job_files``'s own reader (its source heads the script), so never through a
# link, nothing but the account's regular files, nothing above the working directory, at most "max" bytes.
# With a process id as its argument it sends them every SHIPYARD_PUSH_EVERY_S seconds, when they changed,
# while that process lives; else once. Quiet unless a PUT fails.
_COLLECT_DRIVER = '''
import hashlib, time, urllib.request
collect = json.loads(os.environ["SHIPYARD_COLLECT"])
collect_url = os.environ["SHIPYARD_COLLECT_URL"]
watched = int(sys.argv[1]) if len(sys.argv) > 1 else 0
every = float(os.environ.get("SHIPYARD_PUSH_EVERY_S", "5"))
last = [b""]
def send():
    files = read_job_files(collect["base"], collect["path"], int(collect["max"]), os.getuid())
    body = json.dumps({name: base64.b64encode(data).decode() for name, data in files.items()}).encode()
    digest = hashlib.sha256(body).digest()
    if digest == last[0]:
        return
    try:
        request = urllib.request.Request(collect_url, data=body, method="PUT", headers={
            "Content-Length": str(len(body)), "Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=600).close()
        last[0] = digest
    except Exception as exc:
        print("shipyard: the study's metrics files could not be sent: %s: %s" % (type(exc).__name__, exc),
              file=sys.stderr)
def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False
while watched and alive(watched):
    send()
    waited = 0.0
    while waited < every and alive(watched):  # the last send follows the command's end closely
        time.sleep(0.2)
        waited += 0.2
send()
'''
_READER = Path(job_files.__file__).read_text()
COLLECT_SCRIPT = _READER[:_READER.index('\nif __name__ == "__main__":')] + _COLLECT_DRIVER
COLLECTED = "collected.json"  # the staged object the job sends its collector's files to
COLLECTED_MAX = 16 << 20  # the most of them the job sends (a study's FILES_READ_MAX)
COLLECTED_NAME_MAX = 4096  # of one file's path
COLLECTED_NAMES_MAX = 4 << 20  # of the JSON around the files' bytes (their names)


def collect_spec(base: str, path: str) -> str:
    """SHIPYARD_COLLECT for the job: the collector's ``path`` under the working directory ``base``."""
    return json.dumps({"base": base, "path": path or "/", "max": COLLECTED_MAX})


async def read_collected(staging: StagedReads, name: str, max_bytes: int) -> dict[str, bytes]:
    """The files a job sent to the staged object ``name`` (``COLLECT_SCRIPT``), by path, at most
    ``max_bytes`` of them in all; {} when it sent none. The job's trial may have written anything there:
    an object larger than such files can make is not read at all, and what is read is checked."""
    limit = (COLLECTED_MAX + 2) // 3 * 4 + COLLECTED_NAMES_MAX  # what the job sends at most: base64, names
    try:
        part = await staging.read_staged(name, 0, limit + 1)
    except FileNotFoundError:
        return {}
    if part.size > limit:
        log.warning("the metrics files sent to %s are %d bytes, more than the %d such files make: not read",
                    name, part.size, limit)
        return {}
    return await asyncio.to_thread(parse_collected, part.data, min(max_bytes, COLLECTED_MAX))


def parse_collected(data: bytes, max_bytes: int) -> dict[str, bytes]:
    """``COLLECT_SCRIPT``'s JSON as files: at most FILES_MAX of them, ``max_bytes`` in all, each named by
    an absolute path; whatever is not that is left out."""
    try:
        sent = json.loads(data)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(sent, dict):
        return {}
    files: dict[str, bytes] = {}
    left = max_bytes
    for path, encoded in list(sent.items())[:job_files.FILES_MAX]:
        if not (isinstance(encoded, str) and path.startswith("/") and len(path) <= COLLECTED_NAME_MAX
                and "\0" not in path):
            continue
        try:
            content = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            continue
        if len(content) > left:
            break
        files[path] = content
        left -= len(content)
    return files


def pack(stage: Path, tar_path: Path) -> None:
    """Each folder of ``stage`` under its own name, owned by no one in particular (the user of the pod or
    job that unpacks it)."""
    def anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mode |= 0o200 if info.isdir() else 0  # the run may write in its own folders
        return info

    with tarfile.open(tar_path, "w") as tar:
        for top in sorted(stage.iterdir()):
            tar.add(top, arcname=top.name, filter=anonymous)


def unpack(tar_path: Path, target: Path) -> None:
    """An output's tar, as the pod or job made it: nothing lands outside ``target``, no devices, no odd
    modes."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with tarfile.open(tar_path) as tar:
        tar.extractall(target, filter="data")


async def store_staged_outputs(staging: Staging, tree: BlobTree, local: Path, paths: list[str],
                               object_of: Callable[[int], str], sender: str) -> dict[str, str]:
    """Each output's tar, as the ``sender`` (the pod, the Slurm job) staged it, stored as a tree: mount path
    ("" for SHIPYARD_OUTPUT) → manifest digest. FileNotFoundError names an output that never came back.
    ``local`` is the run's own folder, for the tar and its unpacked files while they are stored."""
    stored: dict[str, str] = {}
    for index, path in enumerate(paths):
        tar, unpacked = local / f"output-{index}.tar", local / "fetched"
        try:
            await staging.get_staged(object_of(index), tar)
        except FileNotFoundError:
            raise FileNotFoundError(f"the output at {path or 'SHIPYARD_OUTPUT'} did not come back from "
                                    f"{sender} (the end of its log says why)") from None
        try:
            await asyncio.to_thread(unpack, tar, unpacked)
            stored[path] = (await tree.store_tree(unpacked)).digest
        finally:
            await asyncio.to_thread(tar.unlink, True)
            await asyncio.to_thread(shutil.rmtree, unpacked, True)
    return stored
