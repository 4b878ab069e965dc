"""A tiny random Whisper (config, byte-level tokenizer, feature extractor) saved to a folder.

Built offline from transformers classes alone: 256 byte tokens, a few merges
and Whisper's special tokens, one encoder and one decoder layer of width 16.
Its transcripts are gibberish, but deterministic, which is all the plugin
tests need (they compare against transformers called directly).
"""

from __future__ import annotations

from pathlib import Path

SPECIALS = ["<|startoftranscript|>", "<|en|>", "<|de|>", "<|translate|>", "<|transcribe|>", "<|startoflm|>",
            "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"]


def save_tiny_whisper(folder: Path, seed: int = 0) -> Path:
    import torch
    from transformers import (GenerationConfig, WhisperConfig, WhisperFeatureExtractor,
                              WhisperForConditionalGeneration, WhisperProcessor, WhisperTokenizer)
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {c: i for i, c in enumerate(bytes_to_unicode().values())}
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    vocab["<|endoftext|>"] = eot = len(vocab)
    tok = WhisperTokenizer(vocab=dict(vocab), merges=merges, pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": SPECIALS})
    ids = {s: tok.convert_tokens_to_ids(s) for s in SPECIALS}
    cfg = WhisperConfig(vocab_size=len(tok), num_mel_bins=80, d_model=16, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                        max_source_positions=1500, max_target_positions=64, pad_token_id=eot, bos_token_id=eot,
                        eos_token_id=eot, decoder_start_token_id=ids["<|startoftranscript|>"],
                        begin_suppress_tokens=None, suppress_tokens=None)
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(cfg)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"], eos_token_id=eot, pad_token_id=eot, bos_token_id=eot,
        max_length=64, is_multilingual=True, no_timestamps_token_id=ids["<|notimestamps|>"],
        lang_to_id={"<|en|>": ids["<|en|>"], "<|de|>": ids["<|de|>"]},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]})
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80, sampling_rate=16000, chunk_length=30),
                     tokenizer=tok).save_pretrained(folder)
    return folder
