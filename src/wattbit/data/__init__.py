"""Real grid data in, tidy frames out.

Readers for each raw format (the eight TSOs' area supply-demand files, TEPCO demand and solar,
JEPX spot prices, the curtailment summaries), the import that turns a folder of them into the
compact dataset wattbit runs on, and the loaders of that dataset. Japanese sources arrive in
JST; everything leaving this package is UTC.
"""

from wattbit.data.columns import HOURLY_COLUMN_NAMES, HOURLY_COLUMNS, Column
from wattbit.data.dataset import (
    ImportReport,
    default_data_dir,
    import_raw,
    load_dataset,
    load_prices,
    load_prices_wide,
    load_system_price,
    summary,
)
from wattbit.data.eria import read_eria_jukyu
from wattbit.data.jepx import read_jepx_spot
from wattbit.data.jukyu import FORMATS, JukyuFormat, read_jukyu
from wattbit.data.summaries import read_curtailment_summary
from wattbit.data.tepco import read_tepco_daily, read_tepco_yearly

__all__ = [
    "FORMATS",
    "HOURLY_COLUMNS",
    "HOURLY_COLUMN_NAMES",
    "Column",
    "ImportReport",
    "JukyuFormat",
    "default_data_dir",
    "import_raw",
    "load_dataset",
    "load_prices",
    "load_prices_wide",
    "load_system_price",
    "read_curtailment_summary",
    "read_eria_jukyu",
    "read_jepx_spot",
    "read_jukyu",
    "read_tepco_daily",
    "read_tepco_yearly",
    "summary",
]
