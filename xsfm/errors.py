"""Error types raised by xsfm.

Every error names the variable, dimension, unit or file at fault and says how to fix it. When one call
finds several problems (three inputs that cannot be mapped, two variables with wrong units), they are
reported together in one :class:`InputErrors`, which is both an :class:`ExceptionGroup` (one
sub-exception per problem) and a :class:`ValueError` (so ``except ValueError`` keeps working).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AmbiguousVariableError",
    "GridError",
    "InputError",
    "InputErrors",
    "InvalidValuesError",
    "MissingVariableError",
    "ModelFormatError",
    "UnitsError",
    "UnknownModelError",
    "WeightsMissingError",
    "raise_all",
]


class InputError(ValueError):
    """A problem with user input: a variable, dimension, coordinate or unit."""


class InputErrors(ExceptionGroup, ValueError):  # type: ignore[misc]
    """Several input problems found by one call, reported at once.

    The message lists every problem (one line each), so ``str(err)``, tracebacks and
    ``pytest.raises(match=...)`` all show them; ``err.exceptions`` holds them one by one.
    """

    def __new__(cls, message: str, exceptions: Sequence[Exception]) -> InputErrors:  # noqa: D102
        header = message.split("\n", 1)[0]
        full = "\n".join([header, *(f"  - {exc}" for exc in exceptions)])
        return super().__new__(cls, full, exceptions)

    def __init__(self, message: str, exceptions: Sequence[Exception]) -> None:
        super().__init__(self.message, exceptions)

    def derive(self, excs: Sequence[Exception]) -> InputErrors:  # noqa: D102
        return InputErrors(self.message, excs)

    def __str__(self) -> str:
        return self.message


def raise_all(problems: Sequence[Exception], context: str) -> None:
    """Raise the collected problems: one as itself, several as one :class:`InputErrors`.

    Parameters
    ----------
    problems
        Exceptions collected while checking input (possibly empty: then nothing happens).
    context
        What was being checked, e.g. ``"inputs of model 'kolmogorov-sfm'"``.

    Examples
    --------
    >>> raise_all([], "inputs")
    >>> try:
    ...     raise_all([InputError("a"), InputError("b")], "inputs")
    ... except ValueError as err:
    ...     print(err)
    2 problems with inputs:
      - a
      - b
    """
    if not problems:
        return
    if len(problems) == 1:
        raise problems[0]
    raise InputErrors(f"{len(problems)} problems with {context}:", list(problems))


class UnknownModelError(KeyError):
    """A model name that is neither shipped, registered, on ``XSFM_MODEL_PATH`` nor a path."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


class ModelFormatError(ValueError):
    """A model file that is not a valid xsfm safetensors model (or fails its sha256 check)."""


class WeightsMissingError(FileNotFoundError):
    """A registry entry whose card is known but whose weights are not available here."""


class MissingVariableError(InputError):
    """A model input that matches no variable (by override, standard_name, name or alias)."""


class AmbiguousVariableError(InputError):
    """A model input that matches several variables of the dataset equally well."""


class UnitsError(InputError):
    """Missing, unparseable or incompatible ``units`` of a variable."""


class GridError(InputError):
    """A spatial grid that cannot be found, is malformed, or does not match the card's grid."""


class InvalidValuesError(InputError):
    """Values the model cannot take: NaN or inf, a non-numeric dtype, or an empty dimension."""
