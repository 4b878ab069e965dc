"""Tiny random vision-language models (LLaVA and Qwen2-VL) with their processors, saved to folders.

Built offline from transformers classes and a byte-level BPE tokenizer made
with ``tokenizers`` (256 byte tokens plus each architecture's special
tokens), so no hub access is needed. Widths are 16-32 and one or two layers:
replies are gibberish but deterministic, which is all the plugin tests need.
"""

from __future__ import annotations

from pathlib import Path

LLAVA_TEMPLATE = ("{% for m in messages %}{{ m['role'] | upper }}: {% for c in m['content'] %}"
                  "{% if c['type'] == 'image' %}<image>{{ '\\n' }}{% else %}{{ c['text'] }}{% endif %}{% endfor %}{{ '\\n' }}"
                  "{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}")
QWEN_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% for c in m['content'] %}"
                 "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
                 "{% else %}{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>{{ '\\n' }}{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant{{ '\\n' }}{% endif %}")


def _tokenizer(specials: list[str], pad: str, eos: str, template: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {c: i for i, c in enumerate(bytes_to_unicode().values())}
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token=pad, eos_token=eos,
                                  additional_special_tokens=[s for s in specials if s not in (pad, eos)])
    tok.add_special_tokens({"pad_token": pad, "eos_token": eos})
    tok.chat_template = template
    return tok


def save_tiny_llava(folder: Path, seed: int = 0) -> Path:
    import torch
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor)

    tok = _tokenizer(["<image>", "<pad>", "</s>"], "<pad>", "</s>", LLAVA_TEMPLATE)
    vision = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                              image_size=16, patch_size=8, projection_dim=16)
    text = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                       pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id)
    cfg = LlavaConfig(vision_config=vision, text_config=text, image_token_index=tok.convert_tokens_to_ids("<image>"),
                      vision_feature_layer=-1, vision_feature_select_strategy="default", image_seq_length=4)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(cfg)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    proc = LlavaProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 16},
                                                             crop_size={"height": 16, "width": 16}),
                          tokenizer=tok, patch_size=8, vision_feature_select_strategy="default",
                          chat_template=LLAVA_TEMPLATE, image_token="<image>", num_additional_image_tokens=1)
    proc.save_pretrained(folder)
    return folder


def save_tiny_qwen2_vl(folder: Path, seed: int = 0) -> Path:
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessor, Qwen2VLProcessor

    specials = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
                "<|video_pad|>", "<|endoftext|>"]
    tok = _tokenizer(specials, "<|endoftext|>", "<|im_end|>", QWEN_TEMPLATE)
    ids = {s: tok.convert_tokens_to_ids(s) for s in specials}
    cfg = Qwen2VLConfig(
        text_config={"vocab_size": len(tok), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512,
                     "rope_scaling": {"type": "mrope", "mrope_section": [1, 1, 2]}, "rope_parameters": {
                         "rope_type": "default", "mrope_section": [1, 1, 2], "rope_theta": 10000.0},
                     "pad_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
                     "bos_token_id": ids["<|endoftext|>"]},
        vision_config={"depth": 1, "embed_dim": 16, "hidden_size": 32, "num_heads": 2, "mlp_ratio": 2,
                       "patch_size": 4, "spatial_merge_size": 2, "temporal_patch_size": 2, "in_channels": 3},
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(cfg)
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    image_proc = Qwen2VLImageProcessor(min_pixels=16 * 16, max_pixels=16 * 16, patch_size=4, merge_size=2,
                                       temporal_patch_size=2)
    from transformers import Qwen2VLVideoProcessor

    video_proc = Qwen2VLVideoProcessor(min_pixels=16 * 16, max_pixels=16 * 16, patch_size=4, merge_size=2,
                                       temporal_patch_size=2)
    Qwen2VLProcessor(image_processor=image_proc, tokenizer=tok, video_processor=video_proc,
                     chat_template=QWEN_TEMPLATE).save_pretrained(folder)
    return folder
