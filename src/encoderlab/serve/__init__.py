"""Serve QA and classification models over HTTP: FastAPI app, dynamic batcher, torch / ONNX Runtime backends."""
from .app import ServeSettings, create_app
from .backends import ModelBackend, OnnxBackend, TorchBackend, load_backend, resolve_served_models

__all__ = ["ServeSettings", "create_app", "ModelBackend", "OnnxBackend", "TorchBackend", "load_backend",
           "resolve_served_models"]
