"""Carrying out the client state machine's actions on a session, in order.

If the connection breaks under a publish, that publish and every later one go back to
the machine as never sent (:meth:`~taskrpc.client.machine.ClientMachine.unsent`); if a
declaration is refused, the calls waiting for it fail with the reason.
"""

from __future__ import annotations

from .. import delays
from ..exceptions import BrokerError
from ..queues import explain_refusal
from .machine import ClientMachine
from .session import Session
from .states import Action, Declare, Fail, IllegalTransition, Publish, Sent


def carry_out(machine: ClientMachine, session: Session | None, actions: list[Action]) -> None:
    """Do ``actions``, with the client's I/O lock held.

    Raises:
        The session's connection or channel errors, after the actions not done were
        handed back to the machine: the caller reconnects.
    """
    for index, action in enumerate(actions):
        if isinstance(action, Fail):
            action.call._settle(None, action.error)
            continue
        if isinstance(action, Sent):
            action.call._settle(None, None)
            continue
        assert session is not None  # the machine acts on a connection only when READY
        try:
            if isinstance(action, Publish):
                call, properties, exchange, routing_key = action
                tag = session.publish(call.request.body, properties, exchange, routing_key)
                if tag != call.tag:  # the machine numbers publishes as the channel does
                    raise IllegalTransition(f"publish {tag} numbered {call.tag} here")
            else:
                session.declare(action.queue)
        except session.channel_errors as exc:  # the channel closed: reconnect
            abort(machine, session, actions[index:], exc)
            raise
        except session.connection_errors:
            abort(machine, session, actions[index:], None)
            raise
        except BrokerError as exc:  # refused here (no delay cascade in-process)
            abort(machine, session, actions[index:], exc)
            return


def abort(
    machine: ClientMachine,
    session: Session,
    actions: list[Action],
    declare_error: BaseException | None,
) -> None:
    """Actions that never happened: their publishes go back to the outbox."""
    for action in actions:
        if isinstance(action, Publish):
            machine.unsent(action.call)
        elif isinstance(action, Fail):
            action.call._settle(None, action.error)
        # A Sent after an unsent Publish: that call is queued again, not sent.
    first = actions[0]
    if declare_error is not None and isinstance(first, Declare):
        name = first.queue
        if name == delays.PREFIX:
            reason = f"cannot declare the delay queues: {declare_error}"
            if isinstance(declare_error, BrokerError):
                reason = str(declare_error)
        else:
            hint = explain_refusal(str(declare_error))
            reason = f"cannot declare queue {name!r}: {hint or declare_error}"
        carry_out(machine, session, machine.declare_failed(name, reason))
    session.wake()  # the I/O thread publishes what went back to the outbox
