"""Vision chat in the engine: content parts, image decoding with limits, mmproj pairing, handler choice, and a
tiny LLaVA (random weights, built from a config) answering through the transformers backend."""
from __future__ import annotations

import io

import pytest

from engines.core.cancel import CancelToken
from engines.core.content import check_content, check_remote_messages, data_url
from engines.core.errors import ContextOverflowError, ModelFileError, RequestError, UnsupportedModelError
from engines.core.events import Result, Token
from engines.text.images import MAX_SIDE, decode_image, decode_messages
from engines.core.requests.text import ChatRequest, LoadRequest
from tests.vision_support import build_tiny_idefics3, build_tiny_llava, folder_with_model, png_bytes, write_projector

pytestmark = pytest.mark.timeout(600)


# -- content parts -------------------------------------------------------------------------
def test_content_parts_are_checked_field_by_field():
    good = [{"type": "image_url", "image_url": {"url": data_url(png_bytes())}}, {"type": "text", "text": "What is it?"}]
    check_content("messages[0].content", good, local=False)
    cases = [
        ([{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}], "content[0].image_url.url' is an http(s) URL"),
        ([{"type": "image_url", "image_url": {"url": "data:text/plain;base64,aGk="}}], "is not a base64 image data URL"),
        ([{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}], "does not decode"),
        ([{"type": "image_url", "image_url": {"url": "data:image/tiff;base64,aGk="}}], "is a image/tiff data URL"),
        ([{"type": "audio", "data": "x"}], "content[0]' has type 'audio'"),
        ([{"type": "text", "text": 3}], "content[0].text' must be a string"),
        ([], "non-empty list"),
    ]
    for content, words in cases:
        with pytest.raises(RequestError) as err:
            check_content("messages[0].content", content, local=False)
        assert words in str(err.value) and "messages[0].content" in str(err.value)


