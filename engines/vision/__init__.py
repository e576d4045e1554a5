"""Vision encoders for chat: Hearth's CLIP-style tower + LLaVA projector and its llama.cpp mmproj writer."""
