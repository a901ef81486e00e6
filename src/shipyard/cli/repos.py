"""``shipyard code|dataset|featureset|model …`` and ``shipyard repo move``: repos and versions."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from google.protobuf.field_mask_pb2 import FieldMask
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from shipyard.cli import output
from shipyard.cli.compare import upstream_summary, write_csv
from shipyard.cli.context import client, console, errors
from shipyard.cli.output import Format, OutputOpt
from shipyard.client.connection import Client, ClientError
from shipyard.contracts.repo.v1 import repos_pb2 as pb
from shipyard.kit.archive import ArchiveError, archive_kind, extract
from shipyard.kit.units import human_size

KINDS: dict[str, pb.RepoKind] = {
    "code": pb.REPO_KIND_CODE,
    "dataset": pb.REPO_KIND_DATASET,
    "featureset": pb.REPO_KIND_FEATURESET,
    "model": pb.REPO_KIND_MODEL,
}
SOURCES = ("git", "s3", "gcs", "volume", "nfs", "hostpath", "redshift", "sql", "fsx", "url", "upload", "none")
Opt = typer.Option


def parse_ref(ref: str) -> tuple[str, int]:
    """``digits@2`` → ("digits", 2); ``digits`` → ("digits", 0: the latest)."""
    name, at, number = ref.partition("@")
    if at and not number.isdigit():
        raise typer.BadParameter(f"{ref!r}: write NAME or NAME@VERSION (a number)")
    return name, int(number) if at else 0


def _bar() -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=False,
    )


def build_source(kind: str, source: str | None, opts: dict[str, object]) -> pb.Source:
    """The source message from the command's options; the kind of source is guessed when obvious."""
    if source is None:
        source = (
            "git"
            if opts.get("git")
            else "upload"
            if opts.get("upload")
            else "url"
            if opts.get("url")
            else "none"
        )
    if source not in SOURCES:
        raise typer.BadParameter(f"--source must be one of {', '.join(SOURCES)}")
    values = {
        "git": lambda: pb.GitSource(
            url=str(opts.get("git") or ""),
            branch=str(opts["branch"] or ""),
            commit=str(opts["commit"] or ""),
            path=str(opts["path"] or ""),
            credential=str(opts["credential"] or ""),
        ),
        "s3": lambda: pb.S3Source(
            bucket=str(opts["bucket"] or ""),
            prefix=str(opts["prefix"] or ""),
            endpoint=str(opts["endpoint"] or ""),
            aws=bool(opts["aws"]),
            region=str(opts["region"] or ""),
            credential=str(opts["credential"] or ""),
        ),
        "gcs": lambda: pb.GcsSource(
            bucket=str(opts["bucket"] or ""),
            prefix=str(opts["prefix"] or ""),
            credential=str(opts["credential"] or ""),
        ),
        "volume": lambda: pb.VolumeSource(volume=str(opts["volume"] or ""), subpath=str(opts["path"] or "")),
        "nfs": lambda: pb.NfsSource(server=str(opts["server"] or ""), path=str(opts["path"] or "")),
        "hostpath": lambda: pb.HostPathSource(path=str(opts["path"] or "")),
        "redshift": lambda: pb.RedshiftSource(
            endpoint=str(opts["endpoint"] or ""),
            database=str(opts["database"] or ""),
            credential=str(opts["credential"] or ""),
        ),
        "sql": lambda: pb.SqlSource(
            provider=str(opts["provider"] or ""),
            host=str(opts["server"] or ""),
            port=int(opts["port"] or 0),  # type: ignore[call-overload]
            database=str(opts["database"] or ""),
            credential=str(opts["credential"] or ""),
            connection=str(opts["connection"] or ""),
            dsn=str(opts["dsn"] or ""),
        ),
        "fsx": lambda: pb.FsxSource(
            dns_name=str(opts["server"] or ""),
            mount_name=str(opts["mount_name"] or ""),
            volume_handle=str(opts["volume"] or ""),
        ),
        "url": lambda: pb.UrlSource(url=str(opts.get("url") or ""), extract=bool(opts["extract"])),
        "upload": lambda: pb.UploadSource(
            filename=Path(str(opts.get("upload") or "")).name, extract=bool(opts["extract"])
        ),
        "none": lambda: pb.NoSource(),
    }
    message = pb.Source()
    getattr(message, source).CopyFrom(values[source]())
    return message


