"""The helper process that decodes large bodies: it answers, carries daneel's errors back, and is replaced."""

from __future__ import annotations

import asyncio
import multiprocessing
import os

import pytest

from daneel.errors import InvalidInput
from daneel.server.bodies import Decoder


def where() -> int:
    return os.getpid()


def refuse(field: str) -> None:
    raise InvalidInput(field, "expected something else")


def die_unless_main() -> int:
    if multiprocessing.parent_process() is not None:
        os._exit(1)
    return os.getpid()


def test_decoding_runs_in_another_process_and_errors_come_back_whole() -> None:
    async def go() -> tuple[int, InvalidInput]:
        decoder = Decoder()
        try:
            pid = await decoder(where)
            with pytest.raises(InvalidInput) as caught:
                await decoder(refuse, "inputs[0].data")
            return pid, caught.value
        finally:
            decoder.close()

    pid, error = asyncio.run(go())
    assert pid != os.getpid()
    assert (error.field, error.message) == ("inputs[0].data", "inputs[0].data: expected something else")


def test_a_helper_that_dies_is_replaced_and_its_work_done_on_a_thread() -> None:
    async def go() -> tuple[int, int]:
        decoder = Decoder()
        try:
            return await decoder(die_unless_main), await decoder(where)
        finally:
            decoder.close()

    fallback, fresh = asyncio.run(go())
    assert fallback == os.getpid()  # the dead helper's call, done here instead
    assert fresh != os.getpid()
