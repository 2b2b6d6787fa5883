"""Errors a user can act on. The CLI prints their message on one line and exits non-zero."""


class MnistganError(Exception):
    """Base class: the message says what is wrong and what was expected."""


class ConfigError(MnistganError):
    """An invalid preset, option or combination of options."""


class DataError(MnistganError):
    """A data file is missing, malformed or fails its checksum."""


class CheckpointError(MnistganError):
    """A checkpoint or run folder cannot be read or written."""


class DivergenceError(MnistganError):
    """Training produced a non-finite loss or weight."""
