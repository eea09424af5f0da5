"""HUGGINGFACE_SERVER: a transformers model folder served as a pipeline, and text generation streamed.

The folder holds `config.json`, the weights as safetensors and the tokenizer's files, as
`save_pretrained` writes them; nothing is fetched from a model hub. The task comes from parameter
`task`, else from the architecture `config.json` names (`BertForSequenceClassification`:
text-classification; a sequence classifier whose labels include `entailment`: zero-shot-classification).

Each request holds rows of text (V2 BYTES, Seldon's strData, jsonData or an ndarray of strings); a
task that takes more than text reads named inputs (question-answering: `question` and `context`;
zero-shot-classification: the text and `candidate_labels`). V2 answers with one output per field of
the pipeline's result (:data:`OUTPUTS`); Seldon's protocol with the pipeline's own result as jsonData.

A text-generation model is also a :class:`~daneel.runtime.generation.Generator`: requests that arrive
together are generated in one `generate` call, left-padded, each request's tokens streamed to its own
iterator as they are produced.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from daneel.errors import InvalidInput, LoadError
from daneel.protocol.payload import Payload
from daneel.runtime.component import Metadata, TensorSpec
from daneel.runtime.generation import FinishReason, GenerationRequest, Piece
from daneel.runtime.imports import off_loop
from daneel.runtime.invoke import Invoker
from daneel.runtime.prepackaged import SavedModel, needs

TASKS = (
    "text-classification",
    "token-classification",
    "zero-shot-classification",
    "feature-extraction",
    "fill-mask",
    "question-answering",
    "text-generation",
)
#: An architecture's suffix in config.json, and the task it serves (the first that matches).
ARCHITECTURES = (
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForQuestionAnswering", "question-answering"),
    ("ForMaskedLM", "fill-mask"),
    ("ForCausalLM", "text-generation"),
    ("LMHeadModel", "text-generation"),
    ("Model", "feature-extraction"),
)
_ROWS = [-1]
_TABLE = [-1, -1]
#: The V2 outputs of each task: (name, datatype, shape); feature-extraction's hidden size is filled in at load.
OUTPUTS: dict[str, tuple[tuple[str, str, list[int]], ...]] = {
    "text-classification": (("label", "BYTES", _ROWS), ("score", "FP32", _ROWS)),
    "token-classification": (("entities", "BYTES", _ROWS),),
    "zero-shot-classification": (("labels", "BYTES", _TABLE), ("scores", "FP32", _TABLE)),
    "feature-extraction": (("embeddings", "FP32", [-1, -1, -1]), ("tokens", "INT64", _ROWS)),
    "fill-mask": (
        ("sequence", "BYTES", _TABLE),
        ("token_str", "BYTES", _TABLE),
        ("token", "INT64", _TABLE),
        ("score", "FP32", _TABLE),
    ),
    "question-answering": (
        ("answer", "BYTES", _ROWS),
        ("score", "FP32", _ROWS),
        ("start", "INT64", _ROWS),
        ("end", "INT64", _ROWS),
    ),
    "text-generation": (("generated_text", "BYTES", _ROWS),),
}
#: The named inputs of the tasks that take more than one text per row; the others take one, named as the caller likes.
INPUTS = {"question-answering": ("question", "context"), "zero-shot-classification": ("text", "candidate_labels")}
_DEVICE = re.compile(r"cpu|cuda(:\d+)?")


class HuggingFaceComponent(SavedModel):
    """A pipeline; a text-generation model is a :class:`TextGenerationComponent`, which also streams."""

    implementation = "HUGGINGFACE_SERVER"
    PARAMETERS = ("task", "device", "max_new_tokens", "max_batch_size", "max_latency_ms")

    def __new__(cls, name: str, path: Path, parameters: dict[str, Any] | None = None, *args: Any) -> Any:
        if cls is HuggingFaceComponent and _generates(path, parameters or {}):
            cls = TextGenerationComponent
        return super().__new__(cls)

    def configure(self) -> None:
        self.task = self.choice("task", TASKS, None) or task_of(self.path)
        self.device = str(self.parameters.get("device", "cpu"))
        if not _DEVICE.fullmatch(self.device):
            raise LoadError(f"parameter device: expected cpu, cuda or cuda:N, got {self.device!r}")
        self.max_new_tokens = _positive(self.parameters, "max_new_tokens", 16)
        self.max_batch_size = _positive(self.parameters, "max_batch_size", 16)
        self.max_latency_s = _positive(self.parameters, "max_latency_ms", 2, minimum=0) / 1000
        self.pipeline: Any = None
        self._running = threading.Lock()  # one pipeline call at a time: its tokenizer is not for two threads
        self.hidden = -1
        self._generator: _BatchingGenerator | None = None

    async def load(self) -> None:
        torch = needs("torch", "huggingface")
        transformers = needs("transformers", "huggingface")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise LoadError(f"parameter device: {self.device} asked for, but this torch sees no CUDA device")
        self.pipeline = pipe = await off_loop(
            self._load, transformers
        )  # one model at a time: transformers patches torch
        # process-wide while it builds a model on the "meta" device
        self.hidden = int(getattr(pipe.model.config, "hidden_size", -1) or -1)
        self._call = Invoker(self._run, self._policy, executor=self._executor)
        if self.task == "text-generation":
            # A tokenizer of its own: a fast tokenizer used on two threads at once fails ("Already borrowed").
            tokenizer = await off_loop(transformers.AutoTokenizer.from_pretrained, str(self.path))
            self._generator = _BatchingGenerator(pipe.model, tokenizer, torch, self.max_batch_size)
            self._generator.wait_s = self.max_latency_s

    def _load(self, transformers: Any) -> Any:
        try:
            if self.task == "question-answering":
                return _QuestionAnswering(transformers, self.path, self.device)
            return transformers.pipeline(
                self.task,
                model=str(self.path),
                tokenizer=str(self.path),
                device=self.device,
                model_kwargs={"use_safetensors": True},
            )
        except Exception as exc:  # transformers' errors and safetensors' (SafetensorError) share no base but Exception
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LoadError(f"{self.path}: cannot be loaded as a {self.task} pipeline ({first})") from exc

    async def close(self) -> None:
        if self._generator is not None:
            self._generator.close()

    # -- request and response ------------------------------------------------------------------------

    async def predict(self, payload: Payload) -> Payload:
        assert self._call is not None, "predict called before load"
        rows = _Rows.of(self.task, payload.data)
        results: list[Any] = await self._call(rows)
        if payload.form == "v2":
            values = self._tensors(results)
            return Payload(values, list(values))
        answer = results[0] if payload.form == "strData" else results
        return Payload(answer, [], {}, "jsonData")

    def _run(self, rows: _Rows) -> list[Any]:
        """The pipeline's result for each row, as JSON values (numpy scalars and tensors made plain)."""
        with self._running:
            return [self._row(rows, i) for i in range(rows.count)]

    def _row(self, rows: _Rows, i: int) -> Any:
        pipe, task = self.pipeline, self.task
        if task == "question-answering":
            result = pipe(question=rows.get("question", i), context=rows.get("context", i))
        elif task == "zero-shot-classification":
            result = pipe(rows.get("text", i), candidate_labels=rows.labels)
        elif task == "text-generation":
            result = pipe(rows.get("text", i), max_new_tokens=self.max_new_tokens, do_sample=False)[0]
        elif task == "feature-extraction":
            result = pipe(rows.get("text", i), return_tensors=True)[0].float().cpu().numpy().tolist()
        else:
            result = pipe(rows.get("text", i))
        if task == "text-classification":
            result = result[0]
        if task == "fill-mask" and result and isinstance(result[0], list):
            raise InvalidInput(f"{rows.name}[{i}]", "holds more than one mask token; fill-mask takes one per row")
        return _plain(result)

    def _tensors(self, results: list[Any]) -> dict[str, np.ndarray]:
        """The rows' results as this task's V2 outputs."""
        task = self.task
        if task == "feature-extraction":
            tokens = [len(result) for result in results]
            embeddings = np.zeros((len(results), max(tokens, default=0), self.hidden), dtype=np.float32)
            for i, result in enumerate(results):
                embeddings[i, : tokens[i]] = result
            return {"embeddings": embeddings, "tokens": np.array(tokens, dtype=np.int64)}
        if task == "token-classification":
            return {"entities": _texts([json.dumps(result) for result in results])}
        values = {}
        for name, datatype, shape in OUTPUTS[task]:
            if task == "fill-mask":
                column: Any = [[entry[name] for entry in result] for result in results]
            else:
                column = [result[name] for result in results]
            values[name] = _texts(column) if datatype == "BYTES" else np.array(column, dtype=_NUMPY[datatype])
            if len(shape) == 2 and values[name].ndim != 2:
                values[name] = values[name].reshape(len(results), -1)
        return values

    def metadata(self) -> Metadata:
        names = INPUTS.get(self.task, ("text",))
        inputs = [TensorSpec(name, "BYTES", [-1]) for name in names]
        outputs = [TensorSpec(name, datatype, list(shape)) for name, datatype, shape in OUTPUTS[self.task]]
        if self.task == "feature-extraction":
            outputs[0].shape = [-1, -1, self.hidden]
        return Metadata(self.name, "huggingface", [], inputs, outputs, {"task": self.task})


