#!/usr/bin/python3
"""Exports golden tensors from the reference GLM implementation (THUDM/GLM).

Run once, on CPU, with Debian's python3 + python3-torch:

    mkdir -p /tmp/glm-ref && git --git-dir=<THUDM/GLM git dir> archive HEAD | tar x -C /tmp/glm-ref
    /usr/bin/python3 tests/golden/export_reference.py --reference /tmp/glm-ref --out tests/golden/data

The reference's code is imported from --reference, never copied: this script
only stubs what a CPU-only, single-process run lacks (apex's FusedLayerNorm ->
torch.nn.LayerNorm, which is the same maths; deepspeed's checkpointing flag;
the CUDA RNG tracker used around dropout, which is a no-op in eval mode), and
initialises torch.distributed with one Gloo process so mpu (model parallel
size 1) works.

Writes (see tests/golden/README.md):
  data/weights.safetensors  the tiny model's parameters, float64, reference names
  data/config.json          its GlmConfig (HuggingFace THUDM/glm keys)
  data/cases.safetensors    per case: inputs, logits, loss, and for some cases
                            gradients of the loss; the memory (KV-cache) case's
                            per-step logits
All expected values come from the reference run in float64.
"""
import argparse
import contextlib
import importlib.util
import json
import math
import os
import struct
import sys
import tempfile
import types

import torch

# --- tiny model shape ---
CONFIG = dict(num_layers=2, hidden_size=16, num_attention_heads=4, vocab_size=128, max_sequence_length=24)

# Token ids (the test vocabulary is synthetic): specials below 10, text 10..99.
PAD, CLS, EOS, MASK, SOP, EOP, SMASK, GMASK = 0, 1, 2, 3, 4, 5, 6, 7


def install_stubs(reference):
    """Stubs for modules a CPU-only single-process run does not have."""
    apex = types.ModuleType("apex")
    normalization = types.ModuleType("apex.normalization")
    fused = types.ModuleType("apex.normalization.fused_layer_norm")
    fused.FusedLayerNorm = torch.nn.LayerNorm  # same maths: biased variance, eps, affine
    apex.normalization = normalization
    normalization.fused_layer_norm = fused
    sys.modules.update({"apex": apex, "apex.normalization": normalization,
                        "apex.normalization.fused_layer_norm": fused})

    deepspeed = types.ModuleType("deepspeed")
    checkpointing = types.ModuleType("deepspeed.checkpointing")
    checkpointing.is_configured = lambda: False
    deepspeed.checkpointing = checkpointing
    sys.modules.update({"deepspeed": deepspeed, "deepspeed.checkpointing": checkpointing})

    # modeling_glm imports print_rank_0 from the training utils (which pull in
    # tensorboardX and fp16); only that function is needed.
    utils = types.ModuleType("utils")
    utils.print_rank_0 = print
    sys.modules["utils"] = utils

    # Import reference/model/*.py as package `model` without its __init__
    # (which imports fine-tuning heads and DDP wrappers).
    model_pkg = types.ModuleType("model")
    model_pkg.__path__ = [os.path.join(reference, "model")]
    sys.modules["model"] = model_pkg
    sys.path.insert(0, reference)


def load_reference(reference):
    install_stubs(reference)
    import mpu  # noqa: E402  (the reference's)
    import mpu.transformer as transformer

    class NoRngTracker:
        @contextlib.contextmanager
        def fork(self, name=None):
            yield

    transformer.get_cuda_rng_tracker = lambda: NoRngTracker()
    if not torch.distributed.is_initialized():
        store = os.path.join(tempfile.mkdtemp(prefix="glm-ref-"), "store")
        torch.distributed.init_process_group("gloo", init_method="file://" + store, rank=0, world_size=1)
    mpu.initialize_model_parallel(1)
    spec = importlib.util.spec_from_file_location("model.modeling_glm",
                                                  os.path.join(reference, "model", "modeling_glm.py"))
    modeling = importlib.util.module_from_spec(spec)
    sys.modules["model.modeling_glm"] = modeling
    spec.loader.exec_module(modeling)
    return mpu, modeling


