"""serve_embedded.PieceCache: the endpoint's detokenizer must give llama-cpp-python's bytes."""

from __future__ import annotations

import random

import pytest

pytest_plugins = ["engine_fixtures"]  # demo8m


@pytest.fixture(scope="module")
def model(demo8m):
    from llama_cpp import Llama

    llm = Llama(str(demo8m), vocab_only=True, verbose=False)
    yield llm._model  # (the Llama frees its model when it goes: keep it until the module ends)
    del llm


def test_same_bytes_as_llama_cpp_python(model):
    from rigtui.engine.serve_embedded import PieceCache

    cache = PieceCache(model)
    original = model.detokenize
    n_vocab = model.n_vocab()
    bos = model.token_bos()
    rng = random.Random(7)
    for special in (False, True):
        assert cache.detokenize([], special) == original([], special) == b""
        for token in range(n_vocab):  # every piece, specials included
            assert cache.detokenize([token], special) == original([token], special), token
        for _ in range(300):  # sequences, some after a BOS (its leading-space rule)
            seq = [rng.randrange(n_vocab) for _ in range(rng.randrange(1, 60))]
            if rng.random() < 0.3:
                seq = [bos, *seq]
            assert cache.detokenize(seq, special) == original(seq, special), seq


def test_the_server_detokenizes_through_it(model):
    """Meter installs it on the loaded model, so llama_cpp.server's completions use it."""
    from rigtui.engine.serve_embedded import PieceCache

    class Llm:
        _model = model

        def create_completion(self, *a, **k):
            return {}

        ctx = None

    import threading

    from rigtui.engine.serve_embedded import Meter

    llm = Llm()
    Meter(llm, lambda *a, **k: None, threading.Lock())
    assert isinstance(llm._model.detokenize.__self__, PieceCache)
    del model.detokenize  # the module-scoped model gets its own method back
