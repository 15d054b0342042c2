from pathlib import Path

import pytest

from wattbit.errors import DataSourceError

FIXTURES = Path(__file__).parent / "fixtures" / "raw"
SHARED_RAW = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "raw"


@pytest.fixture
def fixtures_raw() -> Path:
    """Committed byte-for-byte excerpts of every raw format."""
    return FIXTURES


@pytest.fixture(scope="session")
def shared_raw() -> Path:
    """../shared/data/raw (present on dev machines and in CI); skips the test when absent."""
    if not SHARED_RAW.is_dir():
        pytest.skip(f"{SHARED_RAW} not present")
    return SHARED_RAW


@pytest.fixture
def read_error():
    """``read_error(read, path, line, *args)``: ``read(path, *args)`` must raise a DataSourceError
    naming ``path`` and ``line``; returns it for the message checks."""
    def check(read, path, line, *args) -> DataSourceError:
        with pytest.raises(DataSourceError) as exc:
            read(path, *args)
        assert (exc.value.file, exc.value.line) == (str(path), line)
        return exc.value
    return check
