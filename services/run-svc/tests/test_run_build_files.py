"""What an image built from a code repo holds: the build file's keys, requirement files, refusals."""

from __future__ import annotations

import pytest
from shipyard_run.domain.build_files import BuildPlan, plan_build

from shipyard.kit.environments import platform_python
from shipyard.kit.errors import InvalidArgument


def _refused(files: dict[str, str], folder: str = "", image: str = "") -> InvalidArgument:
    with pytest.raises(InvalidArgument) as refused:
        plan_build(files, folder, image)
    return refused.value


def test_a_requirements_file_is_the_environment_when_there_is_no_build_file() -> None:
    plan = plan_build({"requirements.txt": "pandas==2.2.3\n# a comment\n\nscikit-learn<1.4  # old API\n"})
    assert plan == BuildPlan("requirements.txt", "", ("pandas==2.2.3", "scikit-learn<1.4"))


def test_requirements_files_include_others_inside_the_repo() -> None:
    plan = plan_build({"ml/requirements.txt": "-r base.txt\nxgboost", "ml/base.txt": "numpy"}, folder="ml")
    assert plan.requirements == ("numpy", "xgboost")
    error = _refused({"requirements.txt": "-r ../../etc/passwd"})
    assert "must stay inside the repo" in error.problem


def test_pip_options_in_requirements_are_refused_with_the_line() -> None:
    error = _refused({"requirements.txt": "numpy\n--index-url https://evil.example/simple\n"})
    assert error.field == "requirements.txt: line 2"
    assert "pip options are not allowed" in error.problem


def test_a_line_pip_cannot_read_is_named() -> None:
    error = _refused({"requirements.txt": "numpy\npandas>=>2\n"})
    assert error.field == "requirements.txt[1]"
    assert "'pandas>=>2' is not a requirement pip can read" in error.problem


def test_pyproject_dependencies_and_a_python_the_platform_has() -> None:
    text = (f'[project]\nname = "churn"\nrequires-python = ">={platform_python()}"\n'
            'dependencies = ["pandas", "xgboost>=2"]\n')
    assert plan_build({"pyproject.toml": text}) == BuildPlan("pyproject.toml", "", ("pandas", "xgboost>=2"))
    error = _refused({"pyproject.toml": '[project]\nname = "x"\nrequires-python = "<3.0"\n'})
    assert error.field == "pyproject.toml: project.requires-python"


def test_a_conda_environment_file_gives_python_pip_and_index_packages() -> None:
    text = """
name: churn
channels: [conda-forge]
dependencies:
  - python=3.10
  - numpy=1.26
  - conda-forge::pandas
  - scipy>=1.11
  - pip
  - pip:
    - xgboost==2.1.1
"""
    plan = plan_build({".shipyard-ci.yml": "conda_env:\n  path: env/environment.yml\n",
                       "env/environment.yml": text})
    assert (plan.build_file, plan.python, plan.requirements) == (
        ".shipyard-ci.yml", "3.10", ("numpy==1.26.*", "pandas", "scipy>=1.11", "xgboost==2.1.1"))
    assert "a package only conda has cannot be" in plan.notes[0]


def test_the_products_build_file_name_is_read_too() -> None:
    plan = plan_build({".dkube-ci.yml": "Dockerfile: docker/Dockerfile\n",
                       "docker/Dockerfile": "FROM python:3.11-slim\nRUN pip install --no-cache-dir \\\n"
                                            "    pandas \\\n    xgboost==2.1.*\nCOPY . /app\nWORKDIR /app\n"})
    assert plan == BuildPlan(".dkube-ci.yml", "", ("pandas", "xgboost==2.1.*"), "python:3.11-slim")


def test_a_dockerfile_that_installs_system_packages_is_refused_naming_the_line() -> None:
    error = _refused({".shipyard-ci.yml": "Dockerfile: Dockerfile\n",
                      "Dockerfile": "FROM ubuntu:22.04\n\n"
                                    "RUN apt-get update && apt-get install -y libgomp1\n"})
    assert error.field == "Dockerfile: line 3"
    assert "installs system packages with apt-get" in error.problem


def test_unknown_keys_are_refused_by_name() -> None:
    error = _refused({".shipyard-ci.yml": "conda_env: {path: e.yml}\nbuild_args: [x]\n"})
    assert (error.field, error.problem.split(";")[0]) == (".shipyard-ci.yml: build_args",
                                                          "is not a key of a build file")


def test_r_packages_are_refused() -> None:
    error = _refused({".shipyard-ci.yml": "conda_env: {path: e.yml, r_install_script: install.R}\n",
                      "e.yml": "dependencies: [numpy]"})
    assert error.field == ".shipyard-ci.yml: conda_env.r_install_script"


def test_images_pick_the_entry_by_name() -> None:
    files = {".shipyard-ci.yml": "images:\n  path: img\n  images:\n"
                                 "    - {name: xgb, base_image: python:3.11}\n"
                                 "    - {name: tf, base_image: tensorflow/tensorflow:2.17.0}\n",
             "img/requirements.txt": "xgboost\n"}
    plan = plan_build(files, image="tf")
    assert (plan.base_image, plan.requirements) == ("tensorflow/tensorflow:2.17.0", ("xgboost",))
    error = _refused(files, image="other")
    assert error.problem == "lists xgb, tf: build one of these names (got 'other')"


def test_pipelines_and_jobs_keys_are_accepted_and_noted() -> None:
    plan = plan_build({".shipyard-ci.yml": "pipelines: {path: p, pipelines: []}\n",
                       "requirements.txt": "numpy"})
    assert plan.requirements == ("numpy",)
    assert plan.notes == (
        ".shipyard-ci.yml: pipelines is for pipelines and jobs, not images: not used by this build",)


def test_nothing_to_build_from_says_what_it_looked_for() -> None:
    error = _refused({"train.py": "print(1)"})
    assert error.field == "build_file"
    assert "has no .shipyard-ci.yml, .dkube-ci.yml and no requirements.txt" in error.problem


def test_a_python_the_build_file_pins_is_checked() -> None:
    assert plan_build({".shipyard-ci.yml": "python: '3.12'\n", "requirements.txt": "numpy"}).python == "3.12"
    error = _refused({".shipyard-ci.yml": "python: three\n", "requirements.txt": "numpy"})
    assert error.field == ".shipyard-ci.yml: python"