class TextGenerationComponent(HuggingFaceComponent):
    """A text-generation pipeline that is also a :class:`~daneel.runtime.generation.Generator`."""

    def generate(self, request: GenerationRequest) -> AsyncIterator[Piece]:
        assert self._generator is not None, "generate called before load"
        return self._generator.generate(request)

    def chat_prompt(self, messages: Sequence[Mapping[str, str]]) -> str:
        tokenizer = self.pipeline.tokenizer
        if getattr(tokenizer, "chat_template", None):
            prompt = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
            return str(prompt)
        lines = [f"{message.get('role', 'user')}: {message.get('content', '')}" for message in messages]
        return "\n".join([*lines, "assistant:"])


_NUMPY = {"FP32": np.float32, "INT64": np.int64}


class _QuestionAnswering:
    """Extractive question answering, as transformers 4's pipeline answered it (transformers 5 has none).

    The answer is the span of context tokens, at most `max_answer_tokens` long, whose start and end are the
    most probable together: start and end logits are softmaxed over the context's tokens alone. A context
    longer than the model takes is cut to fit.
    """

    def __init__(self, transformers: Any, path: Path, device: str, max_answer_tokens: int = 15) -> None:
        self.torch = needs("torch", "huggingface")
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(path))
        model = transformers.AutoModelForQuestionAnswering.from_pretrained(str(path), use_safetensors=True)
        self.model = model.to(device).eval()
        self.max_answer_tokens = max_answer_tokens

    def __call__(self, question: str, context: str) -> dict[str, Any]:
        torch = self.torch
        encoded = self.tokenizer(
            question, context, truncation="only_second", return_offsets_mapping=True, return_tensors="pt"
        )
        offsets = encoded.pop("offset_mapping")[0].tolist()
        in_context = [sequence == 1 for sequence in encoded.sequence_ids(0)]
        if not any(in_context):
            raise InvalidInput("context", "holds no tokens the model can read")
        with torch.inference_mode():
            output = self.model(**encoded.to(self.model.device))
        mask = torch.tensor(in_context, device=output.start_logits.device)
        start = output.start_logits[0].float().masked_fill(~mask, float("-inf")).softmax(-1)
        end = output.end_logits[0].float().masked_fill(~mask, float("-inf")).softmax(-1)
        pairs = torch.triu(torch.outer(start, end)).tril(self.max_answer_tokens - 1)
        best = int(pairs.argmax())
        first, last = divmod(best, pairs.shape[1])
        begin, finish = offsets[first][0], offsets[last][1]
        return {"score": float(pairs.flatten()[best]), "start": begin, "end": finish, "answer": context[begin:finish]}


