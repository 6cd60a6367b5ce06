"""Exceptions that carry a message meant for the user (the CLIs print it as one line and exit 2)."""


class RubbersheetError(Exception):
    """Bad input, bad usage or a refused operation; the message names the file/field and what is wrong."""


class BadInput(RubbersheetError):
    """A file, reference or value given by the user is wrong."""


class StoreLocked(RubbersheetError):
    """Another writer holds the dataset's lock."""
