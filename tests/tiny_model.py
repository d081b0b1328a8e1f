"""A tiny, randomly initialised chat model saved as a model folder (config, weights, tokenizer with a chat
template): what a trainer test needs to run a real training loop in a second on a CPU. The tokenizer is
word-level over a small vocabulary (other words read as <unk>), so one sampled token is one word."""
from __future__ import annotations

from pathlib import Path

WORDS = ("indeed", "then", "so", "alpha", "beta", "gamma", "delta", "sun", "moon", "tree", "rock", "blue", "red",
         "fast", "slow", "one", "two", "three", "task", "answer", ".")
CHAT_TEMPLATE = ("{% for m in messages %}{{ m['content'] }} {% endfor %}"
                 "{% if add_generation_prompt %}=>{% endif %}")


def save_tiny_model(out: Path, *, seed: int = 0, layers: int = 1, hidden: int = 32, positions: int = 128) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(("<pad>", "<eos>", "<unk>", "=>") + WORDS)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##")  # joins the words with spaces
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    tok.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=positions, pad_token_id=0,
                      eos_token_id=1, bos_token_id=None, tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg)
    model.generation_config.pad_token_id, model.generation_config.eos_token_id = 0, 1
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