def _generates(path: Path, parameters: dict[str, Any]) -> bool:
    """Whether a model is served for text generation; errors are left to `configure`, which names them."""
    task = parameters.get("task")
    if task is None:
        try:
            task = task_of(path)
        except LoadError:
            return False
    return bool(task == "text-generation")


def task_of(folder: Path) -> str:
    """The task config.json's architecture serves; zero-shot where a sequence classifier knows `entailment`."""
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LoadError(f"{path}: cannot be read ({exc}); set parameter task to one of {', '.join(TASKS)}") from None
    architectures = config.get("architectures") or [] if isinstance(config, dict) else []
    for architecture in architectures:
        for suffix, task in ARCHITECTURES:
            if str(architecture).endswith(suffix):
                labels = {str(label).lower() for label in (config.get("label2id") or {})}
                return "zero-shot-classification" if task == "text-classification" and "entailment" in labels else task
    named = ", ".join(map(str, architectures)) or "no architecture"
    raise LoadError(f"{path}: {named} names no task daneel knows; set parameter task to one of {', '.join(TASKS)}")


def _positive(parameters: dict[str, Any], key: str, default: int, minimum: int = 1) -> int:
    value = parameters.get(key, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = minimum - 1
    if isinstance(value, bool) or number < minimum or str(number) != str(value).strip():
        raise LoadError(f"parameter {key}: expected an integer of at least {minimum}, got {value!r}")
    return number


def _texts(values: Any) -> np.ndarray:
    array = np.empty(np.shape(values), dtype=object)
    array[...] = values
    return array


def _plain(value: Any) -> Any:
    """A pipeline's result with numpy scalars made Python numbers, so that it is JSON."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(slots=True)
class _Rows:
    """A request's rows of text: `texts` under their input names, and zero-shot's labels for every row."""

    name: str
    texts: dict[str, list[str]]
    count: int
    labels: list[str] = field(default_factory=list)

    def get(self, name: str, i: int) -> str:
        column = self.texts[name]
        return column[i] if len(column) > 1 else column[0]

    @classmethod
    def of(cls, task: str, data: Any) -> _Rows:
        names = INPUTS.get(task)
        if names is None:
            if isinstance(data, dict):
                if len(data) != 1:
                    raise InvalidInput("inputs", f"a {task} model takes one input of text, got {', '.join(data)}")
                [(name, data)] = data.items()
            else:
                name = "input"
            texts = _strings(data, name)
            return cls(name, {"text": texts}, len(texts))
        if not isinstance(data, dict):
            raise InvalidInput("inputs", f"a {task} model takes named inputs {' and '.join(names)}")
        if task == "zero-shot-classification":
            return cls._zero_shot(data)
        columns = {}
        for name in names:
            if name not in data:
                raise InvalidInput(name, f"is missing; a {task} model takes inputs {' and '.join(names)}")
            columns[name] = _strings(data[name], name)
        unknown = [name for name in data if name not in names]
        if unknown:
            raise InvalidInput(unknown[0], f"not an input of a {task} model; it takes {' and '.join(names)}")
        sizes = {len(column) for column in columns.values()} - {1}
        if len(sizes) > 1:
            raise InvalidInput(
                names[1], f"has {len(columns[names[1]])} rows but {names[0]} has {len(columns[names[0]])}"
            )
        return cls(names[0], columns, max(sizes, default=1))

    @classmethod
    def _zero_shot(cls, data: dict[str, Any]) -> _Rows:
        if "candidate_labels" not in data:
            raise InvalidInput(
                "candidate_labels", "is missing; zero-shot-classification needs the labels to choose from"
            )
        labels = _strings(data["candidate_labels"], "candidate_labels")
        others = [name for name in data if name != "candidate_labels"]
        if len(others) != 1:
            raise InvalidInput("inputs", f"expected one input of text beside candidate_labels, got {len(others)}")
        texts = _strings(data[others[0]], others[0])
        return cls(others[0], {"text": texts}, len(texts), labels)


def _strings(value: Any, name: str) -> list[str]:
    """Rows of text: a str, bytes, or a list or array of them (UTF-8 bytes decoded)."""
    if isinstance(value, np.ndarray):
        value = value.reshape(-1).tolist()
    items = value if isinstance(value, list) else [value]
    texts = []
    for i, item in enumerate(items):
        if isinstance(item, (bytes, bytearray)):
            try:
                item = bytes(item).decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(f"{name}[{i}]", "expected UTF-8 text") from None
        if not isinstance(item, str):
            raise InvalidInput(f"{name}[{i}]" if isinstance(value, list) else name, "expected text (datatype BYTES)")
        texts.append(item)
    if not texts:
        raise InvalidInput(name, "expected at least one row of text")
    return texts


# -- streaming generation ------------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class _Stream:
    """One request's generation: what it has produced and where its pieces go."""

    request: GenerationRequest
    queue: asyncio.Queue[Piece | BaseException | None]
    loop: asyncio.AbstractEventLoop
    left: bool = False  # the client closed the iterator
    done: bool = False
    ids: list[int] = field(default_factory=list)
    sent: int = 0  # characters of the text sent so far
    unsent: int = 0  # tokens produced since the last piece
    prompt_tokens: int = 0

    def send(self, item: Piece | BaseException | None) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)

    def key(self) -> tuple[float, float, int | None] | _Stream:
        """Requests of one key are generated together: the same sampling; a seeded request alone."""
        request = self.request
        if request.seed is not None:
            return self
        return (0.0, 1.0, None) if request.temperature <= 0 else (request.temperature, request.top_p, None)


