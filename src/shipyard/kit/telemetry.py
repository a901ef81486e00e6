"""OpenTelemetry tracing across gRPC (metadata) and NATS (the traceparent header)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from shipyard.kit.events import Event

tracer = trace.get_tracer("shipyard")


_enabled = False


def tracing_enabled() -> bool:
    """Whether spans are recorded and exported (an exporter is configured)."""
    return _enabled


def setup_tracing(service: str, exporter: str = "") -> bool:
    """Install the SDK tracer provider for ``service`` when ``exporter`` is set; whether it did.

    ``exporter`` is "" (no spans are recorded, but the W3C trace context still travels from
    call to call and into events, cheaply), "console", or "otlp" (needs
    opentelemetry-exporter-otlp installed; configured by the OTEL_* variables). Recording
    spans costs about half of a gRPC call's CPU here, so it is off unless asked for.
    """
    global _enabled
    if not exporter:
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif exporter:
        raise ValueError(f"SHIPYARD_OTEL_EXPORTER: unknown exporter {exporter!r} (console, otlp)")
    trace.set_tracer_provider(provider)
    _enabled = True
    return True


def attach_traceparent(traceparent: str) -> object | None:
    """Make an incoming W3C traceparent the current context (no span); a token to detach."""
    if not traceparent:
        return None
    return context.attach(propagate.extract({"traceparent": traceparent}))


def detach(token: object | None) -> None:
    """Undo ``attach_traceparent``."""
    if token is not None:
        context.detach(token)  # type: ignore[arg-type]


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
