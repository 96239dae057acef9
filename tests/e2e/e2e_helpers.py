"""Small assertions shared by the e2e tests."""

import contextlib
import time
import uuid

import pytest
from mlflow.exceptions import MlflowException


@contextlib.contextmanager
def raises_mlflow(error_code):
    """Expect an MlflowException whose `error_code` is `error_code` (e.g. INVALID_PARAMETER_VALUE)."""
    with pytest.raises(MlflowException) as info:
        yield info
    assert info.value.error_code == error_code, (
        f"expected {error_code}, got {info.value.error_code}: {info.value.message}"
    )


def now_ms() -> int:
    return int(time.time() * 1000)


def run_names(runs):
    return [run.info.run_name for run in runs]


def unique_name(prefix: str) -> str:
    """A name no other test (or earlier session on the same server) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
