"""Writes a llama-architecture GGUF with random F16 weights, for load-time measurements.

    python gen.py SIZE OUT TOKENIZER_GGUF

SIZE is `tiny` (~9 MB) or `large` (~1 GB). The tokenizer (every `tokenizer.*` key) is copied
from TOKENIZER_GGUF (the starter model, SmolLM2: a 49,152-token BPE vocabulary and its chat
template), so llama.cpp loads the file as it loads a real model and `sov chat` can run it. The
weights are a fixed pseudo-random block (normal, sd 0.02) repeated: the answers are nonsense,
which does not matter for timing a load. Needs numpy and gguf (PyPI; run.sh installs both into a virtual environment).
"""

import os
import sys

import numpy as np

import gguf

# name: (embedding, layers, heads, feed-forward)
SHAPES = {
    "tiny": (64, 2, 4, 256),
    "large": (2048, 8, 16, 5632),
}


def main() -> None:
    size, out, tok_path = sys.argv[1], sys.argv[2], sys.argv[3]
    n_embd, n_layer, n_head, n_ff = SHAPES[size]

    reader = gguf.GGUFReader(tok_path)
    writer = gguf.GGUFWriter(out + ".part", "llama")
    writer.add_name(f"sov-bench-{size}")
    writer.add_context_length(2048)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)

    n_vocab = 0
    for field in reader.fields.values():
        if not field.name.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        value = field.contents()
        if vtype == gguf.GGUFValueType.ARRAY:
            sub = field.types[1]
            writer.add_key_value(field.name, value, vtype, sub_type=sub)
            if field.name == "tokenizer.ggml.tokens":
                n_vocab = len(value)
        else:
            writer.add_key_value(field.name, value, vtype)
    if n_vocab == 0:
        sys.exit(f"{tok_path} has no tokenizer.ggml.tokens")

    rng = np.random.default_rng(0)
    block = (rng.standard_normal(1 << 20, dtype=np.float32) * 0.02).astype(np.float16)

    def weight(rows: int, cols: int) -> np.ndarray:
        return np.resize(block, rows * cols).reshape(rows, cols)

    def norm() -> np.ndarray:
        return np.ones(n_embd, dtype=np.float32)

    # numpy shape (rows, cols) is GGML's (ne0 = cols, ne1 = rows).
    writer.add_tensor("token_embd.weight", weight(n_vocab, n_embd))
    writer.add_tensor("output_norm.weight", norm())
    for i in range(n_layer):
        p = f"blk.{i}."
        writer.add_tensor(p + "attn_norm.weight", norm())
        for t in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(p + t + ".weight", weight(n_embd, n_embd))
        writer.add_tensor(p + "ffn_norm.weight", norm())
        writer.add_tensor(p + "ffn_gate.weight", weight(n_ff, n_embd))
        writer.add_tensor(p + "ffn_up.weight", weight(n_ff, n_embd))
        writer.add_tensor(p + "ffn_down.weight", weight(n_embd, n_ff))
    # No output.weight: llama.cpp ties the output to token_embd.

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(out + ".part", out)


if __name__ == "__main__":
    main()
