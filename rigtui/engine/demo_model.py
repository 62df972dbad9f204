"""Synthetic llama-architecture GGUF models with random weights (`rigtui demo-model`).

Every feature (launch, placement, bench, roofline) works on a fresh machine without a download:
the text is gibberish, the speeds are real, because a token costs the same bytes read whatever the
weights hold. The vocabulary is llama.cpp's SPM ("llama") tokenizer reduced to `<unk> <s> </s>`,
the 256 byte tokens `<0x00>..<0xFF>` and the printable ASCII characters, so any prompt tokenizes
(unknown characters fall back to their UTF-8 bytes), plus a few hundred English words. Only the
words can come out: the output matrix's rows of every other token are zero and the words' rows
are larger, so their logits win by a wide margin. The text is readable word salad, every token
streams as a whole UTF-8 word (a stray byte token would make llama-cpp-python hold back a
stream until a character completes), and no end-of-text token cuts a benchmark short.

Dimensions follow from the requested size (file bytes, "300M" = 300e6) so the parameter count is
exactly `DemoDims.n_params`: grouped-query attention (n_head_kv = n_head / 4, or / 2 when n_head
is not a multiple of 4), head size 64,
SwiGLU feed-forward n_ff = 8/3 n_embd rounded up to 64, untied output matrix.

With `experts=N` the feed-forward becomes a Mixtral-style mixture of experts (llama.cpp's llama
architecture with `expert_count`): a router `ffn_gate_inp` and three stacked expert tensors
`ffn_{gate,up,down}_exps` per layer, each expert n_ff / N wide (so the file keeps about the
requested size), 2 experts used per token. That is the tensor layout `-ot exps=CPU` and
`--n-cpu-moe` act on.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rigtui.model.profile import parse_size

DTYPES = ("f16", "q8_0")
# Bytes per weight of the 2-D matrices; 1-D norm weights are always f32.
_BYTES_PER_WEIGHT = {"f16": 2.0, "q8_0": 34 / 32}
HEAD_DIM = 64
GQA_RATIO = 4
_EMBD_CHOICES = (
    256,
    384,
    512,
    640,
    768,
    1024,
    1280,
    1536,
    2048,
    2560,
    3072,
    4096,
    5120,
    6144,
    8192,
)
DEMO_SIZES = ("8M", "100M", "300M", "1G")


@dataclass(frozen=True)
class DemoDims:
    n_layers: int
    n_embd: int
    n_head: int
    n_head_kv: int
    n_ff: int  # per expert when n_expert > 0
    n_vocab: int
    n_expert: int = 0  # 0: a dense feed-forward
    n_expert_used: int = 0

    @property
    def n_embd_kv(self) -> int:
        return self.n_embd // self.n_head * self.n_head_kv

    @property
    def n_params(self) -> int:
        """Exact: token_embd + output + output_norm + per layer (2 norms, q, k, v, o, 3 ffn;
        with experts: the router and 3 ffn per expert)."""
        e, ekv, ff = self.n_embd, self.n_embd_kv, self.n_ff
        ffn = 3 * e * ff if not self.n_expert else self.n_expert * (3 * e * ff + e)
        per_layer = 2 * e + 2 * e * e + 2 * e * ekv + ffn
        return 2 * self.n_vocab * e + e + self.n_layers * per_layer

    def matrix_params(self) -> int:
        """Parameters stored in the chosen dtype (all but the f32 norm vectors and routers)."""
        routers = self.n_layers * self.n_expert * self.n_embd
        return self.n_params - self.n_embd * (2 * self.n_layers + 1) - routers


@dataclass(frozen=True)
class DemoModelInfo:
    path: Path
    n_params: int
    n_layers: int
    n_embd: int
    n_head: int
    n_head_kv: int
    n_ff: int
    n_vocab: int
    n_ctx_train: int
    dtype: str
    file_bytes: int
    n_expert: int = 0
    n_expert_used: int = 0


_WORD_TEXT = """the of and to in is it that was for on are with as be at by this have from or one
had not but what all were when we there can an your which their said if do will each about how
up out them then she many some so these would other into has more her two like him see time could
no make than first been its who now people my made over did down only way find use may water long
little very after words called just where most know get through back much before go good new
write our used me man too any day same right look think also around another came come work three
word must because does part even place well such here take why things help put years different
away again off went old number great tell men say small every found still between name should home
big give air line set own under read last never us left end along while might next sound below saw
something thought both few those always looked show large often together asked house world going
want school important until form food keep children feet land side without boy once animals life
enough took sometimes four head above kind began almost live page got earth need far hand high year
mother light parts country father let night following picture being study second eyes soon times
story boys since white days ever paper hard near sentence better best across during today others
however sure means knew its try told young miles sun ways thing whole hear example heard several
change answer room sea against top turned learn point city play toward five using himself usually
memory channel socket node thread token model bandwidth cache core rig server fast quiet river
stone garden window morning evening bright silver golden green blue red small quick slow warm cold
"""
WORDS = tuple(_WORD_TEXT.split())


def demo_vocab() -> tuple[list[str], list[float], list[int]]:
    """(tokens, scores, token types) of the byte-level SPM vocabulary with whole words."""
    # gguf TokenType values: NORMAL=1, UNKNOWN=2, CONTROL=3, BYTE=6
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    scores = [0.0] * len(tokens)
    for i, ch in enumerate(chr(c) for c in range(0x21, 0x7F)):
        tokens.append(ch)
        types.append(1)
        scores.append(-float(i))
    tokens.append("\u2581")  # SPM's word-boundary marker, so spaces get one token
    types.append(1)
    scores.append(0.0)
    for i, word in enumerate(dict.fromkeys(WORDS)):  # "\u2581word" detokenizes as " word"
        tokens.append("\u2581" + word)
        types.append(1)
        scores.append(-1000.0 - i)
    return tokens, scores, types


def word_token_ids() -> range:
    """The ids of the whole-word tokens (the only ones the demo model's output favours)."""
    n_words = len(dict.fromkeys(WORDS))
    return range(N_VOCAB - n_words, N_VOCAB)


N_VOCAB = len(demo_vocab()[0])


MAX_EXPERTS = 64


def demo_model_dims(size: str | int = "300M", dtype: str = "f16", experts: int = 0) -> DemoDims:
    """Dimensions of the demo model whose file is about `size` bytes (pure).

    Picks the narrowest width (from a list of usual widths) whose layer count is at most
    n_embd / 96 (real LLMs are about that shape), so "8M" is tiny and "1G" is llama-like.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    target = parse_size(size) if isinstance(size, str) else int(size)
    if target < 1_000_000:
        raise ValueError(f"size {size!r} is too small: the smallest demo model is about 1M bytes")
    params = target / _BYTES_PER_WEIGHT[dtype]
    best: tuple[float, DemoDims] | None = None
    for e in _EMBD_CHOICES:
        n_head = e // HEAD_DIM
        n_head_kv = next(n_head // r for r in (GQA_RATIO, 2, 1) if n_head % r == 0)
        n_ff = -(-(8 * e // 3) // 64) * 64
        empty = DemoDims(0, e, n_head, n_head_kv, n_ff, N_VOCAB).n_params
        per_layer = DemoDims(1, e, n_head, n_head_kv, n_ff, N_VOCAB).n_params - empty
        layers = max(1, round((params - empty) / per_layer))
        if layers > max(2, e // 64):  # deeper than real LLMs of this width: try a wider one
            continue
        dims = DemoDims(layers, e, n_head, n_head_kv, n_ff, N_VOCAB)
        error = abs(dims.n_params - params) / params
        if best is None or error < best[0] - 0.02:
            best = (error, dims)
    if best is None:
        raise ValueError(f"size {size!r} is too large for a demo model")
    dims = best[1]
    if experts:
        if not 2 <= experts <= MAX_EXPERTS:
            raise ValueError(f"experts {experts}: use 0 (dense) or 2 to {MAX_EXPERTS}")
        # the same feed-forward bytes split over the experts (64-wide at least)
        ff = max(64, -(-(dims.n_ff // experts) // 64) * 64)
        dims = DemoDims(dims.n_layers, dims.n_embd, dims.n_head, dims.n_head_kv, ff,
                        dims.n_vocab, n_expert=experts, n_expert_used=2)  # fmt: skip
    return dims


def _file_type(dtype: str) -> int:
    return {"f16": 1, "q8_0": 7}[dtype]  # LLAMA_FTYPE_MOSTLY_F16 / _Q8_0


def write_demo_model(
    path: str | os.PathLike[str],
    *,
    size: str | int = "300M",
    dtype: str = "f16",
    seed: int = 0,
    n_ctx_train: int = 2048,
    experts: int = 0,
) -> DemoModelInfo:
    """Write a random-weight llama GGUF to `path` (atomically: a temp file renamed into place)."""
    import gguf
    import numpy as np

    dims = demo_model_dims(size, dtype, experts)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    qtype = gguf.GGMLQuantizationType.Q8_0 if dtype == "q8_0" else gguf.GGMLQuantizationType.F16

    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer = gguf.GGUFWriter(str(tmp), arch="llama")
        writer.add_name(f"rigtui demo {size} {dtype}")
        writer.add_context_length(n_ctx_train)
        writer.add_embedding_length(dims.n_embd)
        writer.add_block_count(dims.n_layers)
        writer.add_feed_forward_length(dims.n_ff)
        writer.add_head_count(dims.n_head)
        writer.add_head_count_kv(dims.n_head_kv)
        writer.add_rope_dimension_count(HEAD_DIM)
        writer.add_layer_norm_rms_eps(1e-5)
        writer.add_vocab_size(dims.n_vocab)
        writer.add_file_type(_file_type(dtype))
        tokens, scores, types = demo_vocab()
        writer.add_tokenizer_model("llama")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        writer.add_unk_token_id(0)
        writer.add_bos_token_id(1)
        writer.add_eos_token_id(2)
        writer.add_add_bos_token(True)
        writer.add_add_eos_token(False)
        if dims.n_expert:
            writer.add_expert_count(dims.n_expert)
            writer.add_expert_used_count(dims.n_expert_used)

        def matrix(name: str, rows: int, cols: int, stack: int = 0) -> None:
            # numpy shape (rows, cols) = ggml ne [cols, rows]; std 0.02 like an initialised net;
            # `stack` experts: numpy (stack, rows, cols) = ggml ne [cols, rows, stack]
            shape = (stack, rows, cols) if stack else (rows, cols)
            w = rng.standard_normal(shape, dtype=np.float32)
            w *= 0.02
            if qtype == gguf.GGMLQuantizationType.Q8_0:
                writer.add_tensor(name, gguf.quants.quantize(w, qtype), raw_dtype=qtype)
            else:
                writer.add_tensor(name, w.astype(np.float16))

        def norm(name: str) -> None:
            writer.add_tensor(name, np.ones(dims.n_embd, dtype=np.float32))

        e, ekv, ff = dims.n_embd, dims.n_embd_kv, dims.n_ff
        matrix("token_embd.weight", dims.n_vocab, e)
        for i in range(dims.n_layers):
            norm(f"blk.{i}.attn_norm.weight")
            matrix(f"blk.{i}.attn_q.weight", e, e)
            matrix(f"blk.{i}.attn_k.weight", ekv, e)
            matrix(f"blk.{i}.attn_v.weight", ekv, e)
            matrix(f"blk.{i}.attn_output.weight", e, e)
            norm(f"blk.{i}.ffn_norm.weight")
            if dims.n_expert:
                writer.add_tensor(f"blk.{i}.ffn_gate_inp.weight",  # the router stays f32
                                  rng.standard_normal((dims.n_expert, e), dtype=np.float32))  # fmt: skip
                matrix(f"blk.{i}.ffn_gate_exps.weight", ff, e, dims.n_expert)
                matrix(f"blk.{i}.ffn_up_exps.weight", ff, e, dims.n_expert)
                matrix(f"blk.{i}.ffn_down_exps.weight", e, ff, dims.n_expert)
            else:
                matrix(f"blk.{i}.ffn_gate.weight", ff, e)
                matrix(f"blk.{i}.ffn_up.weight", ff, e)
                matrix(f"blk.{i}.ffn_down.weight", e, ff)
        norm("output_norm.weight")
        # Words only: zero rows give logit 0 while word rows (std 0.1, ~3 after the norm's
        # sqrt(n_embd) scale) give a top logit many units above it, so no byte, character or
        # end-of-text token is ever sampled at the usual temperatures and min_p.
        out = np.zeros((dims.n_vocab, e), dtype=np.float32)
        words = word_token_ids()
        out[words.start : words.stop] = rng.standard_normal((len(words), e), dtype=np.float32)
        out[words.start : words.stop] *= 0.1
        if qtype == gguf.GGMLQuantizationType.Q8_0:
            writer.add_tensor("output.weight", gguf.quants.quantize(out, qtype), raw_dtype=qtype)
        else:
            writer.add_tensor("output.weight", out.astype(np.float16))

        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a model is not a secret
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return DemoModelInfo(
        path=path,
        n_params=dims.n_params,
        n_layers=dims.n_layers,
        n_embd=dims.n_embd,
        n_head=dims.n_head,
        n_head_kv=dims.n_head_kv,
        n_ff=dims.n_ff,
        n_vocab=dims.n_vocab,
        n_ctx_train=n_ctx_train,
        dtype=dtype,
        file_bytes=path.stat().st_size,
        n_expert=dims.n_expert,
        n_expert_used=dims.n_expert_used,
    )


def cache_dir() -> Path:
    """`$XDG_CACHE_HOME/rigtui` or `~/.cache/rigtui`."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rigtui"


def demo_model_path(size: str = "300M", dtype: str = "f16", experts: int = 0) -> Path:
    """Where `ensure_demo_model` keeps the model of this size, dtype and expert count."""
    # v2: the vocabulary with words (older cached files stay valid models, just not these)
    moe = f"-moe{experts}" if experts else ""
    return cache_dir() / f"demo-{size}{moe}-{dtype}-v2.gguf"


def ensure_demo_model(size: str = "300M", dtype: str = "f16", experts: int = 0) -> Path:
    """The cached demo model of this size, generated on first use (seconds for 300M)."""
    path = demo_model_path(size, dtype, experts)
    if not path.is_file():
        write_demo_model(path, size=size, dtype=dtype, experts=experts)
    return path


def profile_demo_path(profile: Any) -> Path:
    """The cached file of a `demo:SIZE[-moeN]` profile's model (it may not exist yet)."""
    return demo_model_path(profile.demo_size or "300M", experts=profile.demo_experts)


def ensure_profile_demo(profile: Any) -> Path:
    """The `demo:SIZE[-moeN]` profile's model, generated on first use."""
    return ensure_demo_model(profile.demo_size or "300M", experts=profile.demo_experts)
