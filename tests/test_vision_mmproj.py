"""The mmproj writer (engines/vision/mmproj_gguf.py): a tiny random tower + projector, written as a GGUF, read back
by the gguf package and loaded by llama.cpp's libmtmd beside the bundled SmolLM2, which encodes an image to the same
embeddings PyTorch computes and answers a chat about it."""
from __future__ import annotations

import base64
import ctypes
import io

import numpy as np
import pytest

from engines.vision.mmproj_gguf import n_image_tokens, tensor_map, write_mmproj

TINY = dict(image_size=32, patch_size=16, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=2, layer_norm_eps=1e-5, hidden_act="quick_gelu")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import torch

    from engines.vision.model import CLIP_MEAN, CLIP_STD, VisionProjector

    torch.manual_seed(0)
    model = VisionProjector(TINY, 576).eval()
    path = write_mmproj(tmp_path_factory.mktemp("mmproj") / "mmproj-tiny.gguf", model.mmproj_state_dict(), TINY,
                        CLIP_MEAN, CLIP_STD, name="tiny")
    return model, path


def _scene_png(size: int) -> tuple[bytes, object]:
    from engines.image.shapes import Scene, render

    img = render(Scene("red", "star", "large", "left", "blue"), size=size)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue(), img


def test_round_trip_keys_and_tensors(tiny):
    import gguf

    model, path = tiny
    reader = gguf.GGUFReader(str(path))
    fields = reader.fields

    def value(key):
        f = fields[key]
        return f.contents() if hasattr(f, "contents") else f.parts[f.data[0]]

    assert value("general.architecture") == "clip"
    assert value("clip.projector_type") == "mlp"
    assert value("clip.vision.image_size") == 32 and value("clip.vision.patch_size") == 16
    assert value("clip.vision.block_count") == 2 and value("clip.vision.projection_dim") == 576
    names = {t.name: t for t in reader.tensors}
    assert set(names) == set(tensor_map(2).values())
    sd = model.mmproj_state_dict()
    for key, gname in tensor_map(2).items():
        stored = np.asarray(names[gname].data).reshape(tuple(reversed([int(x) for x in names[gname].shape])))
        np.testing.assert_array_equal(stored, sd[key].numpy().reshape(stored.shape))
    assert n_image_tokens(TINY) == 4


def test_bad_config_and_state_dict_are_clear_errors(tmp_path, tiny):
    model, _ = tiny
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    with pytest.raises(ValueError, match="missing patch_size"):
        write_mmproj(tmp_path / "a.gguf", model.mmproj_state_dict(), {k: v for k, v in TINY.items() if k != "patch_size"},
                     (0.5,) * 3, (0.5,) * 3)
    sd = dict(model.mmproj_state_dict())
    sd.pop("linear_2.bias")
    with pytest.raises(ValueError, match="linear_2.bias"):
        write_mmproj(tmp_path / "b.gguf", sd, TINY, (0.5,) * 3, (0.5,) * 3)
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


def test_llama_cpp_loads_it_and_matches_pytorch(tiny):
    import torch
    import llama_cpp.mtmd_cpp as mtmd
    from llama_cpp import Llama

    from engines.models.registry import bundled_default_path
    from engines.text.llama_vision import make_handler
    from engines.vision.model import preprocess

    model, path = tiny
    png, img = _scene_png(32)
    with torch.no_grad():
        expected = model(preprocess([img], 32))[0].numpy()

    handler = make_handler("MTMDChatHandler", str(path))  # Hearth's generic handler (string contents for SmolLM2)
    llm = Llama(str(bundled_default_path()), n_ctx=256, n_threads=1, verbose=False, chat_handler=handler)
    try:
        handler._init_mtmd_context(llm)
        bitmap = handler._create_bitmap_from_bytes(png)
        chunks = mtmd.mtmd_input_chunks_init()
        try:
            text = mtmd.mtmd_input_text()
            marker = mtmd.mtmd_default_marker()
            text.text, text.text_len, text.add_special, text.parse_special = marker, len(marker), True, True
            assert mtmd.mtmd_tokenize(handler.mtmd_ctx, chunks, ctypes.byref(text), (mtmd.mtmd_bitmap_p_ctypes * 1)(bitmap), 1) == 0
            images = [mtmd.mtmd_input_chunks_get(chunks, i) for i in range(mtmd.mtmd_input_chunks_size(chunks))]
            images = [c for c in images if mtmd.mtmd_input_chunk_get_type(c) == mtmd.MTMD_INPUT_CHUNK_TYPE_IMAGE]
            assert len(images) == 1 and mtmd.mtmd_input_chunk_get_n_tokens(images[0]) == n_image_tokens(TINY)
            assert mtmd.mtmd_encode_chunk(handler.mtmd_ctx, images[0]) == 0
            got = np.ctypeslib.as_array(mtmd.mtmd_get_output_embd(handler.mtmd_ctx), shape=(expected.size,))
            np.testing.assert_allclose(got.reshape(expected.shape), expected, atol=2e-3)
        finally:
            mtmd.mtmd_input_chunks_free(chunks)
            mtmd.mtmd_bitmap_free(bitmap)

        url = "data:image/png;base64," + base64.b64encode(png).decode()
        reply = llm.create_chat_completion(messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                         {"type": "text", "text": "What colour is the shape?"}]}],
            max_tokens=4, temperature=0.0)
        assert reply["usage"]["prompt_tokens"] > n_image_tokens(TINY)
        assert reply["choices"][0]["message"]["content"] is not None
    finally:
        llm.close()