class _Batch:
    """The streamer and stopping criterion of one `generate` call over several streams.

    `generate` calls :meth:`put` first with the prompts, then with each step's new token of every row,
    and `__call__` after each step: a row is finished when its stream is done or has left.
    """

    def __init__(self, streams: list[_Stream], tokenizer: Any, torch: Any, eos: set[int]) -> None:
        self.streams = streams
        self.tokenizer = tokenizer
        self.torch = torch
        self.eos = eos
        self.prompted = False

    def put(self, value: Any) -> None:
        if not self.prompted:
            self.prompted = True
            return
        for stream, token in zip(self.streams, value.reshape(-1).tolist(), strict=True):
            if not (stream.done or stream.left):
                self._advance(stream, int(token))

    def end(self) -> None:
        for stream in self.streams:
            if not (stream.done or stream.left):
                self._finish(stream, self._text(stream), "length")

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        finished = [stream.done or stream.left for stream in self.streams]
        return self.torch.tensor(finished, dtype=self.torch.bool, device=input_ids.device)

    def _text(self, stream: _Stream) -> str:
        return str(self.tokenizer.decode(stream.ids, skip_special_tokens=True))

    def _advance(self, stream: _Stream, token: int) -> None:
        if token in self.eos:
            self._finish(stream, self._text(stream), "stop")
            return
        stream.ids.append(token)
        stream.unsent += 1
        text = self._text(stream)
        stops = stream.request.stop
        at = _first_stop(text, stops, max(0, stream.sent - max((len(stop) for stop in stops), default=0)))
        if at is not None:
            self._finish(stream, text[:at], "stop")
        elif len(stream.ids) >= stream.request.max_tokens:
            self._finish(stream, text, "length")
        else:
            ready = len(text) - _held_back(text, stops)
            if ready > stream.sent:
                stream.send(Piece(text[stream.sent : ready], stream.unsent))
                stream.sent, stream.unsent = ready, 0

    def _finish(self, stream: _Stream, text: str, reason: FinishReason) -> None:
        stream.done = True
        stream.send(Piece(text[stream.sent :], stream.unsent, reason, stream.prompt_tokens))
        stream.send(None)


