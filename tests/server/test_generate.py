"""Text generation against a real `daneel serve`: V2's generate extension, and OpenAI's completions
through the official openai client, streamed piece by piece; disconnects, errors, tokens."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import requests

from conftest import Server, Servers

TOKEN = "generate-t0ken_81c2"
CHAT = {"model": "writer", "messages": [{"role": "user", "content": "x"}]}

#: A sync generator, stepped on a thread: prompts starting with `gate:` wait, after their first piece,
#: for the named file; `endless:` ones write "closed" to the named file once closed; `fail` fails after a
#: piece; others echo.
WRITER = """
    import time
    from pathlib import Path


    class Writer:
        def generate(self, prompt, max_tokens):
            if prompt.startswith("gate:"):
                gate = Path(prompt[5:])
                yield "Hello"
                deadline = time.monotonic() + 60
                while not gate.exists() and time.monotonic() < deadline:
                    time.sleep(0.01)
                yield " world"
                yield "!"
                return
            if prompt == "fail":
                yield "so far"
                raise RuntimeError("the weights are gone")
            if prompt.startswith("endless:"):
                try:
                    while True:
                        yield "la "
                        time.sleep(0.01)
                finally:
                    Path(prompt[8:]).write_text("closed")
            for word in prompt.split()[:max_tokens]:
                yield word.upper() + " "

        def count_tokens(self, text):
            return len(text.split())
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, iris: Any) -> Path:
    """A folder of two models: `writer`, which generates text, and `iris`, which does not."""
    folder = tmp_path_factory.mktemp("generate")
    (folder / "writer").mkdir()
    (folder / "writer" / "model.py").write_text(textwrap.dedent(WRITER))
    shutil.copytree(iris.path, folder / "iris")
    return folder


@pytest.fixture(scope="module")
def server(module_serve: Servers, models: Path) -> Server:
    return module_serve(models)


@pytest.fixture(scope="module")
def guarded(module_serve: Servers, models: Path) -> Server:
    return module_serve(models, "--auth-protect", "inference", env={"DANEEL_AUTH_TOKEN": TOKEN})


@pytest.fixture
def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=60)


def events(lines: Iterator[str]) -> Iterator[Any]:
    """The JSON of each server-sent event's `data:` line."""
    for line in lines:
        if line.startswith("data: "):
            yield json.loads(line[len("data: ") :])
        else:
            assert line == "", line


def test_generate_answers_the_whole_text(server: Server) -> None:
    body = {"text_input": "one two three four", "parameters": {"max_tokens": 3}}
    response = requests.post(f"{server.url}/v2/models/writer/generate", json=body, timeout=30)
    assert response.status_code == 200, response.text
    answer = {"model_name": "writer", "model_version": "", "text_output": "ONE TWO THREE ", "finish_reason": "length"}
    assert response.json() == answer


