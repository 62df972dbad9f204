"""A client of an engine's own OpenAI-compatible endpoint, for rigtui's chat box: the TUI talks
to a served engine the way SillyTavern or a script does (`POST /v1/completions`, SSE stream),
so what the dashboard shows for its requests comes from the same place as for theirs.

The reply's text arrives as `Text` events (for the transcript only: the engine side reports the
request's speeds itself, as `prompt_done` / `progress` / `done`, whoever the client is). One
request at a time per client; `cancel()` hangs up, which stops the generation (both servers
stop a request whose client went away).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from rigtui.model.engine import EngineEvent, Error, Text


def sse_data(lines: Any) -> Any:
    """The JSON objects of an SSE stream's `data:` lines, until `data: [DONE]`."""
    for raw in lines:
        line = raw.decode("utf-8", errors="replace").strip() if isinstance(raw, bytes) else raw.strip()
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            yield json.loads(data)
        except ValueError:
            continue


def stream_lines(resp: Any, size: int = 65536) -> Any:
    """The lines of a streamed HTTP body as they arrive, read in as large pieces as there are
    (`read1`): `readline` on a chunked response walks urllib's chunk parser per line, a share
    of a core per token beside an engine that streams 50 of them a second."""
    read1 = getattr(resp, "read1", None)
    if read1 is None:  # a plain iterable of lines (tests, other clients)
        yield from resp
        return
    rest = b""
    while True:
        piece = read1(size)
        if not piece:
            break
        *lines, rest = (rest + piece).split(b"\n")
        yield from lines
    if rest:
        yield rest


class EndpointChat:
    """Streams completions from `base_url` (".../v1") and emits `Text` events."""

    def __init__(self, base_url: str, model: str, instance: str,
                 emit: Callable[[EngineEvent], None], api_key: str | None = None) -> None:  # fmt: skip
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.instance = instance
        self.emit = emit
        self.api_key = api_key
        self._lock = threading.Lock()
        self._response: Any = None
        self._cancelled: set[int] = set()

    def ask(self, seq: int, text: str, max_tokens: int, **sampling: Any) -> threading.Thread:
        thread = threading.Thread(target=self._run, args=(seq, text, max_tokens, sampling),
                                  name=f"{self.instance}-chat-{seq}", daemon=True)  # fmt: skip
        thread.start()
        return thread

    def cancel(self) -> None:
        """Hang up on the reply under way (the server then stops generating it)."""
        with self._lock:
            resp, self._response = self._response, None
        if resp is not None:
            with contextlib.suppress(Exception):  # a socket already gone
                resp.close()

    def _emit_text(self, seq: int, text: str, final: bool = False, stop: str | None = None) -> None:
        self.emit(Text(instance=self.instance, t=time.time(), seq=seq, text=text, final=final,
                       stop_reason=stop))  # fmt: skip

    def _run(self, seq: int, text: str, max_tokens: int, sampling: dict[str, Any]) -> None:
        body = {"model": self.model, "prompt": text, "max_tokens": max_tokens, "stream": True,
                **{k: v for k, v in sampling.items() if v is not None}}  # fmt: skip
        req = urllib.request.Request(self.base_url + "/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
        if self.api_key:
            req.add_header("Authorization", f"Bearer {self.api_key}")
        stop = None
        try:
            resp = urllib.request.urlopen(req, timeout=600)  # noqa: S310 - the engine's own URL
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace")
            self.emit(Error(instance=self.instance, t=time.time(), kind="prompt",
                            message=f"the endpoint refused the prompt: HTTP {exc.code} {detail}",
                            hint=None))  # fmt: skip
            self._emit_text(seq, "", final=True, stop="error")
            return
        except OSError as exc:
            self.emit(Error(instance=self.instance, t=time.time(), kind="prompt",
                            message=f"cannot reach the endpoint {self.base_url}: {exc}", hint=None))  # fmt: skip
            self._emit_text(seq, "", final=True, stop="error")
            return
        with self._lock:
            self._response = resp
        try:
            for obj in sse_data(stream_lines(resp)):
                choice = (obj.get("choices") or [{}])[0]
                piece = choice.get("text") or ""
                if piece:
                    self._emit_text(seq, piece)
                stop = choice.get("finish_reason") or stop
        except (OSError, ValueError, AttributeError):  # hung up by cancel(), or the engine died
            stop = stop or "cancelled"
        finally:
            with self._lock:
                if self._response is resp:
                    self._response = None
            with contextlib.suppress(Exception):
                resp.close()
        self._emit_text(seq, "", final=True, stop=stop or "cancelled")
