"""User-facing errors: one clear line, no traceback (the CLI prints ``error: <message>``)."""

_LINE_BREAKS = str.maketrans({"\n": "\\n", "\r": "\\r", "\x0b": "\\x0b", "\x0c": "\\x0c", "\x1c": "\\x1c",
                              "\x1d": "\\x1d", "\x1e": "\\x1e", "\x85": "\\x85", "\u2028": "\\u2028",
                              "\u2029": "\\u2029"})


class EncoderlabError(Exception):
    """A problem with the user's input or environment, explained in one line.

    The message is always one line: line breaks that user data brings into it (a column name, a
    question id) are shown escaped (``\\n``), so they can neither split the message nor hide in it.
    """

    def __str__(self) -> str:
        return super().__str__().translate(_LINE_BREAKS)


class DataError(EncoderlabError):
    """Malformed or unusable data: the message names the file and the place inside it."""


class ModelError(EncoderlabError):
    """A model name, directory or preset that cannot be resolved or loaded."""
