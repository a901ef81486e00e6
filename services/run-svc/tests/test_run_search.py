"""MLflow's search syntax for runs: filters match, orders sort and malformed input is refused as MLflow's
server does; where mlflow is installed, random filters and orders are checked against its own code."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
from shipyard_run.domain.run_search import SearchableRun, parse_filter, parse_order_by

from shipyard.kit.errors import InvalidArgument

NAN = math.nan


def a_run(run_id: str, **changes: Any) -> SearchableRun:
    run = SearchableRun(
        run_id=run_id, name=f"name-{run_id}", status="FINISHED", start_time_ms=1000, end_time_ms=2000,
        user="ada", experiment_id="0", metrics={}, params={}, tags={},
    )
    return replace(run, **changes)


RUNS = [
    a_run("a", name="alpha", metrics={"loss": 0.5, "acc": 0.9, "my metric": 2.0}, params={"lr": "0.01",
          "opt": "Adam", "note": "it''s"}, tags={"team": "vision", "mlflow.runName": "alpha"}),
    a_run("b", name="beta", status="RUNNING", start_time_ms=3000, end_time_ms=None, user="bob",
          metrics={"loss": NAN}, params={"lr": "0.1", "opt": "adam"}, tags={"team": "Vision"}),
    a_run("c", name="gamma", status="FAILED", start_time_ms=2000, end_time_ms=2500,
          metrics={"loss": 1.5}, params={"a b": "x"}, tags={"x.y": "z"}),
]


def matching(text: str, runs: Sequence[SearchableRun] = RUNS) -> list[str]:
    found = parse_filter(text)
    return [run.run_id for run in runs if found.matches(run)]


def ordered(clauses: Sequence[str], runs: Sequence[SearchableRun] = RUNS) -> list[str]:
    return [run.run_id for run in parse_order_by(clauses).sorted(runs)]


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_an_empty_filter_matches_every_run(text: str) -> None:
    assert matching(text) == ["a", "b", "c"]


@pytest.mark.parametrize("prefix", ["metrics", "metric"])
def test_metric_keys_take_both_prefixes(prefix: str) -> None:
    assert matching(f"{prefix}.loss < 1") == ["a"]


@pytest.mark.parametrize("prefix", ["params", "param", "parameter", "parameters"])
def test_param_keys_take_every_prefix(prefix: str) -> None:
    assert matching(f"{prefix}.lr = '0.1'") == ["b"]


@pytest.mark.parametrize("prefix", ["tags", "tag"])
def test_tag_keys_take_both_prefixes(prefix: str) -> None:
    assert matching(f"{prefix}.team = 'vision'") == ["a"]


@pytest.mark.parametrize("key", ["status", "attributes.status", "attribute.status", "attr.status",
                                 "run.status", "`attributes`.status"])
def test_attributes_are_named_bare_or_with_a_prefix(key: str) -> None:
    assert matching(f"{key} = 'RUNNING'") == ["b"]


@pytest.mark.parametrize("text", ["metrics.`my metric` = 2", 'metrics."my metric" = 2',
                                  "metrics.'my metric' = 2", "`metrics.my metric` = 2"])
def test_keys_with_other_characters_are_quoted(text: str) -> None:
    assert matching(text) == ["a"]


def test_dotted_and_quoted_param_and_tag_keys() -> None:
    assert matching("params.`a b` = 'x'") == ["c"]
    assert matching("tags.x.y = 'z'") == ["c"]
    assert matching('tags."x.y" = \'z\'') == ["c"]


@pytest.mark.parametrize(("text", "expected"), [
    ("metrics.loss = 0.5", ["a"]),
    ("metrics.loss != 0.5", ["b", "c"]),  # NaN differs from every number
    ("metrics.loss > 0.5", ["c"]),
    ("metrics.loss >= 0.5", ["a", "c"]),
    ("metrics.loss < 1.5", ["a"]),
    ("metrics.loss <= 1.5", ["a", "c"]),
    ("metrics.loss > -1", ["a", "c"]),
    ("metrics.loss > .4", ["a", "c"]),
    ("metrics.loss < 1e0", ["a"]),
    ("metrics.loss>=1.5", ["c"]),
    ("metrics.acc != 1", ["a"]),  # a run without the metric never matches, not even !=
])
def test_metrics_compare_with_numbers_and_nan_only_differs(text: str, expected: list[str]) -> None:
    assert matching(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("params.opt = 'Adam'", ["a"]),
    ('params.opt = "adam"', ["b"]),
    ("params.opt != 'Adam'", ["b"]),  # c has no opt: it never matches
    ("params.opt LIKE 'A%'", ["a"]),
    ("params.opt like '%dam'", ["a", "b"]),
    ("params.opt LIKE 'a_am'", ["b"]),
    ("params.opt LIKE 'Ad'", []),  # a pattern matches the whole value
    ("params.opt ILIKE 'ADAM'", ["a", "b"]),
    ("params.lr LIKE '0.1'", ["b"]),  # a dot is itself, not any character
    ("params.lr LIKE '0_1'", ["b"]),
    ("params.opt IS NULL", ["c"]),
    ("params.opt is not null", ["a", "b"]),
    ("params.opt IS  NOT  NULL", ["a", "b"]),
    ("tags.team = 'vision'", ["a"]),
    ("tags.team ILIKE 'VISION'", ["a", "b"]),
    ("tags.team IS NULL", ["c"]),
    # Like MLflow, a quote written twice stays twice in the value.
    ("params.note = 'it''s'", ["a"]),
    ('params.note = "it\'\'s"', ["a"]),
])
def test_params_and_tags_compare_with_quoted_strings(text: str, expected: list[str]) -> None:
    assert matching(text) == expected


def test_like_matches_across_lines_and_treats_regex_characters_as_themselves() -> None:
    runs = [a_run("a", params={"p": "one\ntwo"}), a_run("b", params={"p": "a+b(c)"})]
    assert matching("params.p LIKE 'one%'", runs) == ["a"]
    assert matching("params.p LIKE 'a+b(c)'", runs) == ["b"]
    assert matching("params.p LIKE 'a+b(_)'", runs) == ["b"]
    assert matching("params.p LIKE '.%'", runs) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("run_id = 'b'", ["b"]),
    ("run_id != 'b'", ["a", "c"]),
    ("run_id IN ('a', 'c')", ["a", "c"]),
    ("run_id IN ('a',)", ["a"]),
    ('attributes.run_id in ("b")', ["b"]),
    ("run_id NOT IN ('a')", ["b", "c"]),
    ("run_id not in ('a', 'b')", ["c"]),
    ("run_id LIKE 'a%'", ["a"]),
    ("run_name = 'beta'", ["b"]),
    ("run_name != 'beta'", ["a", "c"]),
    ("run_name LIKE '%a'", ["a", "b", "c"]),
    ("run_name ILIKE 'ALPHA'", ["a"]),
    ("`Run Name` = 'gamma'", ["c"]),
    ("attributes.`run name` = 'gamma'", ["c"]),
    ("tags.\"mlflow.runName\" = 'beta'", ["b"]),  # the name, even where the tag was not kept
    ("tags.mlflow.runName LIKE '%mm%'", ["c"]),
    ("status = 'FAILED'", ["c"]),
    ("status != 'FAILED'", ["a", "b"]),
    ("status LIKE 'fin%'", []),
    ("status ILIKE 'fin%'", ["a"]),
    ("user_id = 'bob'", ["b"]),
    ("user_id LIKE 'a%'", ["a", "c"]),
    ("start_time > 1500", ["b", "c"]),
    ("start_time <= 2000", ["a", "c"]),
    ("created = 3000", ["b"]),
    ("attributes.start_time > 1999.5", ["b", "c"]),
    ("end_time < 2400", ["a"]),
    ("end_time > 0", ["a", "c"]),  # a run still going has no end time
])
def test_attributes(text: str, expected: list[str]) -> None:
    assert matching(text) == expected


def test_a_run_with_no_start_time_matches_no_time_comparison() -> None:
    runs = [a_run("a", start_time_ms=None), a_run("b")]
    assert matching("start_time != 5", runs) == ["b"]


@pytest.mark.parametrize(("text", "expected"), [
    ("metrics.loss < 2 AND params.opt = 'adam'", []),  # b's loss is NaN
    ("metrics.loss < 2 AND params.opt LIKE 'A%'", ["a"]),
    ("metrics.loss < 2 and status = 'FINISHED'", ["a"]),
    ("status != 'RUNNING' And start_time > 1000 aNd end_time < 3000", ["c"]),
])
def test_and_joins_comparisons_in_any_case(text: str, expected: list[str]) -> None:
    assert matching(text) == expected


@pytest.mark.parametrize(("text", "problem"), [
    ("metrics.loss > 1 OR metrics.loss < 0", "only AND may join comparisons"),
    ("metrics.loss > 1 or metrics.loss < 0", "only AND may join comparisons"),
    ("(metrics.loss > 1)", "parentheses are not supported"),
    ("metrics.loss > 1 AND", "AND must stand between two comparisons"),
    ("AND metrics.loss > 1", "AND must stand between two comparisons"),
    ("metrics.loss > 1 AND AND status = 'x'", "AND must stand between two comparisons"),
    ("metrics.loss > 1 status = 'x'", "expected AND or the end of the filter after 'metrics.loss > 1', "
                                      "found \"status = 'x'\""),
    ("metrics.loss > 1;", "expected AND or the end of the filter after 'metrics.loss > 1', found ';'"),
    ("metrics.loss > 'a'", "\"metrics.loss > 'a'\": metric 'loss' is compared with a number"),
    ("metrics.loss > NaN", "'metrics.loss > NaN': metric 'loss' is compared with a number"),
    ("metrics.loss > +1", "expected a value after '>', found '+1'"),
    ("metrics.loss LIKE '1'", "metric 'loss' takes one of =, !=, >, >=, <, <="),
    ("metrics.loss IS NULL", "'metrics.loss IS NULL': metric 'loss' takes one of"),
    ("params.lr > 1", "'params.lr > 1': param 'lr' takes one of =, !=, LIKE, ILIKE, IS NULL, IS NOT NULL"),
    ("params.lr = 1", "'params.lr = 1': param 'lr' is compared with a quoted string"),
    ("params.lr = x", "'params.lr = x': param 'lr' is compared with a quoted string"),
    ("tags.team == 'x'", "tag 'team' takes one of"),
    ("tags.team <> 'x'", "tag 'team' takes one of"),
    ("params.lr IN ('a')", "param 'lr' takes one of"),
    ("params.lr NOT LIKE 'a'", "expected a comparator after 'params.lr', found \"NOT LIKE 'a'\""),
    ("metrics.val-loss > 1", "quote a key with other characters in backticks"),
    ("status IN ('FINISHED')", "attribute 'status' takes one of =, !=, LIKE, ILIKE"),
    ("run_name IN ('a')", "attribute 'run_name' takes one of"),
    ("status = FINISHED", "'status = FINISHED': attribute 'status' is compared with a quoted string"),
    ("status > 'A'", "attribute 'status' takes one of"),
    ("start_time > '1000'", "attribute 'start_time' is compared with a number"),
    ("start_time LIKE '1%'", "attribute 'start_time' takes one of"),
    ("end_time IS NULL", "attribute 'end_time' takes one of"),
    ("run_id IN ()", "the list after IN is empty"),
    ("run_id IN ('a', 1)", "a list after IN holds quoted strings only, found '1)'"),
    ("run_id IN ('a' 'b')", "expected ',' or ')' in the list after IN"),
    ("run_id IN 'a'", "IN takes a list in parentheses"),
    ("run_id = 'a", "expected a value after '='"),
    ("run_id =", "expected a value after '='"),
    ("metrics.loss", "expected a comparator after 'metrics.loss'"),
    ("datasets.name = 'x'", "'datasets.name': searching runs by their datasets is not supported"),
    ("dataset.digest = 'x'", "searching runs by their datasets is not supported"),
    ("artifact_uri = 'x'", "searching runs by artifact_uri is not supported"),
    ("experiment_id = '0'", "'experiment_id': unknown attribute 'experiment_id'; the attributes are run_id"),
    ("attributes.foo = 'x'", "unknown attribute 'foo'"),
    ("Metrics.loss > 1", "unknown key type 'Metrics'"),
    ("metrics.`` > 1", "the key has no name"),
    ("= 1", "expected a key such as metrics.<name>, found '= 1'"),
])
def test_malformed_or_unsupported_filters_are_refused_naming_the_part(text: str, problem: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        parse_filter(text)
    assert refused.value.field == "filter"
    assert problem in refused.value.problem


ORDERED = [
    a_run("r1", start_time_ms=10, metrics={"m": 3.0}, params={"p": "b"}, status="FINISHED"),
    a_run("r2", start_time_ms=30, metrics={"m": NAN}, params={"p": "a"}, status="RUNNING"),
    a_run("r3", start_time_ms=20, metrics={}, params={}, status="FINISHED"),
    a_run("r4", start_time_ms=20, metrics={"m": 1.0}, params={"p": "c"}, status="FAILED"),
    a_run("r0", start_time_ms=20, metrics={"m": 2.0}, params={"p": "a"}, status="FINISHED"),
    a_run("r5", start_time_ms=None, metrics={"m": 1.0}, status="SCHEDULED"),
]


def test_without_order_by_runs_come_newest_first_then_by_run_id() -> None:
    assert ordered([], ORDERED) == ["r2", "r0", "r3", "r4", "r1", "r5"]  # no start time: last


@pytest.mark.parametrize(("clauses", "expected"), [
    # NaN after numbers and runs without the key last, whichever the direction.
    (["metrics.m"], ["r4", "r5", "r0", "r1", "r2", "r3"]),
    (["metrics.m ASC"], ["r4", "r5", "r0", "r1", "r2", "r3"]),
    (["metrics.m DESC"], ["r1", "r0", "r4", "r5", "r2", "r3"]),
    (["metric.m desc"], ["r1", "r0", "r4", "r5", "r2", "r3"]),
    (["params.p"], ["r2", "r0", "r1", "r4", "r3", "r5"]),
    (["params.p DESC"], ["r4", "r1", "r2", "r0", "r3", "r5"]),
    (["status", "params.p DESC"], ["r4", "r1", "r0", "r3", "r2", "r5"]),
    (["status DESC", "metrics.m"], ["r5", "r2", "r0", "r1", "r3", "r4"]),
    (["start_time"], ["r1", "r0", "r3", "r4", "r2", "r5"]),
    (["attributes.start_time DESC"], ["r2", "r0", "r3", "r4", "r1", "r5"]),
    (["created"], ["r1", "r0", "r3", "r4", "r2", "r5"]),
    (["run_id DESC"], ["r5", "r4", "r3", "r2", "r1", "r0"]),
])
def test_order_by_clauses_apply_in_turn_over_the_default_order(
    clauses: list[str], expected: list[str],
) -> None:
    assert ordered(clauses, ORDERED) == expected


def test_order_by_names_end_time_user_and_quoted_keys() -> None:
    runs = [a_run("a", name="b", end_time_ms=None, user="z", metrics={"my m": 1.0}, tags={"t.k": "2"}),
            a_run("b", name="a", end_time_ms=5, user="y", metrics={"my m": 2.0}, tags={"t.k": "1"})]
    assert ordered(["end_time DESC"], runs) == ["b", "a"]
    assert ordered(["end_time"], runs) == ["b", "a"]
    assert ordered(["run_name"], runs) == ["b", "a"]
    assert ordered(["tags.`mlflow.runName`"], runs) == ["b", "a"]
    assert ordered(["user_id"], runs) == ["b", "a"]
    assert ordered(["metrics.`my m` DESC"], runs) == ["b", "a"]
    assert ordered(['metrics."my m"  desc'], runs) == ["b", "a"]
    assert ordered(["`metrics.my m` DESC"], runs) == ["b", "a"]
    assert ordered(["tags.t.k"], runs) == ["b", "a"]
    assert ordered([" metrics.`my m`\tASC "], runs) == ["a", "b"]


def test_the_order_is_total_whatever_order_runs_come_in() -> None:
    shuffled = random.Random(18)
    runs = [a_run(f"r{index:02}", start_time_ms=shuffled.choice([None, 1, 2]),
                  metrics=shuffled.choice([{}, {"m": NAN}, {"m": 1.0}, {"m": 2.0}]),
                  params=shuffled.choice([{}, {"p": "x"}, {"p": "y"}])) for index in range(40)]
    order = parse_order_by(["params.p DESC", "metrics.m"])
    first = order.sorted(runs)
    for _ in range(20):
        shuffled.shuffle(runs)
        assert order.sorted(runs) == first


@pytest.mark.parametrize(("clause", "problem"), [
    ("", "expected '<key> [ASC|DESC]'"),
    ("metrics.m DESC ASC", "expected '<key> [ASC|DESC]'"),
    ("metrics.m, metrics.n", "expected '<key> [ASC|DESC]' (one key per clause)"),
    ("metrics.m DESC,", "expected '<key> [ASC|DESC]'"),
    ("metrics.val-loss", "quote a key with other characters in backticks"),
    ("metrics.m UP", "the direction is ASC or DESC, not 'UP'"),
    ("datasets.name", "searching runs by their datasets is not supported"),
    ("timestamp", "unknown attribute 'timestamp'"),
    ("artifact_uri", "searching runs by artifact_uri is not supported"),
    ("foo.bar", "unknown key type 'foo'"),
])
def test_malformed_order_by_clauses_are_refused(clause: str, problem: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        parse_order_by(["metrics.m", clause])
    assert refused.value.field == "order_by"
    assert problem in refused.value.problem
    assert repr(clause) in refused.value.problem


# Against MLflow's own search: random runs, filters and orders, answered alike.

def _random_runs(pick: random.Random) -> list[SearchableRun]:
    def some(values: dict[str, list[Any]]) -> dict[str, Any]:
        return {key: pick.choice(choices) for key, choices in values.items() if pick.random() < 0.7}

    return [a_run(
        f"{pick.randrange(16**6):06x}{index}", name=pick.choice(["alpha", "beta", "Alpha", "a_b"]),
        status=pick.choice(["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]),
        start_time_ms=pick.choice([100, 200, 300]), end_time_ms=pick.choice([None, 250, 400]),
        user=pick.choice(["ada", "bob"]),
        metrics=some({"m": [0.0, 1.0, 2.5, -1.0, NAN], "my metric": [1.0, 2.0]}),
        params=some({"p": ["a", "b", "A", "ab"], "q": ["x_1", "x%1", "X"]}),
        tags=some({"t": ["v", "V", "vv"]}),
    ) for index in range(40)]


# Keys, the comparators to try on each, and the values to compare with (as written in a filter).
COMPARISONS: list[tuple[list[str], list[str], list[str]]] = [
    (["metrics.m", "metric.m"], ["=", "!=", ">", ">=", "<", "<="], ["0", "1.0", "-1", "2.5", ".5", "1e0"]),
    (["metrics.`my metric`"], ["=", ">"], ["1", "2"]),
    (["params.p", "params.q", "param.q", "tags.t"], ["=", "!=", "LIKE", "ILIKE"],
     ["'a'", "'A'", "'a%'", "'_'", "'x_1'", "'x%'", "'%1'", '"v"', '"V%"']),
    (["params.p", "tags.t", "param.q"], ["IS NULL", "IS NOT NULL"], [""]),
    (["status", "run_name", "attributes.run_name", "user_id"], ["=", "!=", "LIKE", "ILIKE"],
     ["'FINISHED'", "'f%'", "'%ED'", "'alpha'", "'a%'", "'ada'"]),
    (["start_time", "end_time", "created"], [">", "<=", "=", "!="], ["200", "250", "300.0"]),
]


def _random_comparison(pick: random.Random, runs: Sequence[SearchableRun]) -> str:
    if pick.random() < 0.1:
        listed = ", ".join(repr(run.run_id) for run in pick.sample(list(runs), 3))
        return f"run_id {pick.choice(['IN', 'NOT IN'])} ({listed})"
    keys, comparators, values = pick.choice(COMPARISONS)
    return f"{pick.choice(keys)} {pick.choice(comparators)} {pick.choice(values)}".rstrip()


def _random_order(pick: random.Random) -> list[str]:
    keys = ["metrics.m", "metrics.`my metric`", "params.p", "params.q", "tags.t", "status", "run_name",
            "start_time", "end_time", "user_id", "run_id"]
    return [f"{pick.choice(keys)}{pick.choice(['', ' ASC', ' DESC', ' desc'])}"
            for _ in range(pick.randrange(4))]


def _as_mlflow(run: SearchableRun) -> Any:
    entities = pytest.importorskip("mlflow.entities")
    info = entities.RunInfo(
        run_id=run.run_id, experiment_id=run.experiment_id, user_id=run.user, status=run.status,
        start_time=run.start_time_ms, end_time=run.end_time_ms, lifecycle_stage="active", run_name=run.name,
    )
    data = entities.RunData(
        metrics=[entities.Metric(key, value, 0, 0) for key, value in run.metrics.items()],
        params=[entities.Param(key, value) for key, value in run.params.items()],
        tags=[entities.RunTag(key, value) for key, value in {**run.tags, "mlflow.runName": run.name}.items()],
    )
    return entities.Run(info, data)


def test_random_filters_and_orders_answer_as_mlflow_does() -> None:
    search_utils = pytest.importorskip("mlflow.utils.search_utils").SearchUtils
    pick = random.Random(1718)
    for _ in range(40):
        runs = _random_runs(pick)
        theirs = {run.run_id: _as_mlflow(run) for run in runs}
        for _ in range(15):
            text = " AND ".join(_random_comparison(pick, runs) for _ in range(pick.randrange(1, 4)))
            clauses = _random_order(pick)
            found = parse_filter(text)
            ours = [run.run_id for run in parse_order_by(clauses).sorted(filter(found.matches, runs))]
            expected = search_utils.sort(search_utils.filter(list(theirs.values()), text), clauses)
            assert ours == [run.info.run_id for run in expected], (text, clauses)
