"""The shared 30-min grid check, alone and inside the two 30-min readers (TSO common format, JEPX).

The reader tests write small files in each reader's real layout (header and cells as the TSOs and
JEPX publish them) with one slot left out or one repeated, and check that the error names the
file, the line, the slot expected there (as the file writes it) and the fix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wattbit.data import read_eria_jukyu, read_jepx_spot
from wattbit.data._text import check_half_hour_grid
from wattbit.errors import DataSourceError

# --- the helper -----------------------------------------------------------------------------


def _starts(*hhmm: str) -> np.ndarray:
    return np.array([f"2024-04-01T{t}" for t in hhmm], dtype="datetime64[s]")


def test_a_regular_grid_passes():
    t = np.arange(np.datetime64("2024-03-31T22:00"), np.datetime64("2024-04-01T02:00"),
                  np.timedelta64(30, "m")).astype("datetime64[s]")
    check_half_hour_grid(Path("x.csv"), t, list(range(3, 3 + len(t))))  # crosses midnight


def test_a_single_row_passes():
    check_half_hour_grid(Path("x.csv"), _starts("09:30"), [7])


def test_a_gap_names_file_line_expected_slot_and_fix():
    with pytest.raises(DataSourceError) as exc:
        check_half_hour_grid(Path("dir/x.csv"), _starts("00:00", "00:30", "02:00", "02:30"), [3, 4, 5, 6])
    e = exc.value
    assert (e.file, e.line) == ("dir/x.csv", 5)
    assert e.found == "2024-04-01 02:00 JST"
    msg = str(e)
    assert msg.startswith("dir/x.csv:5: expected the slot 2024-04-01 01:00 JST on this line")
    assert "2 slots missing (2024-04-01 01:00 JST .. 2024-04-01 01:30 JST)" in msg
    assert "restore the missing rows" in msg


def test_a_duplicate_names_both_lines_and_fix():
    with pytest.raises(DataSourceError) as exc:
        check_half_hour_grid(Path("x.csv"), _starts("00:00", "00:30", "00:30", "01:00"), [3, 4, 5, 6])
    e = exc.value
    assert e.line == 5
    assert "expected the slot 2024-04-01 01:00 JST on this line" in str(e)
    assert "repeats the slot 2024-04-01 00:30 JST of line 4; delete the repeated row" in str(e)


def test_rows_out_of_order_are_refused():
    with pytest.raises(DataSourceError, match="goes back to 2024-04-01 00:00 JST; sort the rows") as exc:
        check_half_hour_grid(Path("x.csv"), _starts("00:00", "00:30", "01:00", "00:00"), [3, 4, 5, 6])
    assert exc.value.line == 6


def test_the_label_shows_slots_as_the_file_writes_them():
    with pytest.raises(DataSourceError, match=r"expected the slot <00:30> .*found '<01:00>'"):
        check_half_hour_grid(Path("x.csv"), _starts("00:00", "01:00"), [3, 4],
                             label=lambda t: f"<{t:%H:%M}>")


# --- TSO common format (eria_jukyu_YYYYMM_NN.csv) -------------------------------------------

ERIA_HEADER = ("DATE,TIME,エリア需要,原子力,火力(LNG),火力(石炭),火力(石油),火力(その他),火力出力制御量,水力,地熱,"
               "バイオマス,バイオマス出力制御量,太陽光発電実績,太陽光出力制御量,風力発電実績,風力出力制御量,揚水,蓄電池,"
               "連系線,その他,合計")


def _eria_rows(end_label: bool) -> list[str]:
    """Four hours (8 slots) from 2024-04-01 22:00 JST, written as Kyushu (quoted, compact date,
    slot end labels up to 24:00) or as the other TSOs (slot starts)."""
    rows = []
    for k in range(8):
        start = pd.Timestamp("2024-04-01 22:00") + pd.Timedelta(minutes=30 * k)
        label = start + pd.Timedelta(minutes=30) if end_label else start
        if end_label and (label.hour, label.minute) == (0, 0):
            date, hh = start, 24
        else:
            date, hh = label, label.hour
        d = date.strftime("%Y%m%d") if end_label else f"{date.year}/{date.month}/{date.day}"
        cells = [d, f"{hh}:{label.minute:02d}", str(9000 + k)] + ["100"] * 19
        rows.append(",".join(f'"{c}"' for c in cells) if end_label else ",".join(cells))
    return rows


def _write_eria(path: Path, rows: list[str]) -> Path:
    path.write_bytes(("\n".join(["単位[MW平均],,,供給力", ERIA_HEADER, *rows]) + "\n").encode("cp932"))
    return path


@pytest.mark.parametrize("area", ["kyushu", "chugoku"])
def test_eria_regular_file_reads(tmp_path, area):
    path = _write_eria(tmp_path / "eria_jukyu_202404_09.csv", _eria_rows(area == "kyushu"))
    frame = read_eria_jukyu(path, area).frame
    assert len(frame) == 4
    assert frame.index[0] == pd.Timestamp("2024-04-01 22:00", tz="Asia/Tokyo")


@pytest.mark.parametrize("area, slot", [
    ("kyushu", "2024-04-01 23:30 JST (labelled 2024/04/01 24:00)"),
    ("chugoku", "2024-04-01 23:30 JST"),
])
def test_eria_gap(tmp_path, area, slot, read_error):
    rows = _eria_rows(area == "kyushu")
    del rows[3]  # the slot starting 23:30 JST; file line 6
    path = _write_eria(tmp_path / "eria_jukyu_202404_09.csv", rows)
    e = read_error(read_eria_jukyu, path, 6, area)
    assert f"expected the slot {slot} on this line (a gap: 1 slot missing ({slot})" in str(e)
    assert "restore the missing rows" in str(e)


@pytest.mark.parametrize("area, slot", [
    ("kyushu", "2024-04-01 23:00 JST (labelled 2024/04/01 23:30)"),
    ("chugoku", "2024-04-01 23:00 JST"),
])
def test_eria_duplicate(tmp_path, area, slot, read_error):
    rows = _eria_rows(area == "kyushu")
    rows.insert(3, rows[2])  # the slot starting 23:00 JST twice: lines 5 and 6
    path = _write_eria(tmp_path / "eria_jukyu_202404_09.csv", rows)
    e = read_error(read_eria_jukyu, path, 6, area)
    assert f"(a duplicate: this row repeats the slot {slot} of line 5; delete the repeated row)" in str(e)


# --- JEPX spot summary ------------------------------------------------------------------------

JEPX_HEADER = ("受渡日,時刻コード,売り入札量(kWh),買い入札量(kWh),約定総量(kWh),システムプライス(円/kWh),"
               "エリアプライス北海道(円/kWh),エリアプライス東北(円/kWh),エリアプライス東京(円/kWh),"
               "エリアプライス中部(円/kWh),エリアプライス北陸(円/kWh),エリアプライス関西(円/kWh),"
               "エリアプライス中国(円/kWh),エリアプライス四国(円/kWh),エリアプライス九州(円/kWh),"
               "売りブロック入札総量(kWh),売りブロック約定総量(kWh),買いブロック入札総量(kWh),買いブロック約定総量(kWh)")


def _jepx_rows() -> list[str]:
    """Six slots across midnight: 2022/04/01 slots 46..48, 2022/04/02 slots 1..3."""
    rows = []
    for day, code in [("2022/04/01", 46), ("2022/04/01", 47), ("2022/04/01", 48),
                      ("2022/04/02", 1), ("2022/04/02", 2), ("2022/04/02", 3)]:
        rows.append(",".join([day, str(code), "17007100", "16995100", "15959150"]
                             + [f"{10 + code / 100:.2f}"] * 10 + ["3454600", "3260650", "1329300", "1036000"]))
    return rows


def _write_jepx(path: Path, rows: list[str]) -> Path:
    path.write_bytes(("\r\n".join([JEPX_HEADER, *rows]) + "\r\n").encode("utf-8"))
    return path


def test_jepx_regular_file_reads(tmp_path):
    prices = read_jepx_spot(_write_jepx(tmp_path / "spot_summary_2022.csv", _jepx_rows()))
    assert len(prices) == 6
    assert prices.index[3] == pd.Timestamp("2022-04-02 00:00", tz="Asia/Tokyo")


def test_jepx_gap(tmp_path, read_error):
    rows = _jepx_rows()
    del rows[3]  # 2022/04/02 slot 1; file line 5 now holds slot 2
    path = _write_jepx(tmp_path / "spot_summary_2022.csv", rows)
    e = read_error(read_jepx_spot, path, 5)
    assert e.found == "受渡日 2022/04/02 時刻コード 2 (00:30 JST)"
    assert ("expected the slot 受渡日 2022/04/02 時刻コード 1 (00:00 JST) on this line (a gap: 1 slot "
            "missing (受渡日 2022/04/02 時刻コード 1 (00:00 JST)); restore the missing rows") in str(e)


def test_jepx_duplicate(tmp_path, read_error):
    rows = _jepx_rows()
    rows.insert(2, rows[1])  # 2022/04/01 slot 47 on lines 3 and 4
    path = _write_jepx(tmp_path / "spot_summary_2022.csv", rows)
    e = read_error(read_jepx_spot, path, 4)
    assert ("expected the slot 受渡日 2022/04/01 時刻コード 48 (23:30 JST) on this line (a duplicate: this "
            "row repeats the slot 受渡日 2022/04/01 時刻コード 47 (23:00 JST) of line 3; delete the "
            "repeated row)") in str(e)