def build_model(modeling):
    c = CONFIG
    m = modeling.GLMModel(num_layers=c["num_layers"], vocab_size=c["vocab_size"], hidden_size=c["hidden_size"],
                          num_attention_heads=c["num_attention_heads"], embedding_dropout_prob=0.1,
                          attention_dropout_prob=0.1, output_dropout_prob=0.1,
                          max_sequence_length=c["max_sequence_length"], max_memory_length=0,
                          checkpoint_activations=False, parallel_output=True, relative_encoding=False,
                          block_position_encoding=True)
    # Random, non-trivial values everywhere (LayerNorm weights away from 1,
    # biases away from 0) so every parameter matters.
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "layernorm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=g))
    return m.double().eval()


def blank_case():
    # GLM_SPEC.md 2.8 worked example, ids shifted into the test vocabulary:
    # [CLS] 17 18 19 20 21 22 23 24 25 eos, spans "18 19" and "22 23 24",
    # Part-B order: second span first.
    tokens = [CLS, 17, MASK, 20, 21, MASK, 25, EOS, SOP, 22, 23, 24, SOP, 18, 19]
    targets = [CLS, 17, MASK, 20, 21, MASK, 25, EOS, 22, 23, 24, EOP, 18, 19, EOP]
    pos = [0, 1, 2, 3, 4, 5, 6, 7, 5, 5, 5, 5, 2, 2, 2]
    block = [0] * 8 + [1, 2, 3, 4, 1, 2, 3]
    return dict(tokens=tokens, targets=targets, pos=pos, block=block, sep=8, objective=0)


def sentence_case():
    # [CLS] 30 31 32 . 40 41 . 50 51 eos with "." = 9; the sentence "40 41 ." masked by [sMASK].
    tokens = [CLS, 30, 31, 32, 9, SMASK, 50, 51, EOS, SOP, 40, 41, 9]
    targets = [CLS, 30, 31, 32, 9, SMASK, 50, 51, EOS, 40, 41, 9, EOP]
    pos = [0, 1, 2, 3, 4, 5, 6, 7, 8, 5, 5, 5, 5]
    block = [0] * 9 + [1, 2, 3, 4]
    return dict(tokens=tokens, targets=targets, pos=pos, block=block, sep=9, objective=1)


def document_case():
    # Suffix layout of GLM_SPEC.md 2.8 (n = 10, G = 4): no eop, last target eos.
    tokens = [CLS, 60, 61, 62, 63, 64, GMASK, SOP, 65, 66, 67]
    targets = [CLS, 60, 61, 62, 63, 64, GMASK, 65, 66, 67, EOS]
    pos = [0, 1, 2, 3, 4, 5, 6, 6, 6, 6, 6]
    block = [0] * 7 + [1, 2, 3, 4]
    return dict(tokens=tokens, targets=targets, pos=pos, block=block, sep=7, objective=2)


def as_tensors(rows):
    """Pads rows as the reference's pad_batch (GLM_SPEC.md 2.7)."""
    n = max(len(r["tokens"]) for r in rows)

    def pad(key):
        return torch.tensor([r[key] + [0] * (n - len(r[key])) for r in rows], dtype=torch.int64)

    tokens, targets, pos, block = pad("tokens"), pad("targets"), pad("pos"), pad("block")
    mask = torch.tensor([[1.0 if j >= r["sep"] and j < len(r["tokens"]) else 0.0 for j in range(n)] for r in rows],
                        dtype=torch.float64)
    sep = torch.tensor([r["sep"] for r in rows], dtype=torch.int64)
    objective = torch.tensor([r["objective"] for r in rows], dtype=torch.int64)
    return tokens, targets, pos, block, mask, sep, objective


