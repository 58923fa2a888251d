"""The one exception type that rule scripts turn into a clear, traceback-free message."""


class LinbenchError(Exception):
    """A user-facing error: bad input data, a bad archive or a bad setting.

    The message names the file or config key at fault and says what to do.
    """
