from dataclasses import replace

from trainer.model import Forecaster


def test_training_on_a_window_and_a_sample_still_forecasts_every_series(
    retail_panel, retail_contract, small_config
):
    config = replace(small_config, train_window_days=60, max_train_rows=150)
    fc = Forecaster.fit(retail_panel, retail_contract, config, intervals=False)
    assert fc.training["train_start"] == "2024-05-02"
    assert fc.training["sampled_series"] < 6 and fc.training["train_rows"] <= 150 + 60
    frame = fc.predict(7, levels=[])
    assert frame["series_id"].nunique() == 6 and frame["forecast"].notna().all()
