"""The embedded engine's OpenAI-compatible endpoint, inside the worker child.

llama-cpp-python's own server (`llama_cpp.server`, FastAPI + uvicorn, extra `[server]`) answers
`/v1/models`, `/v1/completions`, `/v1/chat/completions` (SSE when `stream`), `/v1/embeddings`;
rigtui adds `GET /health` (llama-server's shape: 200 `{"status": "ok"}`) and serves the Llama
object the worker already loaded, pinned and placed: `LlamaProxy` is asked for a model and gets
that one instead of loading a second copy.

Whatever client calls it, each completion is measured where it runs: llama.cpp's own perf
counters (`llama_perf_context`: prompt tokens evaluated and their time, tokens decoded) and the
wall clock around the stream (time to first token, generation rate as the client sees it). The
parent gets `PromptDone` / `Progress` (at most 4 a second) / `Done`, and `Requests` when the
number of requests in flight changes — one short JSON line each, never one per token.

The socket is bound before the model loads (`bind_listener`), so a port in use fails at once
with a clear error instead of after a minute of loading.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import json
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from rigtui.engine.access import EndpointKey
from rigtui.model.engine import Done, Progress, PromptDone, Requests, Serving

MAX_BYTES_PER_TOKEN = 64  # the worker's bound too: a prompt past n_ctx x this cannot fit
PROGRESS_INTERVAL_S = 0.25
Emit = Callable[..., None]


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free port). Raises OSError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def url_for(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


class _Request:
    """What one HTTP request started: the stream to close if the client hangs up."""

    stream: Iterator[Any] | None = None


# Set by InFlight for each request; starlette's threadpool and sse-starlette's task group
# carry it to the thread that calls create_completion.
_CURRENT: contextvars.ContextVar[_Request | None] = contextvars.ContextVar("rigtui_request",
                                                                           default=None)


class BearerAuth:
    """ASGI middleware: every request but `GET /health` needs `Authorization: Bearer KEY`
    (llama-server's rule, and OpenAI's 401 body), checked in constant time. Outermost, so a
    refused request reaches neither the engine nor the request counters."""

    PUBLIC = frozenset({"/health"})

    def __init__(self, app: Any, access: EndpointKey) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or self.access.key is None or scope.get("path") in self.PUBLIC:
            await self.app(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope.get("headers", ())
                       if k == b"authorization"), None)  # fmt: skip
        if self.access.check(header):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": {
            "message": "this endpoint needs an API key: send `Authorization: Bearer KEY` (the "
                       "openai client's api_key); `rigtui serve` said where the key is",
            "type": "invalid_request_error", "code": "invalid_api_key"}}).encode()  # fmt: skip
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"),
                                (b"www-authenticate", b"Bearer"),
                                (b"content-length", str(len(body)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes is refused (413) before anything reads
    it, or cut off (the client counts as gone) when it comes without a Content-Length.
    llama_cpp.server would read and tokenize it whole: 5.5 GB for a 100 MB prompt."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        length = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            body = json.dumps({"error": {
                "message": f"request body over {self.limit:,} bytes: more than this engine's "
                           "context can hold", "type": "invalid_request_error",
                "code": "request_too_large"}}).encode()  # fmt: skip
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})  # fmt: skip
            await send({"type": "http.response.body", "body": body})
            return
        seen = 0

        async def bounded() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            return {"type": "http.disconnect"} if seen > self.limit else message

        await self.app(scope, bounded, send)


class InFlight:
    """ASGI middleware: counts POST /v1/* requests until their response has been sent whole
    (a streamed completion counts until its last SSE chunk).

    When a client hangs up mid-stream, llama_cpp.server stops reading the completion's
    generator but never closes it: it would sit suspended, holding the engine, until the
    garbage collector found it. Closing it here, once the response is over, ends the
    generation, reports it (`Done`, stop_reason "cancelled") and frees the engine."""

    def __init__(self, app: Any, emit: Emit) -> None:
        self.app = app
        self.emit = emit
        self.in_flight = 0
        self.total = 0
        self._lock = threading.Lock()

    def _change(self, delta: int) -> None:
        with self._lock:
            self.in_flight += delta
            self.total += max(0, delta)
            in_flight, total = self.in_flight, self.total
        self.emit(Requests, in_flight=in_flight, total=total)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        counted = (scope.get("type") == "http" and scope.get("method") == "POST"
                   and str(scope.get("path", "")).startswith("/v1/"))  # fmt: skip
        if not counted:
            await self.app(scope, receive, send)
            return
        self._change(+1)
        request = _Request()
        token = _CURRENT.set(request)
        try:
            await self.app(scope, receive, send)
        finally:
            _CURRENT.reset(token)
            if request.stream is not None:
                # a no-op once it ran to its end; ValueError: still executing elsewhere
                with contextlib.suppress(ValueError, RuntimeError):
                    request.stream.close()
            self._change(-1)


class PieceCache:
    """`Llama._model.detokenize` with each token's piece asked of llama.cpp once.

    llama-cpp-python's streaming completion detokenizes *every* token generated so far for
    each new token (to look for stop strings and split UTF-8): one `llama_token_to_piece` call
    through ctypes per token per step, 0.5 ms a token by the 256th here, and growing with the
    answer. A token's piece depends only on the vocabulary and `special`, so each is looked up
    once and the rest is a join; the result is the same bytes, leading-space rule included."""

    def __init__(self, model: Any) -> None:
        import llama_cpp

        self._llama_cpp = llama_cpp
        self._vocab = model.vocab
        self._bos = int(model.token_bos())
        self._pieces: tuple[dict[int, bytes], dict[int, bytes]] = ({}, {})  # special False/True
        self._buf = ctypes.create_string_buffer(256)

    def _piece(self, token: int, special: bool) -> bytes:
        lc = self._llama_cpp
        n = lc.llama_token_to_piece(self._vocab, lc.llama_token(token), self._buf, len(self._buf),
                                    0, special)  # fmt: skip
        if n < 0:  # the piece is longer than the buffer: -n bytes
            self._buf = ctypes.create_string_buffer(-n)
            n = lc.llama_token_to_piece(self._vocab, lc.llama_token(token), self._buf, -n, 0,
                                        special)  # fmt: skip
        return self._buf.raw[:n]

    def detokenize(self, tokens: Any, special: bool = False) -> bytes:
        cache = self._pieces[bool(special)]
        try:
            out = b"".join([cache[t] for t in tokens])
        except KeyError:
            for t in tokens:
                if t not in cache:
                    cache[int(t)] = self._piece(int(t), bool(special))
            out = b"".join([cache[t] for t in tokens])
        if len(tokens) > 0 and tokens[0] == self._bos and out[:1] == b" ":
            return out[1:]  # as llama-cpp-python does after a BOS (Llama 1's leading space)
        return out


class Meter:
    """Wraps `llm.create_completion` (which `__call__` and every chat handler call) to time
    each request and to serialise it with the worker's own stdin requests (`lock`)."""

    def __init__(self, llm: Any, emit: Emit, lock: threading.Lock) -> None:
        import llama_cpp

        self._perf = llama_cpp.llama_perf_context
        self._perf_reset = llama_cpp.llama_perf_context_reset
        self.llm = llm
        self.emit = emit
        self.lock = lock
        self._original = llm.create_completion
        llm.create_completion = self.create_completion  # instance attribute: shadows the method
        model = getattr(llm, "_model", None)  # LlamaModel (0.3.x); a release without it: as is
        if model is not None and callable(getattr(model, "detokenize", None)):
            model.detokenize = PieceCache(model).detokenize
        # llama-server's /metrics counters and /slots fields, so one monitor reads either server
        self.totals = {"prompt_tokens_total": 0.0, "prompt_seconds_total": 0.0,
                       "tokens_predicted_total": 0.0, "tokens_predicted_seconds_total": 0.0}  # fmt: skip
        self.task = -1  # id of the current (or last) request
        self.busy = False
        self.n_decoded = 0
        self.n_prompt = 0

    def _counters(self) -> tuple[int, float, int]:
        d = self._perf(self.llm.ctx)
        return int(d.n_p_eval), float(d.t_p_eval_ms) / 1000.0, int(d.n_eval)

    def create_completion(self, *args: Any, **kwargs: Any) -> Any:
        self.lock.acquire()
        self.task += 1
        self.busy, self.n_decoded, self.n_prompt = True, 0, 0
        try:
            self._perf_reset(self.llm.ctx)
            t0 = time.monotonic()
            result = self._original(*args, **kwargs)
        except BaseException:
            self.busy = False
            self.lock.release()
            raise
        if kwargs.get("stream"):
            stream = self._stream(result, t0)
            request = _CURRENT.get()
            if request is not None:
                request.stream = stream
            return stream
        try:
            n_prompt, prompt_s, n_eval = self._counters()
            self.emit(PromptDone, n_tokens=n_prompt, seconds=round(prompt_s, 6))
            self._done(n_prompt, prompt_s, n_eval, time.monotonic() - t0 - prompt_s, None,
                       _finish(result), n_gen=_usage(result))  # fmt: skip
        finally:
            self.lock.release()
        return result

    def _stream(self, chunks: Iterator[Any], t0: float) -> Iterator[Any]:
        """Decode ahead of the HTTP side: a thread drives llama-cpp-python's generator and
        queues its chunks, so the next token is computed while the server sends the last one.
        (llama_cpp.server pulls each chunk with a hop through the event loop and a thread
        pool; decoding only on each pull left the engine idle for that hop every token.)"""
        out: queue.SimpleQueue[Any] = queue.SimpleQueue()
        hang_up = threading.Event()
        producer = threading.Thread(target=self._produce, args=(chunks, t0, out, hang_up),
                                    name="decode", daemon=True)  # fmt: skip
        producer.start()
        try:
            while True:
                item = out.get()
                if item is _END:
                    return
                if isinstance(item, _Raised):
                    raise item.exc
                yield item
        finally:
            hang_up.set()  # the client went away (or the stream ended): stop decoding

    def _produce(self, chunks: Iterator[Any], t0: float, out: queue.SimpleQueue[Any],
                 hang_up: threading.Event) -> None:  # fmt: skip
        t_first: float | None = None
        last_progress = 0.0
        n_chunks = 0
        finish = "cancelled"  # the client went away before the last chunk
        try:
            for chunk in chunks:
                now = time.monotonic()
                if t_first is None:
                    t_first = last_progress = now
                    n_prompt, prompt_s, _ = self._counters()
                    self.n_prompt = n_prompt
                    self.emit(PromptDone, n_tokens=n_prompt, seconds=round(prompt_s, 6))
                else:
                    n_chunks += 1
                    self.n_decoded = n_chunks
                    if now - last_progress >= PROGRESS_INTERVAL_S:
                        last_progress = now
                        self.emit(Progress, n_gen=n_chunks, seconds=round(now - t_first, 6))
                fin = _finish(chunk)
                if fin:
                    finish = fin
                out.put(chunk)
                if hang_up.is_set():
                    finish = fin or "cancelled"
                    break
        except BaseException as exc:  # handed to the HTTP side, which raises it there
            out.put(_Raised(exc))
        finally:
            close = getattr(chunks, "close", None)
            try:
                if close is not None:
                    close()
                n_prompt, prompt_s, n_eval = self._counters()
                end = time.monotonic()
                gen_s = end - t_first if t_first is not None else 0.0
                ttft = t_first - t0 if t_first is not None else None
                self._done(n_prompt, prompt_s, n_eval, gen_s, ttft, finish)
            finally:
                self.lock.release()  # a plain Lock: the request thread took it, we give it back
                out.put(_END)

    def _done(self, n_prompt: int, prompt_s: float, n_eval: int, gen_s: float,
              ttft: float | None, finish: str, n_gen: int | None = None) -> None:  # fmt: skip
        # n_eval counts the tokens decoded after the prompt; a stream's last token sampled is
        # not decoded, so the tokens generated are one more (llama-server's n_decoded likewise).
        # A whole answer says how many it holds (usage.completion_tokens).
        if n_gen is None:
            n_gen = n_eval + 1 if (n_eval or gen_s > 0) else 0
        t = self.totals
        t["prompt_tokens_total"] += n_prompt
        t["prompt_seconds_total"] += max(prompt_s, 0.0)
        t["tokens_predicted_total"] += n_gen
        t["tokens_predicted_seconds_total"] += max(gen_s, 0.0)
        self.busy, self.n_decoded, self.n_prompt = False, n_gen, n_prompt
        self.emit(Done, n_prompt=n_prompt, n_gen=n_gen, prompt_s=round(prompt_s, 6),
                  gen_s=round(max(gen_s, 0.0), 6),
                  prompt_tok_s=n_prompt / prompt_s if n_prompt and prompt_s > 0 else None,
                  gen_tok_s=n_eval / gen_s if n_eval and gen_s > 0 else None,
                  ttft_s=round(ttft, 6) if ttft is not None else None,
                  stop_reason=finish)  # fmt: skip


_END = object()  # the decode thread's last item


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _usage(obj: Any) -> int | None:
    try:
        return int(obj["usage"]["completion_tokens"])
    except (KeyError, TypeError, ValueError):
        return None


def _finish(obj: Any) -> str:
    try:
        return obj["choices"][0].get("finish_reason") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""


class EmbeddedServer:
    """llama_cpp.server's app over an already loaded Llama, run by uvicorn in a thread."""

    def __init__(self, llm: Any, sock: socket.socket, *, alias: str, model_path: str,
                 api_key: str | None, emit: Emit, lock: threading.Lock,
                 key_source: str = "none") -> None:  # fmt: skip
        import uvicorn
        from llama_cpp.server import app as server_app
        from llama_cpp.server.settings import ModelSettings, ServerSettings

        class LoadedProxy(server_app.LlamaProxy):  # type: ignore[misc, name-defined]
            @staticmethod
            def load_llama_from_model_settings(settings: Any) -> Any:
                return llm

        server_app.LlamaProxy = LoadedProxy  # what create_app's set_llama_proxy instantiates
        host, port = sock.getsockname()[:2]
        self.host, self.port = host, port
        self.url = url_for(host, port)
        self.alias = alias
        self.auth = api_key is not None
        self.key_source = key_source
        self.emit = emit
        self.meter = Meter(llm, emit, lock)
        app = server_app.create_app(
            # the key is checked by BearerAuth, for every route (llama_cpp.server leaves /docs
            # open, and the routes added here would be too)
            server_settings=ServerSettings(host=host, port=port, api_key=None,
                                           interrupt_requests=False),  # queue, do not cut off
            model_settings=[ModelSettings(model=model_path, model_alias=alias)],
        )  # fmt: skip

        @app.get("/health", include_in_schema=False)
        def health() -> dict[str, str]:
            return {"status": "ok"}

        n_ctx = int(llm.n_ctx())
        inflight: list[InFlight] = []

        @app.get("/slots", include_in_schema=False)
        def slots() -> list[dict[str, Any]]:
            """llama-server's /slots shape (one slot): what rigtui's monitor and scripts read."""
            m = self.meter
            return [{"id": 0, "n_ctx": n_ctx, "is_processing": m.busy, "id_task": m.task,
                     "n_prompt_tokens": m.n_prompt,
                     "next_token": [{"has_next_token": m.busy, "n_decoded": m.n_decoded}]}]  # fmt: skip

        @app.get("/metrics", include_in_schema=False)
        def metrics() -> Any:
            """Prometheus text with llama-server's metric names (llamacpp:...)."""
            from starlette.responses import PlainTextResponse

            lines = []
            gauges = {"requests_processing": float(inflight[0].in_flight if inflight else 0)}
            # not in llama-server: POST /v1/* requests answered, so a watcher counts them exactly
            counters = {**self.meter.totals,
                        "requests_total": float(inflight[0].total if inflight else 0)}  # fmt: skip
            for kind, values in (("counter", counters), ("gauge", gauges)):
                for name, value in values.items():
                    lines += [f"# TYPE llamacpp:{name} {kind}", f"llamacpp:{name} {value:.6f}"]
            return PlainTextResponse("\n".join(lines) + "\n",
                                     media_type="text/plain; version=0.0.4")

        inflight.append(InFlight(app, emit))
        # room for a prompt that fills the context, and its JSON around it
        limit = max(8 << 20, n_ctx * MAX_BYTES_PER_TOKEN * 2)
        app_stack = BearerAuth(BodyLimit(inflight[0], limit), EndpointKey(api_key, key_source))
        config = uvicorn.Config(app_stack, log_level="warning", access_log=False,
                                lifespan="off", timeout_graceful_shutdown=2)  # fmt: skip
        self._server = uvicorn.Server(config)
        self._sock = sock
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)
        self.failed: BaseException | None = None

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as exc:  # SystemExit from uvicorn's startup, or a bug
            self.failed = exc

    def start(self, timeout: float = 30.0) -> None:
        """Start answering; emits `Serving` once uvicorn accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"the HTTP server did not start: {self.failed!r}")
            time.sleep(0.02)
        self.emit(Serving, url=self.url, host=self.host, port=self.port, model=self.alias,
                  auth=self.auth, key=self.key_source, server="llama_cpp.server")  # fmt: skip

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
