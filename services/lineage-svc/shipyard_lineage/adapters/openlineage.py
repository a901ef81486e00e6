"""Runs as OpenLineage RunEvents, built with the OpenLineage client's own models.

A run is an OpenLineage run of a job named after it (Shipyard runs are not instances of a
recurring job); its inputs are the versions and code it used, its outputs the versions it
produced, each a dataset named ``<kind>s/<repo>`` with the version in the version facet. Its
job's ``sourceCodeLocation`` is the code repo's git URL (type ``git``, the commit as version, the
repo's folder as path); code that came from anywhere else (an upload) has none.
"""

from __future__ import annotations

import re
import uuid

from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.generated.dataset_version_dataset import DatasetVersionDatasetFacet
from openlineage.client.generated.error_message_run import ErrorMessageRunFacet
from openlineage.client.generated.execution_parameters_run import (
    ExecutionParameter,
    ExecutionParametersRunFacet,
)
from openlineage.client.generated.job_type_job import JobTypeJobFacet
from openlineage.client.generated.output_statistics_output_dataset import OutputStatisticsOutputDatasetFacet
from openlineage.client.generated.source_code_location_job import SourceCodeLocationJobFacet
from openlineage.client.serde import Serde

from shipyard_lineage.app.lineage import NodeView
from shipyard_lineage.app.openlineage import RunRecord
from shipyard_lineage.domain.graph import VERSION_KINDS

PRODUCER = "https://github.com/shipyard-mlops/shipyard/tree/main/services/lineage-svc"
# git's scp-like remote syntax: [user@]host:path, with no scheme.
SCP_LIKE = re.compile(r"(?P<host>[^/:@]+@[^/:]+|[^/:]+):(?!//)(?P<path>.+)")
_ENDED = {"complete": RunState.COMPLETE, "failed": RunState.FAIL, "error": RunState.FAIL,
          "stopped": RunState.ABORT}


def run_uuid(run_id: str) -> str:
    """OpenLineage wants a UUID per run: a stable one derived from the Shipyard run id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"shipyard:run:{run_id}"))


def uri_of_git(url: str) -> str:
    """A git remote as a URI (the facet's ``url`` is ``format: uri``): scp-like ``git@host:path``
    becomes ``ssh://git@host/path``; URLs stay as they are."""
    match = SCP_LIKE.fullmatch(url)
    return f"ssh://{match['host']}/{match['path']}" if match else url


def _dataset_name(view: NodeView) -> str:
    return f"{view.node.kind}s/{view.label.rpartition('@')[0]}"


def _input(namespace: str, view: NodeView) -> InputDataset:
    return InputDataset(namespace, _dataset_name(view), facets={
        "version": DatasetVersionDatasetFacet(datasetVersion=str(view.node.number), producer=PRODUCER)})


def _output(namespace: str, view: NodeView) -> OutputDataset:
    fields = view.node.fields
    return OutputDataset(namespace, _dataset_name(view), facets={
        "version": DatasetVersionDatasetFacet(datasetVersion=str(view.node.number), producer=PRODUCER)},
        outputFacets={"outputStatistics": OutputStatisticsOutputDatasetFacet(
            size=int(fields.get("size_bytes", "0") or 0), fileCount=int(fields.get("file_count", "0") or 0),
            producer=PRODUCER)})


def _job(namespace: str, record: RunRecord) -> Job:
    node = record.run.node
    facets: dict[str, object] = {"jobType": JobTypeJobFacet(processingType="BATCH", integration="SHIPYARD",
                                                            jobType=node.fields.get("subtype", "").upper(),
                                                            producer=PRODUCER)}
    if record.code is not None:
        url = uri_of_git(record.code.url)
        facets["sourceCodeLocation"] = SourceCodeLocationJobFacet(
            type="git", url=url, repoUrl=url, path=record.code.path or None,
            version=record.code.commit or None, producer=PRODUCER)
    return Job(namespace, node.name or node.id, facets=facets)  # type: ignore[arg-type]


def _run(record: RunRecord, state: RunState) -> Run:
    fields = record.run.node.fields
    parameters = [ExecutionParameter(key=k.removeprefix("hp."), value=v)
                  for k, v in sorted(fields.items()) if k.startswith("hp.")]
    facets: dict[str, object] = {}
    if parameters:
        facets["executionParameters"] = ExecutionParametersRunFacet(parameters=parameters, producer=PRODUCER)
    if state is RunState.FAIL:
        facets["errorMessage"] = ErrorMessageRunFacet(message=fields.get("reason", "") or "failed",
                                                      programmingLanguage="shell", producer=PRODUCER)
    return Run(runId=run_uuid(record.run.node.id.partition(":")[2]), facets=facets)  # type: ignore[arg-type]


def run_events(record: RunRecord, namespace: str) -> list[str]:
    """START (once the run started), then COMPLETE, FAIL or ABORT once it ended; JSON each."""
    fields = record.run.node.fields
    started = fields.get("started", "")
    if not started:
        return []
    inputs = [_input(namespace, v) for v in record.inputs if v.node.kind in VERSION_KINDS]
    events = [RunEvent(eventType=RunState.START, eventTime=started, run=_run(record, RunState.START),
                       job=_job(namespace, record), inputs=inputs, outputs=[], producer=PRODUCER)]
    state = _ENDED.get(record.run.node.status)
    if state is not None and fields.get("ended"):
        outputs = [_output(namespace, v) for v in record.outputs]
        events.append(RunEvent(eventType=state, eventTime=fields["ended"], run=_run(record, state),
                               job=_job(namespace, record), inputs=inputs, outputs=outputs,
                               producer=PRODUCER))
    return [Serde.to_json(event) for event in events]