def repo_app(kind: str) -> typer.Typer:
    """The commands of one repo kind."""
    number = KINDS[kind]
    app = typer.Typer(
        help=f"{kind.capitalize()} repos" + ("" if kind == "code" else " and their versions."),
        no_args_is_help=True,
    )

    @app.command()
    def create(
        name: str,
        project: Annotated[str, Opt(help='The project it belongs to (default: none, "All Projects").')] = "",
        description: Annotated[str, Opt()] = "",
        tag: Annotated[list[str] | None, Opt(help="A tag (repeatable).")] = None,
        versioned: Annotated[bool, Opt(help="Versioned by the platform (DVS) or referenced in place.")] = (
            kind != "code"
        ),
        source: Annotated[str | None, Opt(help=f"One of {', '.join(SOURCES)}.")] = None,
        git: Annotated[str | None, Opt(help="git URL (https://, git@…, ssh://, file://).")] = None,
        branch: Annotated[str | None, Opt()] = None,
        commit: Annotated[str | None, Opt()] = None,
        path: Annotated[
            str | None, Opt(help="Path: in the git repo, on the host, NFS server or volume.")
        ] = None,
        credential: Annotated[str | None, Opt(help="Name of a stored credential.")] = None,
        endpoint: Annotated[str | None, Opt(help="S3 endpoint URL (MinIO) or Redshift endpoint.")] = None,
        bucket: Annotated[str | None, Opt()] = None,
        prefix: Annotated[str | None, Opt()] = None,
        aws: Annotated[bool, Opt(help="The bucket is on AWS S3.")] = False,
        region: Annotated[str | None, Opt()] = None,
        volume: Annotated[str | None, Opt(help="Kubernetes volume claim, or FSx volume handle.")] = None,
        server: Annotated[str | None, Opt(help="NFS server, SQL host or FSx DNS name.")] = None,
        port: Annotated[int, Opt(help="SQL port (0: the provider's default).")] = 0,
        database: Annotated[str | None, Opt()] = None,
        provider: Annotated[str | None, Opt(help="SQL provider: mysql, mssql, oracle.")] = None,
        connection: Annotated[str | None, Opt(help="SQL connection: direct, odbc, jdbc.")] = None,
        dsn: Annotated[str | None, Opt(help="ODBC DSN or JDBC URL.")] = None,
        mount_name: Annotated[str | None, Opt(help="FSx mount name.")] = None,
        url: Annotated[str | None, Opt(help="A public URL.")] = None,
        upload: Annotated[
            Path | None, Opt(help="A file, archive or directory to upload as version 1.")
        ] = None,
        extract: Annotated[bool, Opt(help="Extract the uploaded (or downloaded) archive.")] = False,
        message: Annotated[str, Opt(help="Message of the first version (with --upload).")] = "",
        spec: Annotated[Path | None, Opt(help="Feature sets: a feature specification (YAML).")] = None,
    ) -> None:
        """Create a repo; with --upload (or --spec for a feature set), its first version too."""
        options = dict(locals())
        if spec is not None:
            options["upload"] = spec
        repo = pb.Repo(
            kind=number,
            name=name,
            project=project,
            description=description,
            tags=tag or [],
            versioning=pb.VERSIONING_DVS if versioned else pb.VERSIONING_NONE,
            source=build_source(kind, source, options),
        )
        with client() as c:
            made = c.call(c.repos.CreateRepo, pb.CreateRepoRequest(repo=repo))
            console.print(f"[green]Created {kind}[/] [bold]{made.name}[/] ({made.access})")
            if spec is not None:
                _set_spec(c, name, spec, 0)
            elif upload is not None:
                _push(c, number, name, upload, extract, message, 0)

    @app.command("list")
    def list_(
        project: Annotated[str | None, Opt(help="Only this project's.")] = None,
        no_project: Annotated[bool, Opt(help="Only those of no project.")] = False,
        tag: Annotated[str, Opt(help="Only those with this tag.")] = "",
        prefix: Annotated[str, Opt(help="Only names starting with this.")] = "",
        fmt: OutputOpt = Format.table,
    ) -> None:
        """List repos in a table."""
        found: list[pb.Repo] = []
        with client() as c:
            token = ""
            while True:
                reply = c.call(
                    c.repos.ListRepos,
                    pb.ListReposRequest(
                        kind=number,
                        project=project or "",
                        no_project=no_project,
                        tag=tag,
                        name_prefix=prefix,
                        page_size=500,
                        page_token=token,
                    ),
                )
                found.extend(reply.repos)
                token = reply.next_page_token
                if not token:
                    break
        if output.emit(found, fmt):
            return
        table = output.table("Name", "Project", "Source", "Versioning", "Latest", "Status", "Tags", "Owner")
        for r in found:
            table.add_row(
                r.name,
                r.project or "—",
                r.source.WhichOneof("kind") or "none",
                pb.Versioning.Name(r.versioning).removeprefix("VERSIONING_").lower(),
                str(r.latest_version or "—"),
                pb.RepoStatus.Name(r.status).removeprefix("REPO_STATUS_").lower(),
                ", ".join(r.tags),
                r.owner,
            )
        console.print(table if found else f"[dim]No {kind} repos.[/]")

    @app.command()
    def get(name: str, fmt: OutputOpt = Format.table) -> None:
        """Show one repo: its fields and source."""
        with client() as c:
            r = c.call(c.repos.GetRepo, pb.GetRepoRequest(kind=number, name=name))
        if output.emit(r, fmt):
            return
        which = r.source.WhichOneof("kind") or "none"
        rows = [

            ("name", r.name),
            ("project", r.project or "—"),
            ("description", r.description),
            ("tags", ", ".join(r.tags)),
            ("source", f"{which} ({r.access})"),
            ("status", pb.RepoStatus.Name(r.status).removeprefix("REPO_STATUS_").lower()),
            ("latest version", str(r.latest_version or "—")),
            ("owner", r.owner),
            ("revision", str(r.revision)),
        ]
        part = getattr(r.source, which)
        rows += [(f"  {field.name}", str(getattr(part, field.name)))
                 for field in part.DESCRIPTOR.fields if getattr(part, field.name)]
        console.print(output.fields(rows))

    @app.command()
    def edit(
        name: str,
        new_name: Annotated[str | None, Opt("--name")] = None,
        description: Annotated[str | None, Opt()] = None,
        tag: Annotated[list[str] | None, Opt(help="Replace the tags (repeatable).")] = None,
        project: Annotated[str | None, Opt(help='Move to this project ("" for none).')] = None,
    ) -> None:
        """Change a repo's name, description, tags or project."""
        paths = [
            p
            for p, v in (
                ("name", new_name),
                ("description", description),
                ("tags", tag),
                ("project", project),
            )
            if v is not None
        ]
        changes = pb.Repo(
            name=new_name or "", description=description or "", tags=tag or [], project=project or ""
        )
        with client() as c:
            c.call(
                c.repos.UpdateRepo,
                pb.UpdateRepoRequest(
                    kind=number,
                    name=name,
                    repo=changes,
                    update_mask=FieldMask(paths=paths),
                ),
            )
        console.print(f"[green]Updated {kind}[/] [bold]{new_name or name}[/]")

    @app.command()
    def delete(
        name: str,
        yes: Annotated[bool, Opt("--yes", help="Do not ask.")] = False,
        force: Annotated[bool, Opt(help="Even when runs have read its versions.")] = False,
    ) -> None:
        """Delete a repo and its versions."""
        if not yes:
            typer.confirm(f"Delete {kind} {name!r} and all its versions?", abort=True)
        with client() as c:
            c.call(c.repos.DeleteRepo, pb.DeleteRepoRequest(kind=number, name=name, force=force))
        console.print(f"[green]Deleted {kind}[/] [bold]{name}[/]")

    if kind != "code":
        _version_commands(app, kind, number)
    if kind == "featureset":
        _featureset_commands(app)
    return app


