"""Text generation: one interface (``TextEngine``) over llama.cpp and transformers backends."""
from engines.text.request import ChatRequest, LoadRequest

__all__ = ["ChatRequest", "LoadRequest"]
