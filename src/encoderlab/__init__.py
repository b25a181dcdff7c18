"""encoderlab: fine-tune, evaluate, inspect and query pretrained transformer encoders."""
__version__ = "0.1.0"