def _set_spec(c: Client, name: str, spec: Path, parent: int) -> None:
    version = c.call(
        c.repos.SetFeatureSpec,
        pb.SetFeatureSpecRequest(featureset=name, spec_yaml=spec.read_text(), parent_version=parent),
    )
    console.print(f"[green]Version {version.number}[/] of {name}: {version.message}")


def _featureset_commands(app: typer.Typer) -> None:
    @app.command("set-spec")
    def set_spec(
        name: str, spec: Path, parent: Annotated[int, Opt(help="Fail unless this is the latest.")] = 0
    ) -> None:
        """Upload a feature specification: the next version's featurespec.yaml."""
        with client() as c:
            _set_spec(c, name, spec, parent)


def _version_commands(app: typer.Typer, kind: str, number: pb.RepoKind) -> None:
    @app.command("push")
    def push_(
        name: str,
        path: Path,
        extract_archive: Annotated[bool, Opt("--extract", help="Extract an archive first.")] = False,
        message: Annotated[str, Opt("-m", "--message")] = "",
        parent: Annotated[int, Opt(help="Fail if the latest version is not this one.")] = 0,
    ) -> None:
        """Push the next version from a directory, a file or an archive; only new content travels."""
        with client() as c:
            _push(c, number, name, path, extract_archive, message, parent)

    @app.command("delete-version")
    def delete_version(
        ref: str, force: Annotated[bool, Opt(help="Even when runs have read it.")] = False
    ) -> None:
        """Delete one version (NAME@VERSION); its number is never reused."""
        name, version = parse_ref(ref)
        if not version:
            raise typer.BadParameter("name the version: NAME@VERSION")
        with client() as c:
            c.call(
                c.repos.DeleteVersion,
                pb.DeleteVersionRequest(kind=number, repo=name, number=version, force=force),
            )
        console.print(f"[green]Deleted[/] {name}@{version}")

    @app.command()
    def versions(name: str, fmt: OutputOpt = Format.table) -> None:
        """List a repo's versions, newest first."""
        found: list[pb.Version] = []
        with client() as c:
            token = ""
            while True:
                reply = c.call(
                    c.repos.ListVersions,
                    pb.ListVersionsRequest(kind=number, repo=name, page_size=500, page_token=token),
                )
                found.extend(reply.versions)
                token = reply.next_page_token
                if not token:
                    break
        if output.emit(found, fmt):
            return
        table = output.table("Version", "Files", "Size", "Created", "By", "Run", "Message")
        for v in found:
            table.add_row(
                str(v.number),
                f"{v.file_count:,}",
                human_size(v.size_bytes),
                v.create_time.ToDatetime().strftime("%Y-%m-%d %H:%M"),
                v.owner,
                made_by(v),
                v.message,
            )
        console.print(table)

    @app.command()
    def pull(ref: str, dest: Path) -> None:
        """Write a version's files into a directory (NAME or NAME@VERSION)."""
        name, version = parse_ref(ref)
        with client() as c:
            found = c.call(c.repos.GetVersion, pb.GetVersionRequest(kind=number, repo=name, number=version))
            from shipyard.client import transfer  # the HTTP client: only to move content

            manifest = transfer.read_manifest(c, found.manifest_digest)
            with _bar() as bar:
                task = bar.add_task(f"pull {name}@{found.number}", total=manifest.size)
                got = transfer.pull(c, manifest, dest, lambda n: bar.advance(task, n))
        console.print(f"[green]Pulled[/] {name}@{found.number} into {dest} ({human_size(got)} downloaded)")

    @app.command("export")
    def export_(ref: str, out: Annotated[Path, Opt("-o", "--output", help="The .tar.gz to write.")]) -> None:
        """Export a version as a .tar.gz archive."""
        name, version = parse_ref(ref)
        with client() as c:
            found = c.call(c.repos.GetVersion, pb.GetVersionRequest(kind=number, repo=name, number=version))
            from shipyard.client import transfer  # the HTTP client: only to move content

            manifest = transfer.read_manifest(c, found.manifest_digest)
            with _bar() as bar:
                task = bar.add_task(f"export {name}@{found.number}", total=manifest.size)
                transfer.export(c, manifest, out, lambda n: bar.advance(task, n))
        console.print(f"[green]Exported[/] {name}@{found.number} to {out}")

    @app.command()
    def compare(left: str, right: str,
                csv_path: Annotated[Path | None, Opt("--csv", help="Also write the table as CSV.")] = None,
                ) -> None:
        """Compare two versions side by side: metadata, metrics, lineage and files (NAME@N NAME@M)."""
        (lname, lnum), (rname, rnum) = parse_ref(left), parse_ref(right)
        with client() as c:
            reply = c.call(
                c.repos.CompareVersions,
                pb.CompareVersionsRequest(
                    kind=number, repo=lname, number=lnum, other_repo=rname, other_number=rnum
                ),
            )
            ups = [upstream_summary(c, kind, f"{v.repo}@{v.number}") for v in (reply.left, reply.right)]
        a, b = reply.left, reply.right
        rows = [
            ("files", f"{a.file_count:,}", f"{b.file_count:,}"),
            ("size", human_size(a.size_bytes), human_size(b.size_bytes)),
            ("created", a.create_time.ToDatetime().isoformat(timespec="seconds"),
             b.create_time.ToDatetime().isoformat(timespec="seconds")),
            ("by", a.owner, b.owner),
            ("run", made_by(a), made_by(b)),
            ("message", a.message, b.message),
            *((f"metric {k}", _num(a.metrics.get(k)), _num(b.metrics.get(k)))
              for k in sorted(set(a.metrics) | set(b.metrics))),
            *((f"param {k}", a.params.get(k, "—"), b.params.get(k, "—"))
              for k in sorted(set(a.params) | set(b.params))),
            *((k, ups[0].get(k, "—"), ups[1].get(k, "—")) for k in dict.fromkeys([*ups[0], *ups[1]])),
        ]
        header = ("", f"{a.repo}@{a.number}", f"{b.repo}@{b.number}")
        table = output.table(*header)
        for label, x, y in rows:
            table.add_row(f"[bold]{escape(label)}[/]" if x != y else escape(label), escape(x), escape(y))
        console.print(table)
        if csv_path is not None:
            write_csv(csv_path, header, rows)
            console.print(f"[dim]Written to {csv_path}[/]")
        changes = output.table("File", "Change", "Before", "After")
        for change in reply.changes:
            what = (
                "added"
                if not change.HasField("before")
                else "removed"
                if not change.HasField("after")
                else "changed"
            )
            changes.add_row(
                change.path,
                what,
                human_size(change.before.size) if change.HasField("before") else "",
                human_size(change.after.size) if change.HasField("after") else "",
            )
        console.print(changes if changes.row_count else "[dim]Same files.[/]")
        console.print(f"{reply.unchanged_files:,} files unchanged")


