"""The measures of the `reference` evaluation suite (selfinstruct/evals/): ROUGE-L of an answer against the
held-out reference, and the completion-only eval loss (cross-entropy on the reference answer tokens,
prompt masked exactly as in training, token-weighted mean), a transformers forward pass, so that it is
comparable with the trainer's eval loss."""
from __future__ import annotations

from ..dedup import rouge_l_f, tokenize
from .data import prompt_completion_ids


def rouge_l(reference: str, answer: str) -> float:
    """ROUGE-L F1 as rouge-score's score(target=reference, prediction=answer)."""
    return rouge_l_f(new_tokens=tokenize(reference), old_tokens=tokenize(answer))


def eval_loss(tok, model, rows: list[dict], *, max_length: int = 1024, batch_size: int = 8) -> float:
    """Completion-only cross-entropy (mean over all completion tokens of all rows), chat template applied,
    prompt tokens masked exactly as in training."""
    import torch

    seqs = []
    for r in rows:
        full, n_prompt = prompt_completion_ids(tok, r["prompt"], r["completion"])
        labels = [-100] * n_prompt + full[n_prompt:]
        full, labels = full[:max_length], labels[:max_length]
        if any(x != -100 for x in labels):
            seqs.append((full, labels))
    if not seqs:
        return float("nan")
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    dev = next(model.parameters()).device
    total, count = 0.0, 0
    for b in range(0, len(seqs), batch_size):
        chunk = seqs[b:b + batch_size]
        width = max(len(s) for s, _ in chunk)
        input_ids = torch.tensor([s + [pad] * (width - len(s)) for s, _ in chunk], device=dev)
        attn = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s, _ in chunk], device=dev)
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in chunk], device=dev)
        with torch.no_grad():
            logits = model(input_ids=input_ids, attention_mask=attn).logits.float()
        shift_logits = logits[:, :-1].reshape(-1, logits.size(-1))
        shift_labels = labels[:, 1:].reshape(-1)
        loss = torch.nn.functional.cross_entropy(shift_logits, shift_labels, ignore_index=-100, reduction="sum")
        total += float(loss)
        count += int((shift_labels != -100).sum())
    return total / count if count else float("nan")