def test_the_host_refuses_file_paths_and_bytes_but_the_engine_takes_them(tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(png_bytes())
    messages = [{"role": "user", "content": [{"type": "image", "path": str(image)}, {"type": "text", "text": "hi"}]}]
    ChatRequest(messages=messages).validate()  # in-process: fine
    with pytest.raises(RequestError, match=r"messages\[0\]\.content\[0\]' is an 'image' part with a file path"):
        check_remote_messages(messages)
    with pytest.raises(RequestError, match="assistant message with images"):
        ChatRequest(messages=[{"role": "assistant", "content": [{"type": "image", "path": str(image)}]}]).validate()


# -- decoding with limits ------------------------------------------------------------------
def test_not_an_image_and_a_truncated_png_name_their_part():
    with pytest.raises(RequestError, match=r"Field 'messages\[0\]\.content\[1\]' is not an image Hearth can read"):
        decode_messages([{"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "image", "data": b"hello, not a picture"}]}])
    from PIL import Image

    buf = io.BytesIO()
    Image.effect_noise((256, 256), 64).convert("RGB").save(buf, format="PNG")
    truncated = buf.getvalue()[: len(buf.getvalue()) // 2]
    with pytest.raises(RequestError, match=r"'messages\[0\]\.content\[0\]' is a damaged or truncated PNG image"):
        decode_messages([{"role": "user", "content": [{"type": "image", "data": truncated}]}])


def test_a_20000_pixel_image_is_checked_against_free_memory_then_downscaled():
    big = png_bytes((20000, 20000), 128, mode="L")
    with pytest.raises(RequestError, match=r"is a 20000x20000 image; decoding it needs ~0\.4 GB but only 0\.5 GB"):
        decode_image(big, "messages[0].content[0]", available_bytes=500_000_000)
    image = decode_image(big, "messages[0].content[0]", available_bytes=16_000_000_000)
    assert image.size == (MAX_SIDE, MAX_SIDE) and image.original_size == (20000, 20000)
    assert image.pixels.mode == "RGB" and image.mime == "image/png" and image.data[:4] == b"\x89PNG"


def test_transparent_and_small_images_become_rgb_and_plain_pngs_pass_through():
    rgba = png_bytes((8, 8), (255, 0, 0, 0), mode="RGBA")
    image = decode_image(rgba, "x")
    assert image.pixels.getpixel((0, 0)) == (255, 255, 255)  # transparent shows the white behind it
    plain = png_bytes((8, 8))
    assert decode_image(plain, "x").data == plain


# -- mmproj pairing ------------------------------------------------------------------------
def test_an_mmproj_beside_a_model_pairs_and_shows_vision(tmp_path, monkeypatch):
    from engines.models.registry import inspect_model, scan_models

    model = folder_with_model(tmp_path / "models" / "smol", ("mmproj-smol-f16.gguf", 576))
    entry = inspect_model(model)
    assert entry.vision and entry.mmproj.endswith("mmproj-smol-f16.gguf")
    mmproj_size = (tmp_path / "models" / "smol" / "mmproj-smol-f16.gguf").stat().st_size
    estimate = entry.estimate(4096)
    assert estimate.vision_bytes == mmproj_size and estimate.weights_bytes == entry.size_bytes + mmproj_size
    assert "incl. vision" in estimate.describe()
    entries, errors = scan_models([tmp_path / "models"], include_hf_cache=False)
    listed = [e for e in entries if e.source == "folder"]
    assert [e.path for e in listed] == [str(model)] and listed[0].vision  # the mmproj is no chat model of its own
    assert errors == []
    assert inspect_model(tmp_path / "models" / "smol").vision  # the folder picks the model, not the projector


def test_an_mmproj_for_another_model_is_an_error_naming_both_files(tmp_path):
    from engines.models.registry import inspect_model, scan_models
    from engines.text.engine import TextEngine

    model = folder_with_model(tmp_path / "m", ("mmproj-other.gguf", 4096))
    entry = inspect_model(model)
    assert not entry.vision and "4096-wide" in entry.vision_error and "576 wide" in entry.vision_error
    entries, errors = scan_models([tmp_path / "m"], include_hf_cache=False)
    assert any(str(model) in e.message and "mmproj-other.gguf" in e.message for e in errors)
    assert any(e.path == str(model) and not e.vision for e in entries)  # still listed for text chat
    with pytest.raises(ModelFileError) as err:
        TextEngine().load(LoadRequest(model=str(model), mmproj=str(tmp_path / "m" / "mmproj-other.gguf")))
    assert "mmproj-other.gguf" in str(err.value) and str(model) in str(err.value)


def test_a_broken_or_wrong_mmproj_is_validated_like_any_gguf(tmp_path):
    from engines.models.mmproj import read_projector

    good = write_projector(tmp_path / "mmproj-good.gguf", 576)
    truncated = tmp_path / "mmproj-cut.gguf"
    truncated.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(ModelFileError, match="mmproj-cut.gguf is truncated"):
        read_projector(truncated)
    from engines.models import bundled_default_path

    with pytest.raises(UnsupportedModelError, match="is a 'llama' GGUF, not a vision projector"):
        read_projector(bundled_default_path())
    assert read_projector(good).output_width == 576


def test_the_bundled_vision_entry_is_not_offered_when_its_file_is_absent(monkeypatch):
    from engines.models import registry

    monkeypatch.setattr(registry, "VISION_ASSET", ("assets", "vision-default", "no-such-mmproj.gguf"))
    entries, _ = registry.scan_models([], include_hf_cache=False)
    assert [e.id for e in entries] == ["default"]
    with pytest.raises(ModelFileError, match="no-such-mmproj.gguf is missing"):
        registry.inspect_model("default-vision")


def test_handler_is_chosen_from_the_metadata():
    from engines.text.llama_vision import choose_handler

    template = {"tokenizer.chat_template": "{{ x }}"}
    assert choose_handler({**template, "general.architecture": "llama", "general.name": "SmolLM2"}, {"clip.projector_type": "mlp"}) == "MTMDChatHandler"
    assert choose_handler({"general.architecture": "llama", "general.name": "llava v1.5 7b"}, {}) == "Llava15ChatHandler"
    assert choose_handler({"general.architecture": "llama"}, {"general.name": "llava-v1.6-mistral"}) == "Llava16ChatHandler"
    assert choose_handler({**template, "general.architecture": "qwen2vl"}, {"clip.projector_type": "qwen2.5vl_merger"}) == "Qwen25VLChatHandler"
    assert choose_handler({**template, "general.architecture": "qwen2"}, {}, ("MiniCPM-V-2_6-Q4.gguf",)) == "MiniCPMv26ChatHandler"
    assert choose_handler({"general.architecture": "phi2"}, {}, ("moondream2-text-model-f16.gguf",)) == "MoondreamChatHandler"
    assert choose_handler({"general.architecture": "qwen2"}, {}, ("nanollava-text-model-f16.gguf",)) == "NanoLlavaChatHandler"
    assert choose_handler({**template, "general.architecture": "gemma4"}, {}) == "Gemma4ChatHandler"
    assert choose_handler({"general.architecture": "llama"}, {}) == "Llava15ChatHandler"  # no template of its own


# -- transformers: a tiny LLaVA --------------------------------------------------------------
@pytest.fixture(scope="module")
def llava(tmp_path_factory):
    return build_tiny_llava(tmp_path_factory.mktemp("vlm") / "tiny-llava")


def _ask(engine, model_id, content, **options):
    request = ChatRequest(messages=[{"role": "user", "content": content}], model=model_id, max_tokens=4,
                          temperature=0.0, seed=0, **options)
    events = list(engine.chat(request, CancelToken()))
    return events, events[-1]


def test_a_transformers_llava_folder_sees_images_and_streams(llava):
    from engines.models.registry import inspect_model
    from engines.text.engine import TextEngine

    assert inspect_model(llava).vision
    engine = TextEngine()
    try:
        loaded = engine.load(LoadRequest(model=str(llava)))
        assert loaded.vision and loaded.backend_name == "transformers"
        image = {"type": "image_url", "image_url": {"url": data_url(png_bytes((40, 30)))}}
        events, result = _ask(engine, loaded.id, [image, {"type": "text", "text": "What colour?"}])
        _, text_only = _ask(engine, loaded.id, "What colour?")
        assert isinstance(result, Result) and result.finish_reason in ("stop", "length")
        assert [e for e in events if isinstance(e, Token)]
        # 16 image tokens (16x16 pixels in 4x4 patches) count toward the context like text.
        assert result.data["prompt_tokens"] - text_only.data["prompt_tokens"] == 16 + 1  # + the newline after it
        _, two = _ask(engine, loaded.id, [image, image, {"type": "text", "text": "What colour?"}])
        assert two.data["prompt_tokens"] - result.data["prompt_tokens"] == 17
    finally:
        engine.close()


def test_a_smolvlm_style_idefics3_folder_sees_images_too(tmp_path):
    from engines.text.engine import TextEngine

    folder = build_tiny_idefics3(tmp_path / "tiny-idefics3")
    engine = TextEngine()
    try:
        loaded = engine.load(LoadRequest(model=str(folder)))
        assert loaded.vision
        _, result = _ask(engine, loaded.id, [{"type": "image", "data": png_bytes((50, 20))}, {"type": "text", "text": "Hi"}])
        _, text_only = _ask(engine, loaded.id, "Hi")
        # <fake_token_around_image><global-img>, 4 <image> tokens, <fake_token_around_image>, and the newline.
        assert result.data["prompt_tokens"] - text_only.data["prompt_tokens"] == 8
    finally:
        engine.close()


def test_too_many_images_for_the_context(llava):
    from engines.text.engine import TextEngine

    engine = TextEngine()
    try:
        loaded = engine.load(LoadRequest(model=str(llava), context_length=128))
        image = {"type": "image", "data": png_bytes()}
        with pytest.raises(ContextOverflowError, match=r"Its 8 image\(s\) are part of them"):
            _ask(engine, loaded.id, [image] * 8 + [{"type": "text", "text": "Compare them."}])
        # 'truncate' drops the oldest turns (with their images) and keeps the last one.
        old = [{"role": "user", "content": [image] * 4 + [{"type": "text", "text": "Old."}]},
               {"role": "assistant", "content": "Fine."}]
        request = ChatRequest(messages=old + [{"role": "user", "content": [image, {"type": "text", "text": "New?"}]}],
                              model=loaded.id, max_tokens=4, temperature=0.0, overflow="truncate")
        result = list(engine.chat(request))[-1]
        assert result.data["dropped_messages"] == 2
        # The engine is still usable after each refusal.
        assert isinstance(_ask(engine, loaded.id, "Hello")[1], Result)
    finally:
        engine.close()


def test_a_text_only_model_given_an_image_says_which_models_can_see(llava, hearth_home):
    import shutil

    from engines.text.engine import TextEngine

    shutil.copytree(llava, hearth_home / "models" / "tiny-llava")
    engine = TextEngine()
    try:
        loaded = engine.load(LoadRequest(model="default"))
        with pytest.raises(UnsupportedModelError) as err:
            _ask(engine, loaded.id, [{"type": "image", "data": png_bytes()}, {"type": "text", "text": "What is it?"}])
        assert "cannot see images" in str(err.value) and "tiny-llava" in str(err.value)
        assert isinstance(_ask(engine, loaded.id, [{"type": "text", "text": "Hello"}])[1], Result)  # text parts still work
    finally:
        engine.close()


def test_selftest_reports_a_missing_bundled_vision_model(monkeypatch):
    from engines import selftest
    from engines.models import registry

    monkeypatch.setattr(registry, "VISION_ASSET", ("assets", "vision-default", "no-such-mmproj.gguf"))
    with pytest.raises(selftest.CheckFailed, match="no-such-mmproj.gguf is missing from this build"):
        selftest.check_vision(host=None)


def test_the_models_command_says_which_models_see_images(tmp_path):
    import subprocess
    import sys

    from tests.helpers import ROOT

    folder_with_model(tmp_path / "models" / "smol", ("mmproj-smol.gguf", 576))
    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "models", "--folder", str(tmp_path / "models")], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if "SmolLM2-135M-Instruct (Q4_1)" in line]  # bundled and in the folder
    assert len(rows) == 2 and sorted(row.split()[-1] for row in rows) == ["text", "text+images"]
    bundled_vision = [line for line in out.stdout.splitlines() if "Hearth shapes vision" in line]
    assert len(bundled_vision) == 1 and bundled_vision[0].split()[-1] == "text+images"
