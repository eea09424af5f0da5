"""One call on a node's component, through its `*_raw` method where it has one.

A user's class may implement Seldon's `predict_raw` (and the other `*_raw`
methods) to receive the whole SeldonMessage. In a graph such a method is given
the message as JSON and its reply is decoded back into a payload, as Seldon's
wrapper would; every other call passes payloads straight through.
"""

from __future__ import annotations

from collections.abc import Awaitable

from daneel.graph import messages
from daneel.protocol.payload import Payload
from daneel.protocol.v1 import Feedback
from daneel.runtime.component import Component


def transform(component: Component, method: str, payload: Payload) -> Awaitable[Payload]:
    """predict, transform_input or transform_output."""
    if method not in component.raw_methods:
        # The component's own coroutine, not one awaiting it: no extra frame for every node of every request.
        call: Awaitable[Payload] = getattr(component, method)(payload)
        return call
    return _transform_raw(component, method, payload)


async def _transform_raw(component: Component, method: str, payload: Payload) -> Payload:
    body = await component.call_raw(method, messages.plain(messages.message(payload)))
    return messages.reply(body, payload, f"{component.name}.{method}_raw")


async def route(component: Component, payload: Payload) -> int:
    if "route" not in component.raw_methods:
        return await component.route(payload)
    where = f"{component.name}.route_raw"
    body = await component.call_raw("route", messages.plain(messages.message(payload)))
    return messages.route_index(messages.reply(body, payload, where).data, where)


async def aggregate(component: Component, payloads: list[Payload]) -> Payload:
    if "aggregate" not in component.raw_methods:
        return await component.aggregate(payloads)
    body = await component.call_raw("aggregate", messages.plain(messages.message_list(payloads)))
    return messages.reply(body, payloads[0], f"{component.name}.aggregate_raw")


async def send_feedback(component: Component, feedback: Feedback) -> Payload:
    if "send_feedback" not in component.raw_methods:
        return await component.send_feedback(feedback)
    # What send_feedback_raw returns is not passed on: feedback ends at the node.
    await component.call_raw("send_feedback", messages.plain(messages.feedback(feedback)))
    return Payload([], [], {})
