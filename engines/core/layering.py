"""The ML stack the GUI process never imports (DESIGN.md: it lives in the engine host and training jobs).

The self-test's window probe and the start-up report check ``sys.modules`` against this list.
"""
ML_MODULES = ("torch", "transformers", "diffusers", "peft", "trl", "llama_cpp", "accelerate")
