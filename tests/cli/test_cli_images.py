"""``shipyard image …``: the table, JSON and the requirements a user gives (against canned replies), and
add / list / get / delete and a bad input against a real stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.client.connection import Client
from shipyard.contracts.lineage.v1 import lineage_pb2
from shipyard.contracts.repo.v1 import images_pb2 as pb
from shipyard.local.harness import Stack, wait_for

STANDARD = pb.Image(name="sklearn-1.5", url="python:3.11-slim", framework="sklearn", framework_version="1.5",
                    requirements=["scikit-learn==1.5.*", "numpy"], source=pb.IMAGE_SOURCE_STANDARD,
                    status=pb.IMAGE_STATUS_READY)


def _activity(client: Client) -> set[str]:
    reply = client.call(client.lineage.ListActivity, lineage_pb2.ListActivityRequest(
        page_size=100, type_prefix="io.shipyard.image."))
    return {a.type for a in reply.activities if a.subject == "images/churn-env"}


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["image", *args])
    return result.exit_code, result.output


def test_the_list_shows_framework_source_status_url_and_how_many_requirements(
        replies: dict[str, Any]) -> None:
    replies["ListImages"] = pb.ListImagesResponse(images=[STANDARD])
    code, out = invoke("list", "--framework", "sklearn")
    assert code == 0, out
    row = next(line for line in out.splitlines() if "sklearn-1.5" in line)
    for cell in ("sklearn 1.5", "standard", "ready", "python:3.11-slim", " 2 "):
        assert cell in row, out


def test_get_as_json_is_the_image(replies: dict[str, Any]) -> None:
    replies["GetImage"] = STANDARD
    code, out = invoke("get", "sklearn-1.5", "-o", "json")
    assert code == 0, out
    assert json.loads(out)["requirements"] == ["scikit-learn==1.5.*", "numpy"]


def test_get_shows_requirements_as_written_markup_and_all(replies: dict[str, Any]) -> None:
    replies["GetImage"] = pb.Image(name="x", url="x", requirements=["pandas[parquet]", "[bold]oops"])
    code, out = invoke("get", "x")
    assert code == 0, out
    assert "pandas[parquet]" in out and "[bold]oops" in out and "the platform's" in out


def test_add_sends_the_requirement_lines_then_the_files(replies: dict[str, Any], tmp_path: Path) -> None:
    sent: list[pb.AddImageRequest] = []

    def added(request: pb.AddImageRequest) -> pb.Image:
        sent.append(request)
        return request.image

    replies["AddImage"] = added
    listing = tmp_path / "requirements.txt"
    listing.write_text("# pinned by the team\npandas[parquet]==2.2.*\nxgboost\n")
    code, out = invoke("add", "xgb", "--url", "registry.example.org/team/xgb:1", "--framework", "xgboost",
                       "--framework-version", "2.1", "--python", "3.11", "--requirement", "scikit-learn",
                       "--requirements", str(listing), "--private", "--credential", "reg")
    assert code == 0, out
    assert "Added image xgb" in out
    assert sent == [pb.AddImageRequest(image=pb.Image(
        name="xgb", url="registry.example.org/team/xgb:1", framework="xgboost", framework_version="2.1",
        python="3.11", private=True, credential="reg",
        requirements=["scikit-learn", "# pinned by the team", "pandas[parquet]==2.2.*", "xgboost"]))]


@pytest.mark.integration
def test_add_list_get_delete_and_a_bad_url_on_a_real_stack(stack: Stack, monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    monkeypatch.setenv("SHIPYARD_SERVER", stack.grpc_address)
    monkeypatch.setenv("SHIPYARD_TOKEN", stack.admin_token())
    monkeypatch.setenv("COLUMNS", "200")
    (tmp_path / "requirements.txt").write_text("pandas\nscikit-learn==1.5.*\n")

    code, out = invoke("add", "churn-env", "--url", "registry.example.org/ml/churn:2", "--description",
                       "Churn model's packages", "--framework", "sklearn", "--framework-version", "1.5",
                       "--requirements", str(tmp_path / "requirements.txt"))
    assert code == 0, out

    code, out = invoke("list", "-o", "json")
    assert code == 0, out
    listed = {image["name"]: image for image in json.loads(out)}
    assert next(iter(listed)) == "python" and "sklearn-1.3" in listed
    assert listed["churn-env"]["source"] == "IMAGE_SOURCE_REGISTRY"
    assert listed["churn-env"]["requirements"] == ["pandas", "scikit-learn==1.5.*"]

    code, out = invoke("list", "--framework", "sklearn")
    assert code == 0, out
    assert "churn-env" in out and "sklearn-1.4" in out and "tensorflow-2.17" not in out

    code, out = invoke("get", "churn-env")
    assert code == 0, out
    assert "registry.example.org/ml/churn:2" in out and "Churn model's packages" in out and "admin" in out

    code, out = invoke("add", "bad", "--url", "registry.example.org/ML/Churn")
    assert code == 1
    assert out.strip() == ("INVALID_ARGUMENT: image.url: an image's path must be lower case "
                           "(got 'registry.example.org/ML/Churn')")

    code, out = invoke("add", "bad", "--url", "img", "--private")
    assert code == 1
    assert out.strip().startswith("INVALID_ARGUMENT: image.credential: a private image needs --credential")

    code, out = invoke("delete", "churn-env")
    assert code == 0, out
    # The catalog's events reach the bus (repo-svc may publish them) and the activity feed.
    admin = stack.client()
    wait_for(lambda: {"io.shipyard.image.added.v1", "io.shipyard.image.deleted.v1"} <= _activity(admin), 30,
             "the image events in the activity feed")
    admin.close()
    code, out = invoke("get", "churn-env")
    assert code == 1 and "NOT_FOUND: image 'churn-env' not found" in out
    code, out = invoke("delete", "python")
    assert code == 1 and "standard images come with the platform and cannot be deleted" in out