def _push(
    c: Client,
    number: pb.RepoKind,
    name: str,
    path: Path,
    extract_archive: bool,
    message: str,
    parent: int,
) -> None:
    from shipyard.client import transfer  # the HTTP client: only to move content

    if not path.exists():
        errors.print(f"[bold red]INVALID_ARGUMENT[/]: {path} does not exist")
        raise typer.Exit(1)
    if path.is_dir() and not extract_archive and not _upload_only():
        with console.status(f"The platform is reading {path} …"):
            imported = transfer.import_path(c, number, name, path, message=message, parent_version=parent)
        if imported is not None:
            version = imported.version
            console.print(
                f"[green]Version {version.number}[/] of {name}: {output.count(version.file_count, 'file')}, "
                f"{human_size(version.size_bytes)}; read by the platform from {path} (nothing uploaded)"
            )
            return
    with tempfile.TemporaryDirectory(prefix="shipyard-push-") as work:
        root = _content_root(path, extract_archive, Path(work))
        with _bar() as bar:
            task = bar.add_task("hash", total=None)
            manifest = transfer.scan_tree(
                root, lambda done, total: bar.update(task, completed=done, total=total)
            )
            upload = bar.add_task("upload", total=None)
            pushed = transfer.push(
                c,
                number,
                name,
                root,
                manifest,
                message=message,
                parent_version=parent,
                progress=lambda n: bar.advance(upload, n),
                plan=lambda total: bar.update(upload, total=total),
            )
    console.print(
        f"[green]Version {pushed.version.number}[/] of {name}: {output.count(manifest.file_count, 'file')}, "
        f"{human_size(manifest.size)}; uploaded {output.count(pushed.uploaded_blobs, 'new blob')} "
        f"({human_size(pushed.uploaded_bytes)})"
    )


