"""HUGGINGFACE_SERVER on tiny randomly initialised transformers models built here from a config.

Every answer is checked against the transformers pipeline's own on the same model (question-answering,
which transformers 5 dropped, against the model's own logits), directly, through tritonclient over REST
and gRPC, in Seldon's protocol and as a graph node. Nothing comes from a model hub.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import json
import os
import tarfile
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers is imported; `daneel serve` processes inherit it
torch = pytest.importorskip("torch", reason="HUGGINGFACE_SERVER needs torch: pip install 'daneel[huggingface]'")
transformers = pytest.importorskip(
    "transformers", reason="HUGGINGFACE_SERVER needs transformers: pip install 'daneel[huggingface]'"
)
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors  # noqa: E402

from daneel.errors import InvalidInput, LoadError  # noqa: E402
from daneel.protocol.payload import Payload  # noqa: E402
from daneel.runtime import loader, prepackaged  # noqa: E402
from daneel.runtime.generation import GenerationRequest, Generator, Piece  # noqa: E402
from daneel.runtime.huggingface import HuggingFaceComponent, TextGenerationComponent  # noqa: E402

VOCABULARY = (
    "the a cat dog sat on mat ran fast slow red blue big small is was and or what who where why how"
    " paris rome city river house tree bird sky sun moon green old new"
)
WORDS = VOCABULARY.split(" ")


def tokenizer(pairs: bool) -> Any:
    """A word-level tokenizer over WORDS: BERT's [CLS] a [SEP] b [SEP] layout, or a plain one with an end token."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] if pairs else ["[UNK]", "<eos>"]
    vocab = {token: i for i, token in enumerate([*specials, *WORDS, *".,?!"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece()
    fast = transformers.PreTrainedTokenizerFast
    if not pairs:
        return fast(tokenizer_object=tok, unk_token="[UNK]", eos_token="<eos>", model_max_length=256)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return fast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=64,
    )


def save(model: Any, tok: Any, folder: Path) -> Path:
    model.eval().save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder


def bert(cls: str, folder: Path, **labels: Any) -> Path:
    torch.manual_seed(0)
    tok = tokenizer(pairs=True)
    config = transformers.BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
        **labels,
    )
    return save(getattr(transformers, cls)(config), tok, folder)


def gpt(folder: Path) -> Path:
    torch.manual_seed(0)
    tok = tokenizer(pairs=False)
    config = transformers.GPT2Config(
        vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2, n_positions=256, initializer_range=0.5,
        bos_token_id=1, eos_token_id=1,
    )  # fmt: skip
    return save(transformers.GPT2LMHeadModel(config), tok, folder)


def labels(*names: str) -> dict[str, Any]:
    return {"id2label": dict(enumerate(names)), "label2id": {name: i for i, name in enumerate(names)}}


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "sentiment": lambda f: bert("BertForSequenceClassification", f, **labels("negative", "positive")),
    "places": lambda f: bert("BertForTokenClassification", f, **labels("O", "B-PLACE", "I-PLACE")),
    "nli": lambda f: bert("BertForSequenceClassification", f, **labels("entailment", "neutral", "contradiction")),
    "embed": lambda f: bert("BertModel", f),
    "masked": lambda f: bert("BertForMaskedLM", f),
    "reader": lambda f: bert("BertForQuestionAnswering", f),
    "writer": gpt,
}
TASKS = {
    "sentiment": "text-classification",
    "places": "token-classification",
    "nli": "zero-shot-classification",
    "embed": "feature-extraction",
    "masked": "fill-mask",
    "reader": "question-answering",
    "writer": "text-generation",
}
TEXTS = ["the cat sat on the mat", "a big dog ran to paris"]
MASKED = ["the [MASK] sat on the mat", "a big dog [MASK] fast"]
QUESTIONS = ["who sat on the mat ?", "where was the dog ?"]
CANDIDATES = ["red", "blue", "green"]
PROMPTS = ["the cat", "where is the big red house", "a dog ran"]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of tiny model folders, one per task."""
    folder = tmp_path_factory.mktemp("hf")
    for name, build in BUILDERS.items():
        build(folder / name)
    return folder


@functools.cache
def pipeline(folder: Path, task: str) -> Any:
    return transformers.pipeline(task, model=str(folder), tokenizer=str(folder))


def reader_answer(folder: Path, question: str, context: str) -> dict[str, Any]:
    """Extractive QA from the model's own logits: every span of up to 15 context tokens, scored p(start) * p(end)."""
    tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    model = transformers.AutoModelForQuestionAnswering.from_pretrained(str(folder)).eval()
    encoded = tok(question, context, return_offsets_mapping=True, return_tensors="pt")
    offsets = encoded.pop("offset_mapping")[0].tolist()
    inside = [i for i, sequence in enumerate(encoded.sequence_ids(0)) if sequence == 1]
    with torch.no_grad():
        output = model(**encoded)
    start = output.start_logits[0, inside].softmax(-1).tolist()
    end = output.end_logits[0, inside].softmax(-1).tolist()
    spans = [(start[a] * end[b], a, b) for a in range(len(inside)) for b in range(a, min(a + 15, len(inside)))]
    score, a, b = max(spans)
    begin, finish = offsets[inside[a]][0], offsets[inside[b]][1]
    return {"score": score, "start": begin, "end": finish, "answer": context[begin:finish]}


