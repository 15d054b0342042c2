"""The shared regular-grid check at other steps, alone and inside the hourly and 5-minute readers
(the TSOs' hourly エリア需給実績 files, TEPCO's daily and yearly でんき予報 files).

The reader tests drop one row from a committed excerpt of the real file and check that the error
names the file, the line, the slot expected there and the fix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wattbit.data import FORMATS, read_jukyu, read_tepco_daily, read_tepco_yearly
from wattbit.data._text import check_regular_grid
from wattbit.errors import DataSourceError

FIX = "restore the missing rows, e.g. download the complete file again"

# --- the helper -----------------------------------------------------------------------------


def _starts(*hhmm: str) -> np.ndarray:
    return np.array([f"2022-04-01T{t}" for t in hhmm], dtype="datetime64[s]")


def test_hourly_and_five_minute_grids_pass():
    check_regular_grid(Path("x.csv"), _starts("22:00", "23:00"), [3, 4], 3600)
    check_regular_grid(Path("x.csv"), _starts("00:00", "00:05", "00:10"), [3, 4, 5], 300,
                       first=np.datetime64("2022-04-01T00:00"))


def test_a_half_hour_row_in_an_hourly_file_is_refused():
    with pytest.raises(DataSourceError, match=r"x.csv:4: expected the hour 2022-04-01 01:00 JST on this line "
                                              r"\(out of order: this row goes back to 2022-04-01 00:30 JST"):
        check_regular_grid(Path("x.csv"), _starts("00:00", "00:30"), [3, 4], 3600, noun="hour")


def test_a_gap_at_a_fixed_first_slot_names_the_first_line():
    with pytest.raises(DataSourceError) as exc:
        check_regular_grid(Path("x.csv"), _starts("00:10", "00:15"), [7, 8], 300,
                           first=np.datetime64("2022-04-01T00:00"), noun="5-min value")
    e = exc.value
    assert e.line == 7
    assert ("expected the 5-min value 2022-04-01 00:00 JST on this line (a gap: 2 5-min values missing "
            f"(2022-04-01 00:00 JST .. 2022-04-01 00:05 JST); {FIX})") in str(e)


def test_rows_before_a_fixed_first_slot_are_refused():
    with pytest.raises(DataSourceError, match="before the first hour the file covers; remove the rows before "
                                              "2022-04-01 00:00 JST") as exc:
        check_regular_grid(Path("x.csv"), np.array(["2022-03-31T23:00"], "datetime64[s]"), [7], 3600,
                           first=np.datetime64("2022-04-01T00:00"), noun="hour")
    assert exc.value.line == 7


# --- the readers ------------------------------------------------------------------------------


def _drop_line(src: Path, dst: Path, encoding: str, index: int) -> Path:
    lines = src.read_bytes().decode(encoding).splitlines(keepends=True)
    del lines[index]
    dst.write_bytes("".join(lines).encode(encoding))
    return dst


def test_jukyu_gap_names_file_line_expected_hour_and_fix(fixtures_raw, tmp_path, read_error):
    fmt = FORMATS["chubu"]  # 5 lines before the data; the first data row is 2022/4/1 0:00
    src = fixtures_raw / "area_jukyu_ryomakom/chubu/2022_areabalance_current_term.csv"
    path = _drop_line(src, tmp_path / src.name, fmt.encoding, 5 + 3)  # the 03:00 row
    e = read_error(read_jukyu, path, 9, fmt)
    assert e.found == "2022-04-01 04:00 JST"
    assert str(e).startswith(f"{path}:9: expected the hour 2022-04-01 03:00 JST on this line "
                             f"(a gap: 1 hour missing (2022-04-01 03:00 JST); {FIX})")


TEPCO_DAILY = "tepco_juyo_dlxiii/2022/20220401_power_usage.csv"


def test_tepco_daily_hourly_block_must_start_at_midnight(fixtures_raw, tmp_path, read_error):
    src = fixtures_raw / TEPCO_DAILY
    path = _drop_line(src, tmp_path / "20220401_power_usage.csv", "utf-8", 10)  # 2022/4/1,0:00 (line 11)
    e = read_error(read_tepco_daily, path, 11)
    assert f"expected the hour 2022-04-01 00:00 JST on this line (a gap: 1 hour missing (2022-04-01 00:00 JST); {FIX})" \
        in str(e)


def test_tepco_daily_five_minute_gap(fixtures_raw, tmp_path, read_error):
    src = fixtures_raw / TEPCO_DAILY
    lines = src.read_text(encoding="utf-8").splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("DATE,TIME,当日実績(５分"))
    assert lines[head + 1 + 25].startswith("2022/4/1,2:05,")  # the 26th 5-min value
    path = _drop_line(src, tmp_path / "20220401_power_usage.csv", "utf-8", head + 1 + 25)
    e = read_error(read_tepco_daily, path, head + 1 + 25 + 1)
    assert e.found == "2022-04-01 02:10 JST"
    assert ("expected the 5-min value 2022-04-01 02:05 JST on this line (a gap: 1 5-min value missing "
            f"(2022-04-01 02:05 JST); {FIX})") in str(e)


def test_tepco_yearly_gap(fixtures_raw, tmp_path, read_error):
    src = fixtures_raw / "tepco_juyo_dlxiii/juyo-2021.csv"
    path = _drop_line(src, tmp_path / "juyo-2021.csv", "utf-8", 2 + 5)  # 2021/1/1,5:00 (line 8)
    e = read_error(read_tepco_yearly, path, 8)
    assert f"expected the hour 2021-01-01 05:00 JST on this line (a gap: 1 hour missing (2021-01-01 05:00 JST); {FIX})" \
        in str(e)