def _upload_only() -> bool:
    """SHIPYARD_UPLOAD_ONLY=1: always send the files, never ask the platform to read them itself."""
    return os.environ.get("SHIPYARD_UPLOAD_ONLY", "").lower() in ("1", "true", "yes")


def _content_root(path: Path, extract_archive: bool, work: Path) -> Path:
    """The directory whose files become the version: ``path``, or an archive extracted, or a
    directory holding the single file ``path``."""
    if extract_archive:
        if archive_kind(path.name) is None:
            errors.print(f"[bold red]INVALID_ARGUMENT[/]: {path.name} is not a .tar, .tar.gz, .tgz or .zip")
            raise typer.Exit(1)
        try:
            root = work / "extracted"
            extract(path, root)
        except ArchiveError as exc:
            errors.print(f"[bold red]INVALID_ARGUMENT[/]: {escape(path.name)}: {escape(str(exc))}; "
                         "nothing was uploaded", soft_wrap=True)
            raise typer.Exit(1) from None
        return root
    if path.is_file():
        root = work / "file"
        root.mkdir()
        try:
            os.link(path, root / path.name)
        except OSError:  # another file system: a copy it is
            shutil.copyfile(path, root / path.name)
        return root
    return path


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.6g}"


move = typer.Typer(help="Repos of any kind.", no_args_is_help=True)


