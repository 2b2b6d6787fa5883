"""Errors a user can act on. The CLI prints their message on one line and exits non-zero."""


class MnistganError(Exception):
    """Base class: the message says what is wrong and what was expected."""


class ConfigError(MnistganError):
    """An invalid preset, option or combination of options."""


class DataError(MnistganError):
    """A data file is missing, malformed or fails its checksum."""


class RunError(MnistganError):
    """A run folder cannot be used as it is: missing, in use by another process, a damaged
    log, a link or other non-regular file where the run keeps a file."""


class CheckpointError(RunError):
    """A checkpoint cannot be read or written."""


class DivergenceError(MnistganError):
    """Training produced a non-finite loss or weight."""
