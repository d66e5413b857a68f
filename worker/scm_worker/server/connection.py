"""A session's input: read lines, answer control requests at once, queue the rest.

Control requests (the methods registered ``runs="control"``, api/registry.py; the
entry point passes their names in) are cheap, touch no random state and read only what
is safe to read during a computation, so the reader answers them itself: ``ping`` and
``status`` come back in milliseconds during a long fit, and ``$/cancelRequest`` can
reach the request it names. Everything else, batches included, waits for the compute
thread in the fair queue. Replies may therefore come back out of request order; a
client matches them by id, as JSON-RPC intends.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any, BinaryIO

from ..context import WorkerContext
from .protocol import Dispatcher, LineTooLong, encode_reply, parse_line, read_line, too_long_reply
from .queueing import Job
from .scheduler import Scheduler
from .session import Session

log = logging.getLogger(__name__)

def answered_at_once(message: Any, control: Collection[str]) -> bool:
    """A control request, or what is no request at all (its error needs no queue)."""
    if isinstance(message, list):
        return not message
    if not isinstance(message, dict):
        return True
    method = message.get("method")
    return not isinstance(method, str) or method in control


def read_session(
    stream: BinaryIO, session: Session, ctx: WorkerContext, dispatcher: Dispatcher,
    scheduler: Scheduler, control: Collection[str],
) -> bool:
    """Serve ``session`` until its input ends; then finish or cancel its requests.

    True when the session asked for ``shutdown``: nothing it sends after that is read
    (the worker is about to exit), and its requests are finished, not cancelled.
    """
    max_bytes = ctx.limits.max_line_bytes
    session.max_outbox_bytes = ctx.limits.max_outbox_bytes
    session.on_drop = scheduler.session_ended
    while not session.closed.is_set():
        try:
            raw = read_line(stream, max_bytes)
        except LineTooLong as exc:
            session.send(encode_reply(too_long_reply(exc.size, max_bytes)))
            continue
        except OSError as exc:
            log.info("session %s: read failed (%s)", session.label, exc)
            break
        if raw is None:
            break
        if raw.isspace():  # a blank line (testing it so copies nothing)
            continue
        message, problem = parse_line(raw)
        size = len(raw)
        del raw  # a big request's bytes must not outlive its parse (they would last the fit)
        if problem is not None:
            session.send(encode_reply(problem))
        elif answered_at_once(message, control):
            answer_now(message, session, ctx, dispatcher)
        else:
            job = Job.of(session, message, size)
            if scheduler.submit(job) and job.method == "shutdown":
                return True
        del message
    end_session(session, scheduler)
    return False


def answer_now(message: Any, session: Session, ctx: WorkerContext, dispatcher: Dispatcher) -> None:
    request_id = message.get("id") if isinstance(message, dict) else None
    with ctx.calling(session, request_id):
        reply = dispatcher.handle_message(message)
    if reply is not None:
        session.send(encode_reply(reply))


def end_session(session: Session, scheduler: Scheduler) -> None:
    """stdio: answer what was sent, then stop the worker. A socket: cancel its work."""
    if session.at_end == "finish":
        log.info("input closed; finishing the requests already read")
        scheduler.submit(Job(session, None, end_of_input=True))
    else:
        session.close()
        scheduler.session_ended(session)
