"""A reference BERT sentence embedder in numpy, for crates/sov-engine/tests/bert.rs.

Reads all-MiniLM-L6-v2's files straight from its model.zip (safetensors parsed by hand, not by
a library), tokenises with Hugging Face's `tokenizers` (the tokenizer the model was published
with, truncation and padding off), runs BertModel's forward pass in float64 (embeddings and
layer norm, then per layer: self-attention, add & norm, GELU feed-forward, add & norm) and
mean-pools the last hidden states, L2-normalised, as sentence-transformers does.

stdin: a JSON list of sentences. stdout: {"ids": [[...]], "vectors": [[...]]}.
usage: python bert_reference.py MODEL_ZIP < sentences.json
"""

import json
import math
import sys
import zipfile

import numpy as np
from tokenizers import Tokenizer


def load(zip_path):
    with zipfile.ZipFile(zip_path) as z:
        config = json.loads(z.read("config.json"))
        tokenizer = Tokenizer.from_str(z.read("tokenizer.json").decode("utf-8"))
        weights = z.read("model.safetensors")
    n = int.from_bytes(weights[:8], "little")
    header = json.loads(weights[8 : 8 + n])
    base = 8 + n
    dtypes = {"F32": np.float32, "I64": np.int64}
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        array = np.frombuffer(weights[base + begin : base + end], dtype=dtypes[info["dtype"]])
        tensors[name] = array.reshape(info["shape"]).astype(np.float64)
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return config, tokenizer, tensors


def layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


_erf = np.vectorize(math.erf)


def gelu(x):
    # BERT's "gelu" is the exact one, with erf.
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def embed(config, t, ids):
    eps = config["layer_norm_eps"]
    heads = config["num_attention_heads"]
    hidden = config["hidden_size"]
    d = hidden // heads
    n = len(ids)
    x = (
        t["embeddings.word_embeddings.weight"][ids]
        + t["embeddings.position_embeddings.weight"][:n]
        + t["embeddings.token_type_embeddings.weight"][0]
    )
    x = layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"], eps)
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        def linear(name, v):
            return v @ t[p + name + ".weight"].T + t[p + name + ".bias"]

        def split(v):
            return v.reshape(n, heads, d).transpose(1, 0, 2)

        q = split(linear("attention.self.query", x))
        k = split(linear("attention.self.key", x))
        v = split(linear("attention.self.value", x))
        att = softmax(q @ k.transpose(0, 2, 1) / math.sqrt(d)) @ v
        att = att.transpose(1, 0, 2).reshape(n, hidden)
        x = layer_norm(
            linear("attention.output.dense", att) + x,
            t[p + "attention.output.LayerNorm.weight"],
            t[p + "attention.output.LayerNorm.bias"],
            eps,
        )
        h = linear("output.dense", gelu(linear("intermediate.dense", x)))
        x = layer_norm(h + x, t[p + "output.LayerNorm.weight"], t[p + "output.LayerNorm.bias"], eps)
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


def main():
    config, tokenizer, tensors = load(sys.argv[1])
    sentences = json.load(sys.stdin)
    ids = [tokenizer.encode(s).ids for s in sentences]
    vectors = [embed(config, tensors, i).tolist() for i in ids]
    json.dump({"ids": ids, "vectors": vectors}, sys.stdout)


if __name__ == "__main__":
    main()
