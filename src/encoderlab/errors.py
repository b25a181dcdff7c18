"""User-facing errors: one clear line, no traceback (the CLI prints ``error: <message>``)."""


class EncoderlabError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class DataError(EncoderlabError):
    """Malformed or unusable data: the message names the file and the place inside it."""


class ModelError(EncoderlabError):
    """A model name, directory or preset that cannot be resolved or loaded."""