def test_generate_stream_sends_each_piece_as_it_is_produced(server: Server, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    url = f"{server.url}/v2/models/writer/versions/1/generate_stream"
    with (
        httpx.Client(timeout=30) as http,
        http.stream("POST", url, json={"text_input": f"gate:{gate}"}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        received = events(response.iter_lines())
        first = next(received)  # the class has yielded "Hello" and waits for the gate: no later piece exists yet
        assert first == {"model_name": "writer", "model_version": "1", "text_output": "Hello"}
        gate.touch()
        rest = list(received)
    assert [event["text_output"] for event in rest] == [" world", "!", ""]
    assert rest[-1]["finish_reason"] == "stop"


def test_a_client_that_disconnects_stops_the_generation(
    server: Server, tmp_path: Path, wait_for: Callable[..., None]
) -> None:
    record = tmp_path / "record"
    body = {"text_input": f"endless:{record}", "max_tokens": 1_000_000}
    with (
        httpx.Client(timeout=30) as http,
        http.stream("POST", f"{server.url}/v2/models/writer/generate_stream", json=body) as response,
    ):
        assert next(events(response.iter_lines()))["text_output"] == "la "
    wait_for(lambda: record.exists(), "the generator to be closed after the client left")
    assert record.read_text() == "closed"


def test_a_client_that_gives_up_on_a_whole_answer_stops_the_generation(
    server: Server, tmp_path: Path, wait_for: Callable[..., None]
) -> None:
    record = tmp_path / "record"
    body = {"model": "writer", "prompt": f"endless:{record}", "max_tokens": 1_000_000}
    with pytest.raises(httpx.ReadTimeout):  # the client stops waiting and closes its connection
        httpx.post(f"{server.url}/v1/completions", json=body, timeout=httpx.Timeout(30, read=1))
    wait_for(lambda: record.exists(), "the generator to be closed after the client left")


def test_an_error_after_the_first_piece_is_the_streams_last_event(server: Server) -> None:
    message = "writer.generate raised RuntimeError: the weights are gone"
    with httpx.stream("POST", f"{server.url}/v2/models/writer/generate_stream", json={"text_input": "fail"}) as v2:
        assert [e.get("text_output", e.get("error")) for e in events(v2.iter_lines())] == ["so far", message]
    body = {"model": "writer", "prompt": "fail", "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/completions", json=body) as openai_stream:
        lines = [line for line in openai_stream.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[-2][len("data: ") :])["error"]["message"] == message
    whole = requests.post(f"{server.url}/v2/models/writer/generate", json={"text_input": "fail"}, timeout=30)
    assert (whole.status_code, whole.json()) == (500, {"error": message})


def test_completions_through_the_openai_client(client: openai.OpenAI) -> None:
    completion = client.completions.create(model="writer", prompt="say it twice", max_tokens=2)
    assert completion.model == "writer"
    assert completion.choices[0].text == "SAY IT "
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (3, 2)
    assert completion.usage.total_tokens == 5


def test_completions_stream_through_the_openai_client(client: openai.OpenAI, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    stream = client.completions.create(
        model="writer", prompt=f"gate:{gate}", stream=True, stream_options={"include_usage": True}
    )
    chunks = iter(stream)
    assert next(chunks).choices[0].text == "Hello"  # before the class can yield the rest
    gate.touch()
    rest = list(chunks)
    assert [c.choices[0].text for c in rest if c.choices] == [" world", "!", ""]
    assert [c.choices[0].finish_reason for c in rest if c.choices][-1] == "stop"
    assert rest[-1].usage is not None and rest[-1].usage.completion_tokens == 3


def test_chat_completions_through_the_openai_client(client: openai.OpenAI) -> None:
    chat = client.chat.completions.create(model="writer", messages=[{"role": "user", "content": "hi there"}])
    assert chat.choices[0].message.role == "assistant"
    assert chat.choices[0].message.content == "USER: HI THERE ASSISTANT: "  # the plain "role: content" prompt
    assert chat.choices[0].finish_reason == "stop"
    assert chat.usage is not None and chat.usage.completion_tokens == 4


def test_chat_completions_stream_through_the_openai_client(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="writer", messages=[{"role": "system", "content": "be brief"}], stream=True
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "SYSTEM: BE BRIEF ASSISTANT: "
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_the_openai_client_lists_the_models_that_generate(client: openai.OpenAI) -> None:
    assert [model.id for model in client.models.list()] == ["writer"]


def test_a_model_that_does_not_generate_is_refused_in_each_protocols_shape(
    server: Server, client: openai.OpenAI
) -> None:
    response = requests.post(f"{server.url}/v2/models/iris/generate_stream", json={"text_input": "x"}, timeout=30)
    assert response.status_code == 400
    assert response.json() == {"error": "model: model 'iris' does not generate text; these do: writer"}
    with pytest.raises(openai.BadRequestError) as refused:
        client.completions.create(model="iris", prompt="x")
    assert refused.value.param == "model"
    assert "does not generate text" in refused.value.message
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="nobody", messages=[{"role": "user", "content": "x"}])
    assert missing.value.param == "model"
    response = requests.post(f"{server.url}/v2/models/nobody/generate", json={"text_input": "x"}, timeout=30)
    assert response.status_code == 404 and "nobody" in response.json()["error"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v2/models/writer/generate", {"parameters": {}}, "text_input"),
        ("/v2/models/writer/generate", {"text_input": "x", "parameters": {"max_tokens": "5"}}, "parameters.max_tokens"),
        ("/v2/models/writer/generate_stream", {"text_input": "x", "temperature": -1}, "temperature"),
        ("/v2/models/writer/generate", {"text_input": "x", "parameters": []}, "parameters"),
    ],
)
def test_bad_v2_fields_are_named(server: Server, path: str, body: Any, field: str) -> None:
    response = requests.post(server.url + path, json=body, timeout=30)
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"{field}: expected")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/completions", {"model": "writer", "prompt": 3}, "prompt"),
        ("/v1/completions", {"model": "writer", "prompt": "x", "top_p": 0}, "top_p"),
        ("/v1/completions", {"model": "writer", "prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ("/v1/completions", {"model": "writer", "prompt": "x", "n": 2}, "n"),
        ("/v1/completions", {"prompt": "x"}, "model"),
        ("/v1/chat/completions", {"model": "writer", "messages": []}, "messages"),
        ("/v1/chat/completions", {"model": "writer", "messages": [{"role": "x", "content": "y"}]}, "messages[0].role"),
        ("/v1/chat/completions", {"model": "writer", "messages": [{"role": "user"}], "stream": "yes"}, "stream"),
        ("/v1/chat/completions", {**CHAT, "max_completion_tokens": 0}, "max_completion_tokens"),
    ],
)
def test_bad_openai_fields_are_named_in_openais_shape(server: Server, path: str, body: Any, field: str) -> None:
    response = requests.post(server.url + path, json=body, timeout=30)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["param"], error["type"], error["code"]) == (field, "invalid_request_error", "invalid_input")
    assert error["message"].startswith(f"{field}: expected")


def test_a_body_that_is_not_json_is_refused_in_openais_shape(server: Server) -> None:
    response = requests.post(f"{server.url}/v1/chat/completions", data=b"{not json", timeout=30)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "body"


def test_generation_requests_are_measured(server: Server, client: openai.OpenAI) -> None:
    client.completions.create(model="writer", prompt="count me")
    metrics = requests.get(f"{server.url}/metrics", timeout=30).text
    assert 'protocol="openai"' in metrics


def test_a_token_guards_generation_where_inference_is_guarded(guarded: Server) -> None:
    refused = requests.post(f"{guarded.url}/v2/models/writer/generate", json={"text_input": "x"}, timeout=30)
    assert refused.status_code == 401 and "token" in refused.json()["error"]
    stranger = openai.OpenAI(base_url=guarded.url + "/v1", api_key="not-the-token", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as unauthenticated:
        stranger.models.list()
    assert unauthenticated.value.code == "unauthenticated"
    friend = openai.OpenAI(base_url=guarded.url + "/v1", api_key=TOKEN, max_retries=0)
    assert friend.completions.create(model="writer", prompt="let me in").choices[0].text == "LET ME IN "
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body = {"text_input": "ok"}
    with httpx.stream("POST", f"{guarded.url}/v2/models/writer/generate_stream", json=body, headers=headers) as ok:
        assert [event["text_output"] for event in events(ok.iter_lines())] == ["OK ", ""]


def test_the_openapi_documents_list_generation_where_a_model_generates(server: Server) -> None:
    paths = requests.get(f"{server.url}/openapi.json", timeout=30).json()["paths"]
    assert {"/v1/completions", "/v1/chat/completions", "/v1/models"} <= set(paths)
    errors = paths["/v1/completions"]["post"]["responses"]["400"]["content"]["application/json"]["schema"]
    assert errors == {"$ref": "#/components/schemas/OpenAIError"}
    writer = requests.get(f"{server.url}/v2/models/writer/openapi.json", timeout=30).json()["paths"]
    assert {"/v2/models/writer/generate", "/v2/models/writer/generate_stream"} <= set(writer)
    iris = requests.get(f"{server.url}/v2/models/iris/openapi.json", timeout=30).json()["paths"]
    assert not [path for path in iris if "generate" in path]
