"""The rules of volume, NFS, host path and FSx sources, and of mount paths
(domain/sources/file_systems.py)."""

from __future__ import annotations

import pytest
from repo_source_checks import FSX_DNS, referenced, refused
from shipyard_repo.domain.sources import (
    FsxSource,
    HostPathSource,
    NfsSource,
    VolumeSource,
)
from shipyard_repo.domain.sources.file_systems import check_mount_path


@pytest.mark.parametrize(("source", "expected"), [
    (VolumeSource("data"), VolumeSource("data")),
    (VolumeSource("team-a.datasets", subpath="/mnist/"), VolumeSource("team-a.datasets", subpath="mnist")),
    (VolumeSource("a" * 253), VolumeSource("a" * 253)),
    (VolumeSource("0pvc9"), VolumeSource("0pvc9")),
])
def test_good_volumes(source: VolumeSource, expected: VolumeSource) -> None:
    assert referenced(source) == expected


@pytest.mark.parametrize(("source", "field"), [
    (VolumeSource(""), "volume"), (VolumeSource("Data"), "volume"), (VolumeSource("-data"), "volume"),
    (VolumeSource("data-"), "volume"), (VolumeSource("da_ta"), "volume"), (VolumeSource("a..b"), "volume"),
    (VolumeSource("a" * 254), "volume"), (VolumeSource("data", subpath="a/../../etc"), "subpath"),
    (VolumeSource("data", subpath="a//b"), "subpath"),
])
def test_bad_volumes(source: VolumeSource, field: str) -> None:
    assert refused(referenced, source).field == f"repo.source.volume.{field}"


@pytest.mark.parametrize(("source", "allow_private"), [
    (NfsSource("nfs.example.com", "/mnt/dkube/mnist"), False),
    (NfsSource("192.168.200.1", "/mnt/dkube/mnist"), True),
    (NfsSource("fd00::5", "/"), True),
    (NfsSource("nas", "/exports/data"), True),
])
def test_good_nfs(source: NfsSource, allow_private: bool) -> None:
    assert referenced(source, allow_private) == source


@pytest.mark.parametrize(("source", "field", "problem"), [
    (NfsSource("192.168.200.1", "/mnt/data"), "server", "is a private address"),
    (NfsSource("", "/mnt/data"), "server", "must not be empty"),
    (NfsSource("nfs.example.com:2049", "/mnt/data"), "server", "give the port in its own field"),
    (NfsSource("nfs.example.com", ""), "path", "must not be empty"),
    (NfsSource("nfs.example.com", "mnt/data"), "path", "absolute"),
    (NfsSource("nfs.example.com", "/mnt/../etc"), "path", "'..'"),
    (NfsSource("nfs.example.com", "/mnt//data"), "path", "'//'"),
])
def test_bad_nfs(source: NfsSource, field: str, problem: str) -> None:
    err = refused(referenced, source)
    assert err.field == f"repo.source.nfs.{field}"
    assert problem in err.problem


@pytest.mark.parametrize("path", ["/mnt/shared/data", "/data", "/home/alice/mnist", "/var/lib/data",
                                  "/etcetera/data", "/srv/a b", "/procedures"])
def test_good_host_paths(path: str) -> None:
    assert referenced(HostPathSource(path)) == HostPathSource(path)


@pytest.mark.parametrize(("path", "problem"), [
    ("", "must not be empty"), ("data", "absolute"), ("./data", "absolute"), ("/", "whole file system"),
    ("/data/", "must not end with '/' (write '/data')"), ("//data", "'//'"), ("/a//b", "'//'"),
    ("/a/../b", "'..'"), ("/a/./b", "'.'"), ("/a\x00b", "control characters"),
    ("/a\nb", "control characters"),
    ("/" + "a" * 4096, "at most 4096"), ("/etc", "/etc"), ("/etc/passwd", "/etc"), ("/proc/1", "/proc"),
    ("/sys", "/sys"), ("/dev/sda", "/dev"), ("/run/containerd", "/run"), ("/var/run/docker.sock", "/var/run"),
    ("/boot", "/boot"), ("/var/lib/kubelet/pods", "/var/lib/kubelet"), ("/var/lib/docker", "/var/lib/docker"),
])
def test_bad_host_paths(path: str, problem: str) -> None:
    err = refused(referenced, HostPathSource(path))
    assert err.field == "repo.source.hostpath.path"
    assert problem in err.problem


