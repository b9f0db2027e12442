#!/usr/bin/python3
"""Times the reference GLM (THUDM/GLM) training step on the shapes of `glm bench train`.

The side-by-side partner of `glm bench train` (docs/benchmarks.md): the reference model
(imported from --reference exactly as export_reference.py does), in train mode with dropout 0.1,
forward + the reference's loss (pretrain_glm.py: vocab_parallel_cross_entropy over every
position's logits, masked mean) + backward + torch.optim.AdamW, float32, on the same synthetic
blank-infilling batch layout. Prints one JSON line.

    OPENBLAS_CORETYPE=SkylakeX OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 tests/golden/bench_reference.py \
        --reference /tmp/glm-ref --layers 4 --hidden 256 --heads 4 --vocab 16000 --seq-len 512 --micro-batch 4
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_reference  # noqa: E402  (the stubs and loader; no reference code)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", required=True)
    p.add_argument("--layers", type=int, required=True)
    p.add_argument("--hidden", type=int, required=True)
    p.add_argument("--heads", type=int, required=True)
    p.add_argument("--vocab", type=int, required=True)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--micro-batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--part-b-fraction", type=float, default=0.2)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    mpu, modeling = export_reference.load_reference(args.reference)
    vocab = (args.vocab + 127) // 128 * 128
    positions = max(512, args.seq_len)
    torch.manual_seed(1)
    model = modeling.GLMModel(num_layers=args.layers, vocab_size=vocab, hidden_size=args.hidden,
                              num_attention_heads=args.heads, embedding_dropout_prob=0.1,
                              attention_dropout_prob=0.1, output_dropout_prob=0.1,
                              max_sequence_length=positions, max_memory_length=0, checkpoint_activations=False,
                              parallel_output=True, relative_encoding=False, block_position_encoding=True)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)

    # The batch layout of glm bench train (cmd/bench_train.cc: SyntheticBatch).
    b, s = args.micro_batch, args.seq_len
    sep = max(1, s - int(args.part_b_fraction * s))
    tokens = torch.randint(vocab, (b, s))
    targets = torch.randint(vocab, (b, s))
    pos = torch.arange(s).clamp(max=positions).repeat(b, 1)
    block = torch.zeros(b, s, dtype=torch.int64)
    loss_mask = torch.zeros(b, s)
    for j in range(sep, s):
        span = (j - sep) // 4
        pos[:, j] = min(sep - 1, (span * 7919) % sep)
        block[:, j] = (j - sep) % 4 + 1
        loss_mask[:, j] = 1
    position_ids = torch.stack([pos, block], dim=1)
    seps = torch.full((b,), sep, dtype=torch.int64)

    def step():
        optimizer.zero_grad()
        logits, *_ = model(tokens, position_ids, seps)
        losses = mpu.vocab_parallel_cross_entropy(logits.contiguous().float(), targets)
        loss = torch.sum(losses.view(-1) * loss_mask.view(-1)) / loss_mask.sum()
        loss.backward()
        optimizer.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - start)
    mean = sum(times) / len(times)
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps(dict(bench="train-reference", layers=args.layers, hidden=args.hidden, heads=args.heads,
                          vocab=vocab, params=params, seq_len=s, micro_batch=b, steps=args.steps,
                          step_s_mean=mean, step_s_median=sorted(times)[len(times) // 2],
                          tokens_per_s=b * s / mean, loss=loss, torch_threads=torch.get_num_threads())))


if __name__ == "__main__":
    main()
