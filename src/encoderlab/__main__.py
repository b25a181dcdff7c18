"""`python -m encoderlab` runs the command line (the package itself never imports the CLI)."""
import importlib

if __name__ == "__main__":
    importlib.import_module("encoderlab.cli").entry()
