import datetime as dt
from pathlib import Path

import pandas as pd

from trainer.io.tables import read_table


def test_file_tables_filter_cutoff(tmp_path: Path, retail_panel):
    path = tmp_path / "panel.parquet"
    retail_panel.to_parquet(path)
    df = read_table(str(path), date_column="date", cutoff=dt.date(2024, 6, 1))
    assert pd.to_datetime(df["date"]).max() == pd.Timestamp("2024-06-01")
    csv = tmp_path / "panel.csv"
    retail_panel.to_csv(csv, index=False)
    assert len(read_table(str(csv), date_column="date", cutoff=dt.date(2024, 6, 1))) == len(df)