def reference_loss(mpu, logits, targets, mask):
    # pretrain_glm.py forward_step; the reference casts logits with .float()
    # (float32); here the cast is to float64 to keep the whole run in float64.
    losses = mpu.vocab_parallel_cross_entropy(logits.contiguous().double(), targets)
    loss = torch.sum(losses.view(-1) * mask.view(-1))
    return loss / mask.sum()


def run_case(mpu, model, rows, with_grads):
    tokens, targets, pos, block, mask, sep, objective = as_tensors(rows)
    model.zero_grad()
    position_ids = torch.stack([pos, block], dim=1)  # (B, 2, S)
    logits, *_ = model(tokens, position_ids, sep)
    loss = reference_loss(mpu, logits, targets, mask)
    out = dict(tokens=tokens, position_ids=pos, block_position_ids=block, sep=sep, targets=targets,
               loss_mask=mask, objective=objective, logits=logits.detach(), loss=loss.detach().reshape(()))
    if with_grads:
        loss.backward()
        for name, p in model.named_parameters():
            out["grad." + name] = p.grad.detach().clone()
    return out


def run_memory_case(model):
    # Context = the document case's Part A (sep = its length), then the
    # Part-B tokens one at a time with sep 0, carrying the memory.
    d = document_case()
    sep = d["sep"]

    def inputs(a, b):
        t = torch.tensor([d["tokens"][a:b]], dtype=torch.int64)
        p = torch.tensor([[d["pos"][a:b], d["block"][a:b]]], dtype=torch.int64)
        return t, p

    t, p = inputs(0, sep)
    logits, *mems = model(t, p, torch.tensor([sep]), return_memory=True)
    steps = [logits.detach()]
    for j in range(sep, len(d["tokens"])):
        t, p = inputs(j, j + 1)
        logits, *mems = model(t, p, torch.tensor([0]), *mems, return_memory=True)
        steps.append(logits.detach())
    tokens = torch.tensor([d["tokens"]], dtype=torch.int64)
    return dict(tokens=tokens, position_ids=torch.tensor([d["pos"]]), block_position_ids=torch.tensor([d["block"]]),
                sep=torch.tensor([sep]), context_length=torch.tensor([sep]),
                logits=torch.cat(steps, dim=1))  # (1, S, V): context logits then one row per step


DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.int64: "I64"}


def write_safetensors(path, tensors, metadata=None):
    header, offset, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        t = t.detach().contiguous()
        data = t.numpy().tobytes()
        header[name] = dict(dtype=DTYPES[t.dtype], shape=list(t.shape), data_offsets=[offset, offset + len(data)])
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", required=True, help="root of an extracted THUDM/GLM checkout")
    parser.add_argument("--out", required=True, help="output directory")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    mpu, modeling = load_reference(args.reference)
    model = build_model(modeling)
    names = [n for n, _ in model.named_parameters()]
    os.makedirs(args.out, exist_ok=True)
    write_safetensors(os.path.join(args.out, "weights.safetensors"), dict(model.named_parameters()),
                      {k: str(v) for k, v in CONFIG.items()})
    cfg = dict(CONFIG, architectures=["GLMModel"], model_type="glm", embedding_dropout_prob=0.1,
               attention_dropout_prob=0.1, output_dropout_prob=0.1, block_position_encoding=True)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")

    cases = {}
    plan = [("blank", [blank_case()], False), ("sentence", [sentence_case()], False),
            ("document", [document_case()], True),
            ("batched", [blank_case(), sentence_case(), document_case()], True)]
    for name, rows, grads in plan:
        for key, t in run_case(mpu, model, rows, grads).items():
            cases[f"{name}.{key}"] = t
    for key, t in run_memory_case(model).items():
        cases[f"memory.{key}"] = t
    write_safetensors(os.path.join(args.out, "cases.safetensors"), cases,
                      {"reference": "THUDM/GLM", "dtype": "float64", "parameters": ",".join(names)})
    for name, _, _ in plan:
        print(f"{name}: loss {cases[name + '.loss'].item():.12f}")
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(f"wrote {args.out} ({total} bytes)")


if __name__ == "__main__":
    main()
