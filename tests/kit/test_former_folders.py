"""A data directory made by an older version (repo/, run/, serving/, lineage/) keeps its data: each
service moves its files into the folder of its one name at start, once, and never over files
already there."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.kit.former_folders import FORMER_FOLDERS, FolderConflict, move_former_folder
from shipyard.kit.settings import Settings
from shipyard.kit.store.factory import open_document_store
from shipyard.kit.store.port import Collection
from shipyard.kit.store.sqlite import SQLiteDocumentStore
from shipyard.local.supervisor import SERVICES

PROJECTS = Collection("projects", unique=("name",))


def settings(data_dir: Path, service: str, store_url: str = "") -> Settings:
    return Settings(service=service, data_dir=data_dir, store_url=store_url)


async def test_a_store_made_under_the_former_name_is_found_under_the_new_one(tmp_path: Path) -> None:
    old = SQLiteDocumentStore(tmp_path / "repo" / "store.db")
    await old.open([PROJECTS])
    async with old.transaction() as txn:
        await txn.insert(PROJECTS.name, {"_id": "p1", "name": "kept"})
    await old.close()
    (tmp_path / "repo" / "code").mkdir()
    (tmp_path / "repo" / "code" / "file").write_text("a clone")
    repo = settings(tmp_path, "repo-svc")

    moved = move_former_folder(repo)

    assert sorted(path.name for path in moved) == ["code", "store.db"]
    assert not (tmp_path / "repo").exists()
    assert (tmp_path / "repo-svc" / "code" / "file").read_text() == "a clone"
    store = open_document_store(repo.default_store_url())
    await store.open([PROJECTS])
    try:
        async with store.transaction() as txn:
            assert (await txn.get(PROJECTS.name, "p1") or {}).get("name") == "kept"
    finally:
        await store.close()
    assert move_former_folder(repo) == [], "once moved, nothing is left to move"


def test_run_svc_takes_its_own_files_and_leaves_the_supervisors(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "workspaces" / "r1").mkdir(parents=True)
    (run / "workspaces" / "r1" / "out.txt").write_text("a run's output")
    for name in ("store.db", "store.db-wal", "lock", "stack.json", "nats.conf"):
        (run / name).write_text(name)

    move_former_folder(settings(tmp_path, "run-svc"))

    assert sorted(p.name for p in run.iterdir()) == ["lock", "nats.conf", "stack.json"]
    mine = tmp_path / "run-svc"
    assert sorted(p.name for p in mine.iterdir()) == ["store.db", "store.db-wal", "workspaces"]
    assert (mine / "store.db-wal").read_text() == "store.db-wal"
    assert (mine / "workspaces" / "r1" / "out.txt").read_text() == "a run's output"


def test_files_in_both_places_are_refused_naming_both_and_nothing_moves(tmp_path: Path) -> None:
    for folder in ("serving", "serving-svc"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "store.db").write_text(folder)

    with pytest.raises(FolderConflict, match=r"in both .*/serving \(from an older version\) and "
                                             r".*/serving-svc: store\.db"):
        move_former_folder(settings(tmp_path, "serving-svc"))

    assert (tmp_path / "serving" / "store.db").read_text() == "serving"
    assert (tmp_path / "serving-svc" / "store.db").read_text() == "serving-svc"


def test_a_move_cut_short_goes_on_at_the_next_start(tmp_path: Path) -> None:
    (tmp_path / "lineage").mkdir()
    (tmp_path / "lineage" / "store.db-wal").write_text("the last writes")
    (tmp_path / "lineage-svc").mkdir()
    (tmp_path / "lineage-svc" / "store.db").write_text("the database")

    move_former_folder(settings(tmp_path, "lineage-svc"))

    assert (tmp_path / "lineage-svc" / "store.db-wal").read_text() == "the last writes"
    assert not (tmp_path / "lineage").exists()


def test_a_store_url_into_the_former_folder_is_refused_not_moved_away(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "store.db").write_text("in use")
    named = settings(tmp_path, "repo-svc", store_url=f"sqlite:///{tmp_path}/repo/store.db")

    with pytest.raises(FolderConflict, match=r"SHIPYARD_STORE_URL names a file in .*/repo"):
        move_former_folder(named)

    assert (tmp_path / "repo" / "store.db").read_text() == "in use"


@pytest.mark.parametrize("service", ["gateway", "repo-svc"])
def test_nothing_to_move_changes_nothing(tmp_path: Path, service: str) -> None:
    (tmp_path / "gateway").mkdir()
    assert move_former_folder(settings(tmp_path, service)) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gateway"]


def test_every_service_of_the_supervisor_has_its_former_folder() -> None:
    assert set(FORMER_FOLDERS) == set(SERVICES)
