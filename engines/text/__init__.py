"""Text generation: one interface (``TextEngine``) over llama.cpp and transformers backends."""
from engines.core.requests.text import ChatRequest, LoadRequest

__all__ = ["ChatRequest", "LoadRequest"]
