"""Where a test inference or a deployment is served, as its page says it (the console's macro, rendered
with the console's own template settings)."""

from __future__ import annotations

from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from shipyard.contracts.serving.v1 import serving_pb2 as pb


def served_on(item: pb.Inference | pb.Deployment) -> str:
    templates = Environment(loader=PackageLoader("shipyard_gateway.entrypoints.console", "templates"),
                            autoescape=select_autoescape(["html", "j2"]), undefined=StrictUndefined)
    templates.filters["urlquote"] = lambda s: quote(str(s), safe="")
    page = templates.from_string('{% from "serving/_cluster.html.j2" import served_on %}'
                                 '{{ served_on(item) }}')
    return page.render(item=item)


def test_an_endpoint_on_a_cluster_links_to_it_and_one_here_says_here() -> None:
    on_cluster = served_on(pb.Inference(name="t", cluster="k8s <prod>"))
    assert 'on cluster <a href="/clusters/k8s%20%3Cprod%3E">k8s &lt;prod&gt;</a> (KServe)' in on_cluster
    assert '<dd id="served-on">here</dd>' in served_on(pb.Deployment(name="live"))
