"""Files staged in the S3 blob store for those that hold no keys but presigned URLs — a Kubernetes run's
pod, a job submitted through slurmrestd: the staging port, the stdlib-only Python scripts that fetch a
run's code and inputs and send its files back, and the tars they move."""

from __future__ import annotations

import asyncio
import shutil
import tarfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from shipyard.kit.blob.tree import BlobTree

URL_LIFETIME = timedelta(days=7)  # presigned URLs (S3's longest): a job queued longer cannot fetch


class Staging(Protocol):
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