def inputs(name: str) -> dict[str, list[str]]:
    """What a request to model `name` holds, by input name."""
    if name == "reader":
        return {"question": QUESTIONS, "context": TEXTS}
    if name == "nli":
        return {"text": TEXTS, "candidate_labels": CANDIDATES}
    return {"text": MASKED if name == "masked" else PROMPTS[:2] if name == "writer" else TEXTS}


def expected(root: Path, name: str) -> list[Any]:
    """The pipeline's own result for each row of `inputs(name)`."""
    folder, task, data = root / name, TASKS[name], inputs(name)
    if name == "reader":
        return [reader_answer(folder, q, c) for q, c in zip(QUESTIONS, TEXTS, strict=True)]
    pipe = pipeline(folder, task)
    if name == "nli":
        return [pipe(text, candidate_labels=CANDIDATES) for text in TEXTS]
    if name == "writer":
        return [pipe(text, max_new_tokens=16, do_sample=False)[0] for text in data["text"]]
    if name == "sentiment":
        return [pipe(text)[0] for text in TEXTS]
    if name == "embed":
        return [pipe(text)[0] for text in TEXTS]
    return [pipe(text) for text in data["text"]]


def same(got: Any, want: Any) -> bool:
    """Equal JSON values, floats to a relative 1e-5 (float32 on the wire)."""
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(same(got[k], want[k]) for k in want)
    if isinstance(want, (list, tuple)):
        return len(got) == len(want) and all(same(a, b) for a, b in zip(got, want, strict=True))
    if isinstance(want, float):
        return bool(np.isclose(got, want, rtol=1e-5, atol=1e-6))
    return bool(got == want)


def check_tensors(root: Path, name: str, outputs: dict[str, np.ndarray]) -> None:
    """V2 outputs (by name, as numpy) against the pipeline's results."""
    rows = expected(root, name)
    text = {
        key: [str(v.decode() if isinstance(v, bytes) else v) for v in np.ravel(value)] for key, value in outputs.items()
    }
    if name == "places":
        assert same([json.loads(row) for row in text["entities"]], rows)
    elif name == "embed":
        for i, row in enumerate(rows):
            assert outputs["tokens"][i] == len(row)
            np.testing.assert_allclose(outputs["embeddings"][i, : len(row)], row, rtol=1e-5, atol=1e-5)
    elif name == "masked":
        for key in ("sequence", "token_str", "token", "score"):
            want = [entry[key] for row in rows for entry in row]
            got = text[key] if key in ("sequence", "token_str") else np.ravel(outputs[key]).tolist()
            assert same(got, want), key
        assert np.shape(outputs["score"]) == (2, 5)
    elif name == "nli":
        assert np.shape(outputs["labels"]) == (2, 3)
        assert text["labels"] == [label for row in rows for label in row["labels"]]
        np.testing.assert_allclose(np.ravel(outputs["scores"]), [s for row in rows for s in row["scores"]], rtol=1e-5)
    else:
        for key, want in rows[0].items():
            got = text[key] if isinstance(want, str) else np.ravel(outputs[key]).tolist()
            assert same(got, [row[key] for row in rows]), key


