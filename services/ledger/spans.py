"""The ledger's hand-made spans: the domain steps no library instruments (ADR 0050).

- ``ledger.write``: one per write request, in the request's trace, from submission to outcomes
  (queueing for a group included). Attributes: ``ledger.operations``, ``ledger.atomic``, and for a
  request of one operation ``ledger.operation`` (create/post/void) and ``ledger.transfer_id`` (the
  one business identifier spans carry; indexed in X-Ray, so a transfer's trace can be searched).
- ``ledger.group``: one per group-commit transaction; the PostgreSQL statements (asyncpg spans) are
  its children. A transaction serves several requests but a span has one parent: it belongs to the
  trace of the first *sampled* request of the group and links to the other sampled requests'
  ``ledger.write`` spans, each of which links back to it. Attributes ``ledger.group.size``
  (requests, like the ``GroupSize`` metric) and ``ledger.group.operations``, copied onto every
  member's ``ledger.write`` span together with ``ledger.group.trace_id`` (the X-Ray id of the trace
  holding the transaction).
- ``ledger.rules``: the in-memory rule evaluation inside the transaction, with
  ``ledger.rules.rejected`` (operations that failed a rule).

Each helper is a no-op (and computes nothing) while tracing is off.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from services.ledger.operations import CreateTransfer, Outcome, PostPending, VoidPending, WriteRequest
from shared import tracing

_NO_SPAN: AbstractContextManager[Any] = nullcontext()


def write(request: WriteRequest) -> AbstractContextManager[Any]:
    """The ``ledger.write`` span of one request (yields it, or None when tracing is off)."""
    tracer = tracing.tracer()
    if tracer is None or not tracing.recording():
        return _NO_SPAN
    attributes: dict[str, Any] = {"ledger.operations": len(request.operations), "ledger.atomic": request.atomic}
    if len(request.operations) == 1:
        op = request.operations[0]
        if isinstance(op, CreateTransfer):
            attributes["ledger.operation"] = "create"
            attributes["ledger.transfer_id"] = str(op.body.id)
        elif isinstance(op, PostPending | VoidPending):
            attributes["ledger.operation"] = "post" if isinstance(op, PostPending) else "void"
            attributes["ledger.transfer_id"] = str(op.transfer_id)
        else:
            # Transactions, reversals, account changes: the operation's name, no ids.
            attributes["ledger.operation"] = type(op).__name__
    return tracer.start_as_current_span("ledger.write", attributes=attributes)  # type: ignore[no-any-return]


def group(members: Sequence[Any], operations: int) -> AbstractContextManager[Any]:
    """The ``ledger.group`` span around one transaction serving ``members`` (their write spans)."""
    if tracing.tracer() is None:
        return _NO_SPAN
    sampled = [span for span in members if span is not None and span.is_recording()]
    if sampled:
        return _group(sampled, len(members), operations)
    if tracing.recording():
        # No request of the group is traced, but the group's task was created in a traced
        # request's context: record none of the statements there.
        from opentelemetry.instrumentation.utils import suppress_instrumentation

        return suppress_instrumentation()
    return _NO_SPAN  # (an unsampled request's context is already suppressed)


@contextmanager
def _group(sampled: list[Any], size: int, operations: int) -> Iterator[None]:
    from opentelemetry import context as otel_context
    from opentelemetry import trace

    tracer = tracing.tracer()
    leader, others = sampled[0], sampled[1:]
    attributes = {"ledger.group.size": size, "ledger.group.operations": operations}
    span = tracer.start_span(
        "ledger.group",
        context=trace.set_span_in_context(leader),
        links=[trace.Link(member.get_span_context()) for member in others],
        attributes=attributes,
    )
    # From a clean context: the task may have been created by an unsampled (suppressed) request.
    token = otel_context.attach(otel_context.Context())
    try:
        with trace.use_span(span, end_on_exit=True):
            context = span.get_span_context()
            # The link, and for backends that do not show links the group's trace id in X-Ray form.
            digits = f"{context.trace_id:032x}"
            shared = {**attributes, "ledger.group.trace_id": f"1-{digits[:8]}-{digits[8:]}"}
            for member in sampled:
                member.set_attributes(shared)
            for member in others:
                member.add_link(context)
            yield
    finally:
        otel_context.detach(token)


def rules(requests: Sequence[WriteRequest]) -> AbstractContextManager[Any]:
    """The ``ledger.rules`` span around the in-memory evaluation (yields it, or None when off)."""
    tracer = tracing.tracer()
    if tracer is None or not tracing.recording():
        return _NO_SPAN
    operations = sum(len(request.operations) for request in requests)
    attributes = {"ledger.group.size": len(requests), "ledger.group.operations": operations}
    return tracer.start_as_current_span("ledger.rules", attributes=attributes)  # type: ignore[no-any-return]


def rejected(span: Any, outcomes: Sequence[Sequence[Outcome]]) -> None:
    """Record on the rules span how many operations failed a rule."""
    if span is not None and span.is_recording():
        span.set_attribute("ledger.rules.rejected", sum(o.code is not None for result in outcomes for o in result))
