"""The MQTT connection loop stops when asked, even when the disconnect on the way out fails.

aiomqtt's ``__aexit__`` waits for the broker to confirm the disconnect and
raises MqttError("Operation timed out") when it does not: raised while the
task is being cancelled, that error used to replace the cancellation, the
reconnect loop carried on, and ``stop()`` waited for ever (a whole test run
hung that way on a loaded machine). No broker here: a client whose exit
always fails stands in for one that never answers.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiomqtt
import pytest
from chaosmagnet.mqtt import client as mqtt_module
from chaosmagnet.mqtt.client import MeshConnection, cancel_and_wait
from chaosmagnet.mqtt.url import BrokerURL


class _NeverAnswers:
    """An aiomqtt.Client stand-in: connects, then waits for messages for ever; its disconnect fails."""

    connects = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    async def __aenter__(self) -> _NeverAnswers:
        type(self).connects += 1
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.sleep(0.01)
        raise aiomqtt.MqttError("Operation timed out")

    @property
    def messages(self) -> Any:
        async def forever() -> Any:
            await asyncio.Event().wait()
            yield None  # pragma: no cover

        return forever()


def test_stop_ends_the_loop_when_the_disconnect_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mqtt_module, "mqtt_client", lambda *a, **k: _NeverAnswers())
    _NeverAnswers.connects = 0

    async def on_connected(client: Any) -> None:
        return None

    async def scenario() -> None:
        connection = MeshConnection(None, BrokerURL("127.0.0.1", 1), lambda t, p: None, on_connected)  # type: ignore[arg-type]
        connection.start()
        await asyncio.wait_for(connection.connected.wait(), 5)
        task = connection._task
        await asyncio.wait_for(connection.stop(), 10)
        assert task is not None and task.done()
        await asyncio.sleep(1.0)  # no reconnect after stop
        assert _NeverAnswers.connects == 1
        assert connection.state == "stopped"

    asyncio.run(scenario())


def test_cancel_and_wait_is_bounded() -> None:
    async def scenario() -> None:
        stubborn_now = True

        async def stubborn() -> None:
            while True:
                try:
                    await asyncio.sleep(0.05)
                except asyncio.CancelledError:
                    if not stubborn_now:
                        raise
                    # swallowed, as a failed disconnect used to

        task = asyncio.create_task(stubborn())
        await asyncio.sleep(0)
        await cancel_and_wait(task, timeout=0.3)  # returns although the task goes on
        assert not task.done()
        stubborn_now = False
        await cancel_and_wait(task, timeout=5)
        assert task.cancelled()

    asyncio.run(scenario())