def loaded(folder: Path, **parameters: Any) -> HuggingFaceComponent:
    component = HuggingFaceComponent(folder.name, folder, parameters)
    asyncio.run(component.load())
    return component


# -- the folder, the task, the component ------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(TASKS))
def test_a_model_folder_is_recognised_and_its_task_read_from_its_config(root: Path, name: str) -> None:
    assert prepackaged.recognise(root / name) == "HUGGINGFACE_SERVER"
    assert loader.resolve(str(root / name)).implementation == "HUGGINGFACE_SERVER"
    component = HuggingFaceComponent(name, root / name, {})
    assert component.task == TASKS[name]
    assert isinstance(component, Generator) == (name == "writer")


@pytest.mark.parametrize("name", list(TASKS))
def test_each_task_answers_as_its_pipeline(root: Path, name: str) -> None:
    component = loaded(root / name)
    data = {key: np.array(value, dtype=object) for key, value in inputs(name).items()}
    result = asyncio.run(component.predict(Payload(data if len(data) > 1 else data["text"], form="v2")))
    check_tensors(root, name, result.data)
    outputs = component.metadata().v2()["outputs"]
    assert [output["name"] for output in outputs] == list(result.data)
    for output in outputs:
        assert len(output["shape"]) == np.ndim(result.data[output["name"]])


def test_the_task_parameter_wins_over_the_config(root: Path) -> None:
    component = loaded(root / "nli", task="text-classification")
    result = asyncio.run(component.predict(Payload(["the cat"], form="v2")))
    assert result.data["label"][0] == pipeline(root / "nli", "text-classification")("the cat")[0]["label"]


def test_daneel_yaml_may_name_the_task(root: Path, tmp_path: Path) -> None:
    folder = tmp_path / "labels"
    folder.mkdir()
    for file in (root / "nli").iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    (folder / "daneel.yaml").write_text("implementation: HUGGINGFACE_SERVER\nparameters: {task: text-classification}\n")
    spec = loader.resolve(str(folder))
    component = loader.build(spec)
    assert (spec.implementation, spec.parameters) == ("HUGGINGFACE_SERVER", {"task": "text-classification"})
    assert isinstance(component, HuggingFaceComponent) and component.task == "text-classification"


def test_a_folder_without_tokenizer_or_weights_is_not_recognised(root: Path, tmp_path: Path) -> None:
    folder = tmp_path / "bare"
    folder.mkdir()
    (folder / "config.json").write_text((root / "sentiment" / "config.json").read_text())
    assert prepackaged.recognise(folder) is None
    (folder / "model.safetensors").write_bytes((root / "sentiment" / "model.safetensors").read_bytes())
    assert prepackaged.recognise(folder) is None  # no tokenizer
    (folder / "tokenizer_config.json").write_text("{}")
    assert prepackaged.recognise(folder) == "HUGGINGFACE_SERVER"


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"task": "translation"}, "parameter task: 'translation' is not one of text-classification"),
        ({"device": "gpu"}, "parameter device: expected cpu, cuda or cuda:N, got 'gpu'"),
        ({"max_new_tokens": 0}, "parameter max_new_tokens: expected an integer of at least 1, got 0"),
        ({"colour": "red"}, "unknown parameter.*colour.*expected task, device"),
    ],
)
def test_bad_parameters_are_load_errors_naming_them(root: Path, parameters: dict[str, Any], message: str) -> None:
    with pytest.raises(LoadError, match=message):
        HuggingFaceComponent("m", root / "sentiment", parameters)


