"""A client of a served engine's own endpoint: the TUI's chat goes through the OpenAI API like
SillyTavern or a script would (one path for everyone), streamed as SSE.

`stream_completion` runs in a thread of the caller; each text chunk becomes a `Token` event for
the same `on_event` the engine's events go to, so the chat screen needs nothing new. The
engine's own meter reports the request's `prompt_done` / `progress` / `done` from the worker.
stdlib only (urllib): the API is plain HTTP + server-sent events.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from rigtui.model.engine import EngineEvent, Error, Token


class ChatStream:
    """One streamed completion from `url` (".../v1"); `cancel()` hangs up, which the server
    sees as a disconnect and ends the generation (reported as done, stop_reason cancelled)."""

    def __init__(self, url: str, instance: str, prompt: str, *, max_tokens: int,
                 api_key: str | None, on_event: Callable[[EngineEvent], None],
                 sampling: dict[str, Any] | None = None) -> None:  # fmt: skip
        self.url = url
        self.instance = instance
        self.body = {"prompt": prompt, "max_tokens": max_tokens, "stream": True,
                     **(sampling or {})}  # fmt: skip
        self.api_key = api_key
        self.on_event = on_event
        self._cancelled = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"{instance}-chat", daemon=True)

    def start(self) -> ChatStream:
        self.thread.start()
        return self

    def cancel(self) -> None:
        """The reader stops at the next chunk and hangs up (chunks come every token, and
        closing a socket from another thread would not wake a blocked read anyway)."""
        self._cancelled.set()

    def _run(self) -> None:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url + "/completions", data=json.dumps(self.body).encode(),
                                     headers=headers, method="POST")  # fmt: skip
        index = 0
        try:
            with urllib.request.urlopen(req, timeout=600) as response:
                for raw in response:
                    if self._cancelled.is_set():
                        break
                    line = raw.decode("utf-8", errors="replace").strip()
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    text = _chunk_text(data)
                    if text:
                        self.on_event(Token(instance=self.instance, t=time.time(), text=text,
                                            index=index))  # fmt: skip
                        index += 1
        except (OSError, ValueError, urllib.error.URLError) as exc:
            if not self._cancelled.is_set():
                self.on_event(Error(instance=self.instance, t=time.time(), kind="prompt",
                                    message=f"the endpoint {self.url} failed: {exc}",
                                    hint="see the engine log (r)"))  # fmt: skip


def _chunk_text(data: str) -> str:
    try:
        return str(json.loads(data)["choices"][0].get("text") or "")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return ""