@move.command("move")
def move_(
    name: str,
    project: Annotated[str, Opt(help='The project to move it to ("" for none).')],
    kind: Annotated[
        str | None, Opt(help="code, dataset, featureset or model (when the name is ambiguous).")
    ] = None,
) -> None:
    """Move a repo to another project."""
    with client() as c:
        kinds = [kind] if kind else list(KINDS)
        found = [k for k in kinds if _exists(c, KINDS[k], name)]
        if len(found) != 1:
            errors.print(
                f"[bold red]{'NOT_FOUND' if not found else 'INVALID_ARGUMENT'}[/]: "
                + (
                    f"no repo named {name!r}"
                    if not found
                    else f"{name!r} is a {' and a '.join(found)}: say which with --kind"
                )
            )
            raise typer.Exit(1)
        c.call(
            c.repos.UpdateRepo,
            pb.UpdateRepoRequest(
                kind=KINDS[found[0]],
                name=name,
                repo=pb.Repo(project=project),
                update_mask=FieldMask(paths=["project"]),
            ),
        )
    console.print(f"[green]Moved {found[0]}[/] [bold]{name}[/] to {project or 'no project'}")


def _exists(c: Client, number: pb.RepoKind, name: str) -> bool:
    try:
        c.call(c.repos.GetRepo, pb.GetRepoRequest(kind=number, name=name))
    except ClientError as exc:
        if exc.code == "NOT_FOUND":
            return False
        raise
    return True


def made_by(version: pb.Version) -> str:
    """The run that made ``version``, by name (its id for versions recorded before names were kept)."""
    run = version.produced_by_run
    return version.run_names.get(run, run) if run else "—"
