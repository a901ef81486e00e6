"""OpenTelemetry tracing across gRPC (metadata) and NATS (the traceparent header)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from shipyard.kit.events import Event

tracer = trace.get_tracer("shipyard")


def setup_tracing(service: str, exporter: str = "", processor: SpanProcessor | None = None) -> None:
    """Install the SDK tracer provider for ``service``.

    ``exporter`` is "" (spans are created and propagated, nothing is exported), "console",
    or "otlp" (needs opentelemetry-exporter-otlp installed; configured by the OTEL_* variables).
    """
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif exporter:
        raise ValueError(f"SHIPYARD_OTEL_EXPORTER: unknown exporter {exporter!r} (console, otlp)")
    if processor is not None:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)


def current_traceparent() -> str:
    """The W3C traceparent of the current span, for an event's headers ("" outside a span)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent", "")


def current_trace_id() -> str:
    """The current trace id in hex, or "" (logs carry it)."""
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else ""


@contextmanager
def consuming(event: Event, consumer: str) -> Iterator[trace.Span]:
    """A consumer span for ``event``, child of the span that published it."""
    parent = propagate.extract({"traceparent": event.traceparent} if event.traceparent else {})
    token = context.attach(parent)
    try:
        with tracer.start_as_current_span(f"{consumer} {event.type}", kind=trace.SpanKind.CONSUMER,
                                          attributes={"cloudevents.event_id": event.id,
                                                      "cloudevents.event_type": event.type}) as span:
            yield span
    finally:
        context.detach(token)
