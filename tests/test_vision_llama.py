"""The real llama.cpp multimodal path: the bundled SmolLM2 GGUF with a tiny random mmproj beside it (written by
engines/vision/mmproj_gguf.py), paired automatically, loaded through libmtmd and answering about an image."""
from __future__ import annotations

import pytest

from engines.core.content import data_url
from engines.core.errors import ContextOverflowError, ModelFileError
from engines.core.events import Result, Token
from engines.core.requests.text import ChatRequest, LoadRequest
from tests.vision_support import TINY_TOWER, folder_with_model, png_bytes, write_real_projector

pytestmark = pytest.mark.timeout(600)
SYSTEM = {"role": "system", "content": "You are a helpful assistant."}


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gguf-vision") / "smol"
    model = folder_with_model(folder)
    write_real_projector(folder / "mmproj-tiny-f32.gguf")
    return model


@pytest.fixture(scope="module")
def engine(paired):
    from engines.text.engine import TextEngine

    engine = TextEngine()
    yield engine
    engine.close()


def ask(engine, model_id, content, **options):
    request = ChatRequest(messages=[SYSTEM, {"role": "user", "content": content}], model=model_id, max_tokens=6,
                          temperature=0.0, seed=0, **options)
    return list(engine.chat(request))


def test_a_gguf_with_its_mmproj_answers_about_an_image(engine, paired):
    loaded = engine.load(LoadRequest(model=str(paired), context_length=512))
    assert loaded.vision and loaded.backend_name == "llama"
    assert loaded.info["vision_handler"] == "MTMDChatHandler" and loaded.info["mmproj"].endswith("mmproj-tiny-f32.gguf")
    image = {"type": "image_url", "image_url": {"url": data_url(png_bytes((64, 48), (250, 200, 20)))}}
    events = ask(engine, loaded.id, [image, {"type": "text", "text": "What colour is it?"}])
    result = events[-1]
    assert isinstance(result, Result) and result.data["images"] == 1 and result.data["backend"] == "llama"
    assert any(isinstance(e, Token) for e in events) and result.data["completion_tokens"] >= 1
    text = ask(engine, loaded.id, "What colour is it?")[-1]
    # 4 image tokens (32x32 pixels in 16x16 patches) and the newline after the image count like text.
    assert result.data["prompt_tokens"] - text.data["prompt_tokens"] in (5, 6)
    # The same text-only question answers the same after an image turn (no stale image state reused).
    assert ask(engine, loaded.id, "What colour is it?")[-1].data["text"] == text.data["text"]


def test_images_alone_overflowing_the_context_are_a_clear_error(engine, paired, tmp_path):
    big_tower = {**TINY_TOWER, "image_size": 64, "patch_size": 8}  # 64 tokens per image
    folder = tmp_path / "big"
    model = folder_with_model(folder)
    write_real_projector(folder / "mmproj-big.gguf", tower=big_tower)
    loaded = engine.load(LoadRequest(model=str(model), context_length=256))
    image = {"type": "image", "data": png_bytes()}
    with pytest.raises(ContextOverflowError, match=r"Its 4 image\(s\) take 256 tokens"):
        ask(engine, loaded.id, [image] * 4 + [{"type": "text", "text": "Compare."}])
    assert isinstance(ask(engine, loaded.id, [image, {"type": "text", "text": "And this?"}], overflow="stop")[-1], Result)
    engine.unload(loaded.id)


def test_an_explicit_mmproj_for_another_model_names_both_files(engine, paired, tmp_path):
    wrong = write_real_projector(tmp_path / "mmproj-wide.gguf", width=64)
    with pytest.raises(ModelFileError) as err:
        engine.load(LoadRequest(model="default", mmproj=str(wrong)))
    assert str(wrong) in str(err.value) and "SmolLM2-135M-Instruct.Q4_1.gguf" in str(err.value)
    assert "64-wide" in str(err.value) and "576 wide" in str(err.value)
    loaded = engine.load(LoadRequest(model="default", mmproj=str(paired.parent / "mmproj-tiny-f32.gguf"), context_length=512,
                                     chat_template="chatml"))
    assert loaded.vision and loaded.info["vision_handler"] == "MTMDChatHandler"
    result = ask(engine, loaded.id, [{"type": "image", "data": png_bytes()}, {"type": "text", "text": "Hi"}])[-1]
    assert isinstance(result, Result) and result.data["images"] == 1
    engine.unload(loaded.id)


def test_the_bundled_vision_entry_pairs_smollm2_with_the_resource_mmproj(engine, paired, monkeypatch):
    from engines.models import registry

    # The real file comes from tools/train_vision_model.py; any projector that fits SmolLM2 exercises the entry.
    monkeypatch.setattr(registry, "VISION_ASSET", (str(paired.parent / "mmproj-tiny-f32.gguf"),))
    entries, errors = registry.scan_models([], include_hf_cache=False)
    vision = [e for e in entries if e.id == "default-vision"]
    assert [e.id for e in entries] == ["default", "default-vision"] and errors == []
    assert vision[0].vision and vision[0].path == entries[0].path and vision[0].mmproj.endswith("mmproj-tiny-f32.gguf")
    loaded = engine.load(LoadRequest(model="default-vision", context_length=512))
    assert loaded.id == "default-vision" and loaded.info["vision_handler"] == "MTMDChatHandler"
    result = ask(engine, loaded.id, [{"type": "image", "data": png_bytes()}, {"type": "text", "text": "Describe it."}])[-1]
    assert isinstance(result, Result) and result.data["images"] == 1
    engine.unload("default-vision")
