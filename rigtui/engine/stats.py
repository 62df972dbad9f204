"""Fold engine events into an EngineStats snapshot (pure: no I/O, no clock)."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

from rigtui.model.engine import (
    Done,
    EngineEvent,
    EngineState,
    EngineStats,
    Error,
    Exit,
    Loaded,
    LoadProgress,
    Placement,
    PolicyApplied,
    Progress,
    PromptDone,
    Requests,
    Serving,
    Slots,
    Starting,
    Token,
)

_FATAL_ERRORS = ("load", "policy", "serve")


def fold(stats: EngineStats | None, ev: EngineEvent) -> EngineStats:
    """The stats after `ev`. During generation `gen_tok_s` is live: tokens so far divided by
    the time since the prompt was processed (the worker's timestamps)."""
    s = stats or EngineStats(instance=ev.instance, profile=None, state=EngineState.IDLE)
    r = dataclasses.replace
    if isinstance(ev, Starting):
        return EngineStats(instance=ev.instance, profile=ev.profile, state=EngineState.STARTING,
                           pid=ev.pid, total_gen=s.total_gen)  # fmt: skip
    if isinstance(ev, PolicyApplied):
        return r(s, state=EngineState.STARTING, cpus=tuple(ev.cpus))
    if isinstance(ev, LoadProgress):
        return r(s, state=EngineState.LOADING, load_progress=ev.progress)
    if isinstance(ev, Loaded):
        return r(s, state=EngineState.READY, load_progress=1.0, model_path=ev.model_path,
                 model_bytes=ev.model_bytes, extra=MappingProxyType({**s.extra, "load_s": ev.load_s,
                                                             "n_gpu_layers": ev.n_gpu_layers}))  # fmt: skip
    if isinstance(ev, Placement):  # where its threads compute, once they exist
        return r(s, placement=ev, cpus=tuple(ev.thread_cpus_allowed or ev.cpus_allowed) or s.cpus)
    if isinstance(ev, PromptDone):
        rate = ev.n_tokens / ev.seconds if ev.seconds > 0 else None
        extra = {**s.extra, "gen_start_t": ev.t}
        return r(s, state=EngineState.GENERATING, n_prompt=ev.n_tokens, prompt_tok_s=rate, n_gen=0,
                 gen_tok_s=None, ttft_s=None, extra=MappingProxyType(extra))  # fmt: skip
    if isinstance(ev, Token):
        n_gen = ev.index + 1
        start = s.extra.get("gen_start_t")
        live = n_gen / (ev.t - start) if start is not None and ev.t > start else s.gen_tok_s
        return r(
            s, state=EngineState.GENERATING, n_gen=n_gen, total_gen=s.total_gen + 1, gen_tok_s=live
        )
    if isinstance(ev, Progress):
        rate = ev.n_gen / ev.seconds if ev.seconds > 0 else s.gen_tok_s
        return r(s, state=EngineState.GENERATING, n_gen=ev.n_gen, gen_tok_s=rate,
                 total_gen=s.total_gen + max(0, ev.n_gen - s.n_gen))  # fmt: skip
    if isinstance(ev, Serving):
        return r(s, url=ev.url, server=ev.server or None, key=ev.key)
    if isinstance(ev, Slots):
        return r(s, slots=ev)
    if isinstance(ev, Requests):
        return r(s, requests_in_flight=ev.in_flight, requests_total=ev.total)
    if isinstance(ev, Done):
        # served requests send no Token events: count what the Progress events did not
        total = s.total_gen + max(0, ev.n_gen - s.n_gen)
        return r(s, state=EngineState.READY, n_prompt=ev.n_prompt, n_gen=ev.n_gen, total_gen=total,
                 prompt_tok_s=ev.prompt_tok_s if ev.prompt_tok_s is not None else s.prompt_tok_s,
                 gen_tok_s=ev.gen_tok_s, ttft_s=ev.ttft_s)  # fmt: skip
    if isinstance(ev, Error):
        state = EngineState.FAILED if ev.kind in _FATAL_ERRORS else s.state
        if state is not EngineState.FAILED and s.state is EngineState.GENERATING:
            state = EngineState.READY
        return r(s, state=state, last_error=ev.message)
    if isinstance(ev, Exit):
        ok = ev.code == 0 and ev.signal is None and s.state is not EngineState.FAILED
        return r(s, state=EngineState.EXITED if ok else EngineState.FAILED, exit=ev, url=None,
                 requests_in_flight=0, slots=None,
                 last_error=s.last_error if ok or s.last_error else ev.reason)  # fmt: skip
    return s