@pytest.mark.parametrize("source", [
    FsxSource(FSX_DNS, "abcdef12", "fs-0123456789abcdef0"),
    FsxSource(FSX_DNS, "fsx", "fs-01234567"),
    FsxSource(FSX_DNS + ".", "a_b-c", "fs-0123456789abcdef0"),
])
def test_good_fsx(source: FsxSource) -> None:
    assert referenced(source) == source


@pytest.mark.parametrize(("source", "field"), [
    (FsxSource("", "fsx", "fs-01234567"), "dns_name"),
    (FsxSource("10.0.0.4", "fsx", "fs-01234567"), "dns_name"),
    (FsxSource("203.0.113.9", "fsx", "fs-01234567"), "dns_name"),
    (FsxSource("fsx_.example.com-", "fsx", "fs-01234567"), "dns_name"),
    (FsxSource("localhost", "fsx", "fs-01234567"), "dns_name"),
    (FsxSource(FSX_DNS, "", "fs-01234567"), "mount_name"),
    (FsxSource(FSX_DNS, "abcdefghi", "fs-01234567"), "mount_name"),
    (FsxSource(FSX_DNS, "a/b", "fs-01234567"), "mount_name"),
    (FsxSource(FSX_DNS, "fsx", ""), "volume_handle"),
    (FsxSource(FSX_DNS, "fsx", "fs-0123456"), "volume_handle"),
    (FsxSource(FSX_DNS, "fsx", "fs-0123456789abcdef"), "volume_handle"),
    (FsxSource(FSX_DNS, "fsx", "fs-0123456789ABCDEF0"), "volume_handle"),
    (FsxSource(FSX_DNS, "fsx", "fs0123456789abcdef0"), "volume_handle"),
    (FsxSource(FSX_DNS, "fsx", "fs-0123456789abcdefg"), "volume_handle"),
])
def test_bad_fsx(source: FsxSource, field: str) -> None:
    assert refused(referenced, source).field == f"repo.source.fsx.{field}"


@pytest.mark.parametrize("path", ["/mnt/data", "/mnt/model", "/model", "/opt/dkube/input",
                                  "/opt/dkube/output", "/data", "/home/user/x y", "/etcetera", "/devices",
                                  "/a" * 2048])
def test_good_mount_paths(path: str) -> None:
    assert check_mount_path("run.inputs[0].mount_path", path) == path


@pytest.mark.parametrize(("path", "problem"), [
    pytest.param("", "must not be empty", id="empty"),
    pytest.param("mnt/data", "absolute", id="relative"),
    pytest.param("/", "whole file system", id="root"),
    pytest.param("/mnt/../etc", "'..'", id="dotdot"),
    pytest.param("/..", "'..'", id="root-dotdot"),
    pytest.param("/mnt/./data", "'.'", id="dot"),
    pytest.param("//mnt", "'//'", id="leading-double-slash"),
    pytest.param("/mnt//data", "'//'", id="double-slash"),
    pytest.param("/mnt/data/", "must not end with '/'", id="trailing-slash"),
    pytest.param("/mnt/da\x00ta", "control characters", id="nul"),
    pytest.param("/mnt/da\nta", "control characters", id="newline"),
    pytest.param("/mnt/\x1b[31m", "control characters", id="escape"),
    pytest.param("/" + "a" * 4096, "at most 4096", id="too-long"),
    pytest.param("/proc", "/proc", id="proc"),
    pytest.param("/proc/self/environ", "/proc", id="proc-inside"),
    pytest.param("/sys/kernel", "/sys", id="sys"),
    pytest.param("/dev", "/dev", id="dev"),
    pytest.param("/dev/shm", "/dev", id="dev-inside"),
    pytest.param("/etc", "/etc", id="etc"),
    pytest.param("/etc/shipyard", "/etc", id="etc-shipyard"),
    pytest.param("/etc/dkube/sql.conf", "/etc", id="etc-inside"),
])
def test_bad_mount_paths(path: str, problem: str) -> None:
    err = refused(check_mount_path, "run.inputs[0].mount_path", path)
    assert err.field == "run.inputs[0].mount_path"
    assert problem in err.problem
