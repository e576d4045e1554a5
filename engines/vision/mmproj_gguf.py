"""Write a CLIP-style vision tower + LLaVA MLP projector as an mmproj GGUF that llama.cpp's mtmd loads.

The tower is a transformers ``CLIPVisionModel`` (state-dict keys ``embeddings.*``, ``encoder.layers.*``; a
``vision_model.`` prefix, as older transformers wrote, is accepted) and the projector is
LLaVA's Linear-GELU-Linear (keys ``linear_1.*``, ``linear_2.*``). The ``gguf`` package writes the file; the
key and tensor names are those of llama.cpp's clip loader (tools/mtmd/clip.cpp, clip-impl.h) as vendored
in llama-cpp-python 0.3.36, projector type "mlp" (the LLaVA 1.5 graph):

- llama.cpp keeps the class token in the sequence and drops it before the projector; every patch becomes
  one image token, so an image costs ``(image_size / patch_size) ** 2`` tokens.
- Without ``clip.vision.feature_layer`` llama.cpp stops one layer early (LLaVA's ``vision_feature_layer =
  -2``). Hearth's towers use every layer, so the file names the last layer (``block_count``) as the feature
  layer, and the post-layernorm is not written (LLaVA does not use it).
- The tower's activation is quick-GELU (CLIP's), which llama.cpp uses when ``clip.use_gelu`` is false; the
  projector's GELU is ggml's tanh approximation, so Hearth's projector uses ``nn.GELU(approximate="tanh")``.

The tensor-name mapping is hand-written because gguf's TensorNameMap has no entry for a bare
CLIPVisionModel state dict outside llama.cpp's converter script (which is not part of the package).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

PROJECTOR_TYPE = "mlp"
# A tower config needs these fields (names as in transformers' CLIPVisionConfig).
TOWER_FIELDS = ("image_size", "patch_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                "num_attention_heads", "layer_norm_eps")


def n_image_tokens(tower: Mapping) -> int:
    """How many tokens one image costs in the language model's context."""
    return (int(tower["image_size"]) // int(tower["patch_size"])) ** 2


def _check_config(tower: Mapping) -> None:
    missing = [f for f in TOWER_FIELDS if f not in tower]
    if missing:
        raise ValueError(f"vision tower config is missing {', '.join(missing)}; it needs {', '.join(TOWER_FIELDS)}")
    if tower.get("hidden_act", "quick_gelu") != "quick_gelu":
        raise ValueError(f"vision tower hidden_act is {tower['hidden_act']!r}; the mmproj writer supports 'quick_gelu' "
                         "(llama.cpp's CLIP activation)")
    if int(tower["image_size"]) % int(tower["patch_size"]):
        raise ValueError(f"vision tower image_size {tower['image_size']} is not a multiple of patch_size {tower['patch_size']}")
    if int(tower["hidden_size"]) % int(tower["num_attention_heads"]):
        raise ValueError("vision tower hidden_size must be a multiple of num_attention_heads")


def tensor_map(n_layers: int) -> dict[str, str]:
    """State-dict key -> mmproj tensor name (CLIPVisionModel + LLaVA projector -> llama.cpp clip)."""
    names = {
        "embeddings.class_embedding": "v.class_embd",
        "embeddings.patch_embedding.weight": "v.patch_embd.weight",
        "embeddings.position_embedding.weight": "v.position_embd.weight",
        "pre_layrnorm.weight": "v.pre_ln.weight",
        "pre_layrnorm.bias": "v.pre_ln.bias",
        "linear_1.weight": "mm.0.weight", "linear_1.bias": "mm.0.bias",
        "linear_2.weight": "mm.2.weight", "linear_2.bias": "mm.2.bias",
    }
    per_layer = {
        "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
        "self_attn.out_proj": "attn_out", "layer_norm1": "ln1", "layer_norm2": "ln2",
        "mlp.fc1": "ffn_up", "mlp.fc2": "ffn_down",
    }
    for i in range(n_layers):
        for hf, gg in per_layer.items():
            for part in ("weight", "bias"):
                names[f"encoder.layers.{i}.{hf}.{part}"] = f"v.blk.{i}.{gg}.{part}"
    return names


def write_mmproj(path: str | Path, state_dict: Mapping, tower: Mapping, image_mean, image_std,
                 name: str = "hearth-vision", description: str = "") -> Path:
    """Write ``state_dict`` (tower + projector tensors, torch or numpy) as an mmproj GGUF at ``path``.

    ``tower`` is the CLIPVisionConfig as a dict. Keys of the state dict that llama.cpp does not use
    (``post_layernorm.*``) are skipped; a missing one is an error naming it. The file is
    written beside the target and moved into place, so a failed write never replaces a good file.
    """
    import gguf

    _check_config(tower)
    path = Path(path)
    sd = {k.removeprefix("vision_model."): (v.detach().float().cpu().numpy() if hasattr(v, "detach") else np.asarray(v, dtype=np.float32))
          for k, v in state_dict.items()}
    n_layers = int(tower["num_hidden_layers"])
    mapping = tensor_map(n_layers)
    missing = [k for k in mapping if k not in sd]
    if missing:
        raise ValueError(f"state dict lacks {len(missing)} tensors the mmproj needs, e.g. {missing[:3]}")
    out_dim = int(sd["linear_2.weight"].shape[0])

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    writer = gguf.GGUFWriter(str(tmp), arch="clip")
    try:
        writer.add_type(gguf.GGUFType.MODEL)  # "model"; the mmproj marker is general.architecture == "clip"
        writer.add_name(name)
        if description:
            writer.add_description(description)
        writer.add_file_type(gguf.LlamaFileType.ALL_F32)
        writer.add_clip_has_vision_encoder(True)
        writer.add_clip_projector_type(PROJECTOR_TYPE)
        writer.add_bool(gguf.Keys.Clip.HAS_LLAVA_PROJECTOR, True)
        writer.add_vision_image_size(int(tower["image_size"]))
        writer.add_vision_patch_size(int(tower["patch_size"]))
        writer.add_vision_embedding_length(int(tower["hidden_size"]))
        writer.add_vision_feed_forward_length(int(tower["intermediate_size"]))
        writer.add_vision_block_count(n_layers)
        writer.add_vision_head_count(int(tower["num_attention_heads"]))
        writer.add_vision_attention_layernorm_eps(float(tower["layer_norm_eps"]))
        writer.add_vision_projection_dim(out_dim)
        writer.add_vision_image_mean([float(x) for x in image_mean])
        writer.add_vision_image_std([float(x) for x in image_std])
        writer.add_vision_use_gelu(False)  # quick-GELU, CLIP's activation
        # Use every layer's output (see the module docstring).
        writer.add_array("clip.vision.feature_layer", [n_layers])
        for key, gname in mapping.items():
            writer.add_tensor(gname, np.ascontiguousarray(sd[key], dtype=np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return path
