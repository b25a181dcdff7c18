"""Export fine-tuned models to portable formats (ONNX)."""
from .onnx import OnnxExport, export_onnx, resolve_model_dir

__all__ = ["OnnxExport", "export_onnx", "resolve_model_dir"]