def _first_stop(text: str, stops: tuple[str, ...], start: int) -> int | None:
    found = [at for at in (text.find(stop, start) for stop in stops if stop) if at >= 0]
    return min(found, default=None)


def _held_back(text: str, stops: tuple[str, ...]) -> int:
    """How many characters at the end of `text` to keep back: the start of a stop sequence, or half a character."""
    held = 1 if text.endswith("\ufffd") else 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), held, -1):
            if text.endswith(stop[:size]):
                held = size
                break
    return held


class _BatchingGenerator:
    """Generates the requests that arrive together in one `generate` call, one call at a time."""

    def __init__(self, model: Any, tokenizer: Any, torch: Any, max_batch_size: int) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.torch = torch
        self.max_batch_size = max_batch_size
        self.wait_s = 0.002
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        eos = model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [] if eos is None else [eos]
        self.eos = {int(token) for token in [*eos, tokenizer.eos_token_id] if token is not None}
        self.limit: int | None = getattr(model.config, "max_position_embeddings", None)
        self.pending: list[_Stream] = []
        self.runner: asyncio.Task[None] | None = None
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="daneel-generate")

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Piece]:
        stream = _Stream(request, asyncio.Queue(), asyncio.get_running_loop())
        self.pending.append(stream)
        if self.runner is None:
            self.runner = asyncio.create_task(self._run())
        try:
            while (item := await stream.queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stream.left = True
            if stream in self.pending:
                self.pending.remove(stream)

    def _check(self, request: GenerationRequest) -> int:
        """The prompt's length in tokens, which must leave the model room for `max_tokens` more."""
        count = len(self.tokenizer(request.prompt)["input_ids"])
        if not count:
            raise InvalidInput("prompt", "holds no tokens for this model to continue")
        if self.limit is not None and count + request.max_tokens > self.limit:
            raise InvalidInput(
                "max_tokens",
                f"the prompt's {count} tokens and {request.max_tokens} more exceed the model's {self.limit} positions",
            )
        return count

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.pending:
                await asyncio.sleep(self.wait_s)  # let the requests that arrive together join
                key = self.pending[0].key()
                batch = [stream for stream in self.pending if stream.key() == key][: self.max_batch_size]
                for stream in batch:
                    self.pending.remove(stream)
                if batch:
                    await loop.run_in_executor(self.thread, self._generate, batch)
        finally:
            self.runner = None

    def _generate(self, streams: list[_Stream]) -> None:
        try:
            streams = [stream for stream in streams if self._ready(stream)]
            if streams:
                self._generate_ready(streams)
        except Exception as exc:
            for stream in streams:
                if not stream.done:
                    stream.done = True
                    stream.send(exc)

    def _ready(self, stream: _Stream) -> bool:
        """Whether a stream is to be generated; one whose prompt will not do, or that wants no token, is answered."""
        try:
            stream.prompt_tokens = self._check(stream.request)
        except InvalidInput as exc:
            stream.done = True
            stream.send(exc)
            return False
        if stream.request.max_tokens < 1:
            stream.done = True
            stream.send(Piece("", 0, "length", stream.prompt_tokens))
            stream.send(None)
            return False
        return not stream.left

    def _generate_ready(self, streams: list[_Stream]) -> None:
        torch, first = self.torch, streams[0].request
        encoded = self.tokenizer([stream.request.prompt for stream in streams], return_tensors="pt", padding=True)
        for stream, mask in zip(streams, encoded["attention_mask"], strict=True):
            stream.prompt_tokens = int(mask.sum())
        batch = _Batch(streams, self.tokenizer, torch, self.eos)
        options: dict[str, Any] = {"do_sample": False}
        if first.temperature > 0:
            options = {"do_sample": True, "temperature": first.temperature, "top_p": first.top_p}
        if first.seed is not None:
            torch.manual_seed(first.seed)
        criteria = needs("transformers", "huggingface").StoppingCriteriaList([batch])
        with torch.inference_mode():
            self.model.generate(
                **encoded.to(self.model.device),
                max_new_tokens=max(stream.request.max_tokens for stream in streams),
                pad_token_id=self.tokenizer.pad_token_id,
                streamer=batch,
                stopping_criteria=criteria,
                **options,
            )

    def close(self) -> None:
        for stream in self.pending:
            stream.left = True
        self.thread.shutdown(wait=False, cancel_futures=True)
