"""Exception types.  Every error a user can cause is one of these, with a message
that says what was wrong and what to do about it."""


class MlpCodegenError(Exception):
    """Base class of every error mlpcodegen raises on purpose."""


class ValidationError(MlpCodegenError, ValueError):
    """The network description is inconsistent (shapes, non-finite weights, ...)."""


class UnsupportedError(MlpCodegenError):
    """The model uses a layer, activation or topology mlpcodegen cannot translate."""


class ModelFormatError(MlpCodegenError):
    """The model file is missing, truncated, corrupt or not a Keras model."""


class CompileError(MlpCodegenError):
    """The C compiler rejected generated code (a bug: please report it)."""