def test_an_architecture_without_a_task_asks_for_the_parameter(root: Path, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertForPreTraining"]}))
    with pytest.raises(LoadError, match="BertForPreTraining names no task daneel knows; set parameter task"):
        HuggingFaceComponent("m", tmp_path, {})


def test_weights_that_do_not_load_are_a_load_error(root: Path, tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    for file in (root / "sentiment").iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    (folder / "model.safetensors").write_text("not weights")
    with pytest.raises(LoadError, match=r"broken: cannot be loaded as a text-classification pipeline \(.*header"):
        loaded(folder)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this torch has a CUDA device")
def test_a_cuda_device_without_one_is_a_load_error(root: Path) -> None:
    with pytest.raises(LoadError, match="parameter device: cuda:0 asked for, but this torch sees no CUDA device"):
        loaded(root / "sentiment", device="cuda:0")


@pytest.mark.parametrize(
    ("name", "data", "field", "message"),
    [
        ("sentiment", np.array([1.0, 2.0]), "input[0]", "expected text"),
        ("sentiment", {"a": ["x"], "b": ["y"]}, "inputs", "takes one input of text, got a, b"),
        ("reader", {"question": ["who ?"]}, "context", "is missing; a question-answering model takes inputs"),
        ("reader", {"question": ["a", "b"], "context": ["x", "y", "z"]}, "context", "has 3 rows but question has 2"),
        ("reader", ["who ?"], "inputs", "takes named inputs question and context"),
        ("nli", {"text": ["the cat"]}, "candidate_labels", "is missing"),
        ("masked", ["[MASK] [MASK]"], "input[0]", "more than one mask token"),
        ("sentiment", [], "input", "expected at least one row of text"),
    ],
)
def test_bad_input_names_the_field(root: Path, name: str, data: Any, field: str, message: str) -> None:
    component = loaded(root / name)
    with pytest.raises(InvalidInput, match=message) as caught:
        asyncio.run(component.predict(Payload(data, form="v2")))
    assert caught.value.field == field


def test_seldon_forms_answer_with_the_pipelines_own_json(root: Path) -> None:
    component = loaded(root / "sentiment")
    one = asyncio.run(component.predict(Payload("the cat sat", form="strData")))
    assert one.form == "jsonData"
    assert same(one.data, pipeline(root / "sentiment", TASKS["sentiment"])("the cat sat")[0])
    rows = asyncio.run(component.predict(Payload(TEXTS, form="jsonData")))
    assert same(rows.data, expected(root, "sentiment"))


def test_an_http_source_of_an_archived_folder_is_fetched_and_served(root: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    with tarfile.open(site / "sentiment.tar.gz", "w:gz") as archive:
        archive.add(root / "sentiment", "sentiment")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        uri = f"http://127.0.0.1:{server.server_address[1]}/sentiment.tar.gz"
        spec = loader.resolve(uri, cache_dir=tmp_path / "cache")
    finally:
        server.shutdown()
    assert (spec.name, spec.implementation) == ("sentiment", "HUGGINGFACE_SERVER")
    component = loader.build(spec)
    asyncio.run(component.load())
    result = asyncio.run(component.predict(Payload(TEXTS, form="v2")))
    check_tensors(root, "sentiment", result.data)


# -- generation --------------------------------------------------------------------------------------------------


async def collect(component: Any, request: GenerationRequest) -> list[Piece]:
    return [piece async for piece in component.generate(request)]


def greedy(root: Path, prompt: str, max_tokens: int) -> str:
    pipe = pipeline(root / "writer", "text-generation")
    return str(pipe(prompt, max_new_tokens=max_tokens, do_sample=False, return_full_text=False)[0]["generated_text"])


def token_count(root: Path, prompt: str, max_tokens: int) -> tuple[int, int]:
    """The prompt's tokens and how many the model generates greedily (without its end token)."""
    pipe = pipeline(root / "writer", "text-generation")
    ids = pipe.tokenizer(prompt, return_tensors="pt")
    out = pipe.model.generate(**ids, max_new_tokens=max_tokens, do_sample=False)[0, ids["input_ids"].shape[1] :]
    return ids["input_ids"].shape[1], len([token for token in out.tolist() if token != pipe.tokenizer.eos_token_id])


@pytest.fixture
def writer(root: Path) -> TextGenerationComponent:
    component = loaded(root / "writer")
    assert isinstance(component, TextGenerationComponent)
    return component


def watch_generate(component: TextGenerationComponent) -> list[int]:
    """Record the batch size of each `generate` call the component's model gets."""
    model = component.pipeline.model
    original = model.generate
    sizes: list[int] = []

    @functools.wraps(original)
    def generate(*args: Any, **kwargs: Any) -> Any:
        sizes.append(int(kwargs["input_ids"].shape[0]))
        return original(*args, **kwargs)

    model.generate = generate
    return sizes


@pytest.mark.parametrize("prompt", PROMPTS)
def test_pieces_join_to_what_the_pipeline_generates_greedily(root: Path, writer: Any, prompt: str) -> None:
    pieces = asyncio.run(collect(writer, GenerationRequest(prompt, max_tokens=12)))
    assert "".join(piece.text for piece in pieces) == greedy(root, prompt, 12)
    assert all(piece.finish_reason is None for piece in pieces[:-1])
    prompt_tokens, generated = token_count(root, prompt, 12)
    assert pieces[-1].finish_reason == ("length" if generated == 12 else "stop")
    assert (pieces[-1].prompt_tokens, sum(piece.tokens for piece in pieces)) == (prompt_tokens, generated)
    assert len(pieces) > 2  # streamed, not joined


def test_a_stop_sequence_ends_the_text_before_it(root: Path, writer: Any) -> None:
    full = greedy(root, PROMPTS[1], 12)
    stop = full.split()[3]
    pieces = asyncio.run(collect(writer, GenerationRequest(PROMPTS[1], max_tokens=12, stop=(f" {stop}",))))
    assert "".join(piece.text for piece in pieces) == full[: full.index(f" {stop}")]
    assert pieces[-1].finish_reason == "stop"


def test_sampling_with_a_seed_repeats(writer: Any) -> None:
    request = GenerationRequest(PROMPTS[0], max_tokens=12, temperature=1.5, top_p=0.9, seed=7)
    first, second = (asyncio.run(collect(writer, request)) for _ in range(2))
    assert "".join(p.text for p in first) == "".join(p.text for p in second)


def test_concurrent_requests_are_generated_in_one_call(root: Path, writer: Any) -> None:
    sizes = watch_generate(writer)

    async def together() -> list[list[Piece]]:
        return await asyncio.gather(*(collect(writer, GenerationRequest(p, max_tokens=10)) for p in PROMPTS))

    results = asyncio.run(together())
    assert sizes == [len(PROMPTS)]
    for prompt, pieces in zip(PROMPTS, results, strict=True):
        assert "".join(piece.text for piece in pieces) == greedy(root, prompt, 10)
        assert pieces[-1].prompt_tokens == token_count(root, prompt, 10)[0]


def gate_forward(component: TextGenerationComponent, steps: int) -> tuple[threading.Event, list[int]]:
    """Hold the model's forward pass number `steps` + 1 until the returned event is set; count the passes."""
    model = component.pipeline.model
    original = model.forward
    gate, calls = threading.Event(), []

    @functools.wraps(original)  # generate reads forward's signature to decide what to pass it (position_ids)
    def forward(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == steps + 1:
            gate.wait(timeout=60)
        return original(*args, **kwargs)

    model.forward = forward
    return gate, calls


def test_a_closed_iterator_stops_the_generation(root: Path, writer: Any) -> None:
    prompt = PROMPTS[1]
    assert token_count(root, prompt, 60)[1] == 60  # left alone, it would write all 60
    gate, calls = gate_forward(writer, 3)

    async def leave_early() -> list[Piece]:
        stream = writer.generate(GenerationRequest(prompt, max_tokens=60))
        pieces = [await anext(stream), await anext(stream)]
        await stream.aclose()
        gate.set()
        while writer._generator.runner is not None:
            await asyncio.sleep(0.01)
        return pieces

    pieces = asyncio.run(leave_early())
    assert len(pieces) == 2
    assert len(calls) <= 5  # the step held open, and at most one more


def test_a_request_that_leaves_stops_only_its_own_stream(root: Path, writer: Any) -> None:
    sizes = watch_generate(writer)
    gate, calls = gate_forward(writer, 3)

    async def one_leaves() -> list[Piece]:
        leaving = writer.generate(GenerationRequest(PROMPTS[1], max_tokens=30))
        staying = asyncio.ensure_future(collect(writer, GenerationRequest(PROMPTS[0], max_tokens=30)))
        await anext(leaving)
        await leaving.aclose()
        gate.set()
        return await staying

    pieces = asyncio.run(one_leaves())
    assert sizes == [2]
    assert "".join(piece.text for piece in pieces) == greedy(root, PROMPTS[0], 30)
    assert len(calls) > 5  # the staying request went on after the other left


@pytest.mark.parametrize(
    ("request_", "field", "message"),
    [
        (GenerationRequest(""), "prompt", "holds no tokens for this model to continue"),
        (GenerationRequest("the cat", max_tokens=255), "max_tokens", "2 tokens and 255 more exceed the model's 256"),
    ],
)
def test_a_prompt_the_model_cannot_continue_is_bad_input(
    writer: Any, request_: GenerationRequest, field: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        asyncio.run(collect(writer, request_))
    assert caught.value.field == field


def test_no_tokens_asked_for_is_one_empty_piece(writer: Any) -> None:
    pieces = asyncio.run(collect(writer, GenerationRequest("the cat sat", max_tokens=0)))
    assert pieces == [Piece("", 0, "length", 3)]


def test_non_streaming_inference_returns_the_generated_text(root: Path, writer: Any) -> None:
    result = asyncio.run(writer.predict(Payload(np.array(PROMPTS[:2], dtype=object), form="v2")))
    check_tensors(root, "writer", result.data)


def test_chat_prompt_uses_the_template_or_a_plain_layout(root: Path, writer: Any) -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "the cat ?"}]
    assert writer.chat_prompt(messages) == "system: be brief\nuser: the cat ?\nassistant:"
    writer.pipeline.tokenizer.chat_template = (
        "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}<assistant>"
    )
    assert writer.chat_prompt(messages) == "<system>be brief<user>the cat ?<assistant>"


# -- served ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(module_serve: Any, root: Path) -> Any:
    return module_serve(root, env={"HF_HUB_OFFLINE": "1"})


def test_the_openai_client_streams_from_a_served_text_generation_model(root: Path, served: Any) -> None:
    """The official client, `stream: true`, against `daneel serve` of the tiny model: the chunks arrive one
    piece each and join to what the pipeline generates greedily; V2's generate_stream says the same."""
    openai = pytest.importorskip("openai", reason="the openai client is in the dev extra")
    client = openai.OpenAI(base_url=served.url + "/v1", api_key="unused", max_retries=0, timeout=120)
    prompt, tokens = PROMPTS[1], 8
    stream = client.completions.create(model="writer", prompt=prompt, max_tokens=tokens, temperature=0, stream=True)
    chunks = [chunk.choices[0].text for chunk in stream if chunk.choices]
    assert len(chunks) > 1
    assert "".join(chunks) == greedy(root, prompt, tokens)
    body = {"text_input": prompt, "parameters": {"max_tokens": tokens, "temperature": 0}}
    with requests.post(f"{served.url}/v2/models/writer/generate_stream", json=body, stream=True, timeout=120) as sse:
        assert sse.status_code == 200
        events = [json.loads(line[len(b"data: ") :]) for line in sse.iter_lines() if line.startswith(b"data: ")]
    assert "".join(event["text_output"] for event in events) == greedy(root, prompt, tokens)


def triton_inputs(module: Any, name: str, binary: bool | None) -> list[Any]:
    tensors = []
    for key, values in inputs(name).items():
        tensor = module.InferInput(key, [len(values)], "BYTES")
        data = np.array([value.encode() for value in values], dtype=np.object_)
        if binary is None:
            tensor.set_data_from_numpy(data)
        else:
            tensor.set_data_from_numpy(data, binary_data=binary)
        tensors.append(tensor)
    return tensors


@pytest.mark.parametrize("name", list(TASKS))
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_each_task_over_rest_with_tritonclient(root: Path, served: Any, name: str, binary: bool) -> None:
    import tritonclient.http as httpclient

    with httpclient.InferenceServerClient(f"127.0.0.1:{served.port}") as client:
        metadata = client.get_model_metadata(name)
        assert metadata["platform"] == "huggingface"
        names = [output["name"] for output in metadata["outputs"]]
        requested = [httpclient.InferRequestedOutput(key, binary_data=binary) for key in names]
        response = client.infer(name, triton_inputs(httpclient, name, binary), outputs=requested)
        check_tensors(root, name, {key: response.as_numpy(key) for key in names})


@pytest.mark.parametrize("name", list(TASKS))
def test_each_task_over_grpc_with_tritonclient(root: Path, served: Any, name: str) -> None:
    import tritonclient.grpc as grpcclient

    with grpcclient.InferenceServerClient(served.grpc_target) as client:
        assert client.is_model_ready(name)
        names = [output.name for output in client.get_model_metadata(name).outputs]
        response = client.infer(name, triton_inputs(grpcclient, name, None))
        check_tensors(root, name, {key: response.as_numpy(key) for key in names})


def test_v2_json_with_content_type_str_and_a_bad_request(root: Path, served: Any) -> None:
    tensor = {"name": "text", "shape": [2], "datatype": "BYTES", "parameters": {"content_type": "str"}, "data": TEXTS}
    response = requests.post(f"{served.url}/v2/models/sentiment/infer", json={"inputs": [tensor]}, timeout=60)
    assert response.status_code == 200, response.text
    outputs = {output["name"]: output for output in response.json()["outputs"]}
    assert outputs["label"]["data"] == [row["label"] for row in expected(root, "sentiment")]
    bad = {"inputs": [{**tensor, "name": "question"}]}
    response = requests.post(f"{served.url}/v2/models/reader/infer", json=bad, timeout=60)
    assert response.status_code == 400
    assert response.json()["error"] == "inputs: a question-answering model takes named inputs question and context"


def test_seldon_json_data_with_named_inputs(root: Path, serve: Any) -> None:
    server = serve(root / "reader", env={"HF_HUB_OFFLINE": "1"})
    body = {"jsonData": {"question": QUESTIONS, "context": TEXTS}}
    response = requests.post(f"{server.url}/api/v1.0/predictions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    assert same(response.json()["jsonData"], expected(root, "reader"))
    bad = requests.post(f"{server.url}/api/v1.0/predictions", json={"jsonData": {"question": "who ?"}}, timeout=60)
    assert bad.status_code == 400
    assert "context" in bad.json()["status"]["info"]


LOWER = """
class Lower:
    def transform_input(self, X, features_names=None):
        return X.lower()
"""

GRAPH = """
apiVersion: machinelearning.seldon.io/v1
kind: SeldonDeployment
metadata:
  name: words
spec:
  predictors:
  - name: default
    graph:
      name: lower
      type: TRANSFORMER
      children:
      - name: sentiment
        implementation: HUGGINGFACE_SERVER
        modelUri: {uri}
        parameters:
        - name: task
          type: STRING
          value: text-classification
"""


def test_a_graph_node(root: Path, serve: Any, tmp_path: Path) -> None:
    components = tmp_path / "components"
    (components / "lower").mkdir(parents=True)
    (components / "lower" / "Lower.py").write_text(textwrap.dedent(LOWER))
    path = tmp_path / "deploy.yaml"
    path.write_text(GRAPH.format(uri=(root / "sentiment").as_uri()))
    server = serve(path, "--components", str(components), env={"HF_HUB_OFFLINE": "1"})
    body = {"strData": TEXTS[0].upper()}
    response = requests.post(f"{server.url}/api/v1.0/predictions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    assert same(response.json()["jsonData"], expected(root, "sentiment")[0])


@pytest.fixture(autouse=True)
def _no_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield
