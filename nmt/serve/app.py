"""The HTTP service: routes, request shapes and errors; the search is the batcher's (nmt.serve.batcher).

    POST /translate   {"q": "text" | ["text", ...], "source": "en", "target": "fr"}
                      -> {"translatedText": "..." | ["...", ...]}
    GET  /languages   the pairs served, as LibreTranslate lists them
    GET  /models      what the page needs to know of each model
    GET  /health      200 while the service takes work, 503 once it is shutting down
    GET  /metrics     Prometheus' text format
    GET  /            the page (nmt/serve/page/)

The field names are LibreTranslate's, so that its clients work unchanged; ``alternatives``
(n-best, with ``scores``), ``beam`` and ``attention`` are optional. Every error is JSON
``{"error": "..."}``: 4xx for what the client sent (400 unreadable, 413 too much, 422 a field
of the wrong type or value), 503 with Retry-After when the queue is full or the service is
shutting down, 504 when the answer took longer than the timeout.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.exceptions import HTTPException

from nmt.languages import LanguageError, same_language
from nmt.search import SearchOptions
from nmt.serve.batcher import Batcher, Closed, Job, QueueFull
from nmt.serve.metrics import CONTENT_TYPE, ServiceMetrics
from nmt.serve.settings import MAX_BEAM, Limits, Settings
from nmt.translator import Translation, Translator

PAGE = Path(__file__).parent / "page"

Pair = tuple[str, str]  # (source language, target language); equal for an autoencoder


class TranslateRequest(BaseModel):
    """LibreTranslate's request, and this service's own fields."""

    model_config = ConfigDict(extra="ignore")  # LibreTranslate's clients also send api_key

    q: str | list[str] = Field(description="a text, or a list of texts translated in one call, in order")
    source: str = Field(description="source language code, or 'auto' when one model serves the target")
    target: str = Field(description="target language code")
    format: Literal["text"] = Field("text", description="only plain text is translated")
    alternatives: int = Field(0, ge=0, lt=MAX_BEAM, description="how many alternative translations, with scores")
    beam: int | None = Field(None, ge=1, le=MAX_BEAM, description="beam size; 1 is greedy search")
    attention: bool = Field(False, description="also give the source and output pieces and the attention matrix")

    @field_validator("q", mode="before")
    @classmethod
    def _text_or_texts(cls, q):
        if isinstance(q, str) or (isinstance(q, list) and all(isinstance(line, str) for line in q)):
            return q
        raise ValueError("must be a string or a list of strings")


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


def create_app(translators: Mapping[Pair, Translator], settings: Settings | None = None) -> FastAPI:
    """The service over ``translators``, one per language pair. The batcher starts and stops
    with the app (its lifespan), so a test client must be used as a context manager. torch's
    thread count is the caller's to set: ``nmt serve`` leaves a core to HTTP
    (``nmt.serve.settings.search_threads``)."""
    settings = settings or Settings()
    metrics = ServiceMetrics()
    described = [_describe(pair, translator) for pair, translator in translators.items()]
    state: dict[str, Batcher] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher = Batcher(
            translators,
            batch_size=settings.batch_size,
            max_wait=settings.batching.max_wait_ms / 1000,
            max_queue=settings.batching.max_queue,
            on_batch=metrics.batch_done,
        )
        metrics.queue.set_function(lambda: batcher.queued)
        state["batcher"] = batcher
        try:
            yield
        finally:  # uvicorn has answered every open request by now; finish what is queued
            await asyncio.to_thread(batcher.close, settings.limits.drain_seconds)

    app = FastAPI(title="nmt", summary="Machine translation with nmt models", lifespan=lifespan)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError):
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
        return JSONResponse({"error": str(error)}, status_code=error.status, headers=headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):  # unknown route, wrong method
        return JSONResponse({"error": str(error.detail).lower()}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def failed(request: Request, error: Exception):
        return JSONResponse({"error": f"translation failed: {error}"}, status_code=500)

    @app.post(
        "/translate",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": TranslateRequest.model_json_schema()}},
            }
        },
    )
    async def translate(request: Request) -> Response:
        started, status = time.perf_counter(), 500
        try:
            answer = await _translate(request, state["batcher"], translators, settings, metrics)
            status = 200
            return JSONResponse(answer)
        except ApiError as error:
            status = error.status
            raise
        finally:
            metrics.requests.labels(str(status)).inc()
            metrics.latency.observe(time.perf_counter() - started)

    @app.get("/languages")
    def languages() -> list[dict]:
        sources = sorted({source for source, _ in translators})
        return [
            {"code": s, "name": s, "targets": sorted(t for source, t in translators if source == s)} for s in sources
        ]

    @app.get("/models")
    def models() -> list[dict]:
        return described

    @app.get("/health")
    def health() -> JSONResponse:
        batcher = state.get("batcher")
        if batcher is None or not batcher.running:
            return JSONResponse({"status": "shutting down"}, status_code=503, headers={"Retry-After": "1"})
        return JSONResponse({"status": "ready", "models": len(translators), "queued": batcher.queued})

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(metrics.text(), media_type=CONTENT_TYPE)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(PAGE / "index.html")

    app.mount("/page", StaticFiles(directory=PAGE), name="page")
    return app


async def _translate(
    request: Request,
    batcher: Batcher,
    translators: Mapping[Pair, Translator],
    settings: Settings,
    metrics: ServiceMetrics,
) -> dict:
    body = _parse(await _read_body(request, settings.limits.max_body_bytes), request.headers.get("content-type", ""))
    ask = _validated(body)
    lines = [ask.q] if isinstance(ask.q, str) else ask.q
    _check_size(lines, settings.limits)
    pair = _pair(ask.source, ask.target, translators)
    translator = translators[pair]
    options = _options(ask, settings.search, translator)
    try:
        futures = batcher.submit(Job(pair, options, ask.attention), lines)
    except QueueFull as error:
        metrics.sentences.labels("refused").inc(len(lines))
        raise ApiError(503, f"busy: {error}", retry_after=1) from None
    except Closed as error:
        raise ApiError(503, str(error), retry_after=1) from None
    try:
        translations = await _results(request, futures, settings.limits.timeout)
    except ApiError:
        metrics.sentences.labels("abandoned").inc(len(lines))
        raise
    except Exception:
        metrics.sentences.labels("failed").inc(len(lines))
        raise
    metrics.sentences.labels("translated").inc(len(lines))
    answers = [_answer(t, translator, alternatives=ask.alternatives, attention=ask.attention) for t in translations]
    if isinstance(ask.q, str):
        return answers[0]
    return {key: [a[key] for a in answers] for key in answers[0]} if answers else {"translatedText": []}


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it passes ``limit`` bytes rather than once it is all read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the request body has {declared} bytes; the limit is {limit} (--max-body-bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the request body has more than {limit} bytes (--max-body-bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(raw: bytes, content_type: str):
    """JSON, whatever the content type says (``curl -d`` says a form), or a form as LibreTranslate takes."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        bad = f"byte {raw[e.start]:#04x} at position {e.start + 1}"
        raise ApiError(400, f"the request body is not UTF-8 ({bad})") from None
    if content_type.startswith("application/x-www-form-urlencoded") and not text.lstrip().startswith("{"):
        try:
            form = parse_qs(text, keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            raise ApiError(400, "the request form is not UTF-8") from None
        return {key: values if key == "q" and len(values) > 1 else values[-1] for key, values in form.items()}
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ApiError(400, f"the request body is not JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None


def _validated(body) -> TranslateRequest:
    try:
        return TranslateRequest.model_validate(body)
    except ValidationError as e:
        raise ApiError(422, _first_problem(e.errors())) from None


def _first_problem(errors: Sequence[dict]) -> str:
    """The first problem pydantic found, as one line naming the field: "beam: Input should be ..."."""
    if not errors:
        return "invalid request"
    error = errors[0]
    where = [part for part in error["loc"] if part != "body"]
    name = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in where).lstrip(".")
    message = error["msg"].removeprefix("Value error, ")
    if not name:
        return f"the request must be a JSON object with q, source and target ({message})"
    return f"{name}: {message}"


def _check_size(lines: list[str], limits: Limits) -> None:
    if len(lines) > limits.max_sentences:
        raise ApiError(413, f"{len(lines)} texts in one request; the limit is {limits.max_sentences} (--max-sentences)")
    chars = sum(map(len, lines))
    if chars > limits.max_chars:
        raise ApiError(413, f"{chars} characters in one request; the limit is {limits.max_chars} (--max-chars)")


def _pair(source: str, target: str, translators: Mapping[Pair, Translator]) -> Pair:
    """The served pair asked for, by any code of its languages (de or deu); source "auto" means
    the one source language served for ``target``."""
    matches = [(s, t) for s, t in translators if _same(target, t) and (source == "auto" or _same(source, s))]
    if len(matches) == 1:
        return matches[0]
    served = ", ".join(f"{s}->{t}" for s, t in translators)
    raise ApiError(400, f"no model translates {source}->{target}; this server translates {served}")


def _same(asked: str, served: str) -> bool:
    try:
        return same_language(asked, served)
    except LanguageError:
        return False


def _options(ask: TranslateRequest, base: SearchOptions, translator: Translator) -> SearchOptions:
    """The server's search options with the request's beam and n-best; a beam the server set
    narrower than the n-best asked for widens to hold it."""
    n_best = 1 + ask.alternatives
    changes: dict = {"n_best": n_best}
    if ask.beam is not None:
        changes["beam_size"] = ask.beam
    elif base.beam < n_best:
        changes["beam_size"] = n_best
    try:
        options = dataclasses.replace(base, **changes)
        translator.check_options(options)
    except ValueError as e:
        raise ApiError(422, str(e)) from None
    return options


async def _results(request: Request, futures: list, timeout: float) -> list[Translation]:
    """The futures' results, or ApiError if they take longer than ``timeout`` or the client
    leaves first; either way, sentences not yet searched are taken out of the queue."""
    waiting = asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
    # With the body read, the server's next message for this request is its disconnection:
    # waiting for it costs nothing, where asking "still there?" in a loop costs every request.
    left = asyncio.ensure_future(_disconnection(request))
    try:
        await asyncio.wait({waiting, left}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if waiting.done():
            return waiting.result()
        if left.done():
            raise ApiError(499, "the client closed the request")
        raise ApiError(504, f"no translation within {timeout:g} s (--timeout); the server is overloaded")
    finally:
        left.cancel()
        if not waiting.done():
            for future in futures:
                future.cancel()
            waiting.cancel()


async def _disconnection(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _answer(t: Translation, translator: Translator, *, alternatives: int, attention: bool) -> dict:
    answer: dict = {"translatedText": t.hypotheses[0]}
    if alternatives:
        answer["alternatives"] = t.hypotheses[1:]
        answer["scores"] = [round(score, 4) for score in t.scores]
    if attention:
        answer["attention"] = None
        if t.attention is not None:
            answer["attention"] = {
                "source": translator.source_tokens(t.source),
                "output": translator.output_tokens(t),
                "weights": [[round(w, 4) for w in row] for row in t.attention[0].tolist()],
            }
    return answer


def _describe(pair: Pair, translator: Translator) -> dict:
    config = translator.config
    return {
        "source": pair[0],
        "target": pair[1],
        "autoencoder": pair[0] == pair[1],
        "arch": None if config is None else config.model.arch,
        "attention": translator.has_attention(),
    }
