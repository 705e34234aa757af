from dataclasses import replace

from trainer.model import Forecaster


def test_intervals_are_ordered_and_short_series_reported(fitted):
    frame = fitted.predict(7, levels=(80, 95))
    with_int = frame.dropna(subset=["lower_80"])
    # The 40-day newcomer fits 2 x 7 + 1 days, so every series is calibrated here.
    assert fitted.intervals["enabled"] and fitted.intervals["n_windows"] == 2
    assert len(with_int) == len(frame)
    tol = 1e-9
    assert (with_int["lower_95"] <= with_int["lower_80"] + tol).all()
    assert (with_int["lower_80"] <= with_int["forecast"] + tol).all()
    assert (with_int["forecast"] <= with_int["upper_80"] + tol).all()
    assert (with_int["upper_80"] <= with_int["upper_95"] + tol).all()


def test_every_series_gets_intervals_even_a_short_one(retail_panel, retail_contract, small_config):
    config = replace(small_config, horizon=28)  # the 40-day series is shorter than 2 x 28 days
    fc = Forecaster.fit(retail_panel, retail_contract, config)
    assert fc.intervals["method"] == "scaled_conformal" and fc.intervals["enabled"]
    result = fc.forecast(28)
    short = result.frame[result.frame["series_id"] == "S2|C"]
    assert len(short) == 28 and short["lower_80"].notna().all()
    assert result.series_without_intervals == 0
    # Wider at 95% than at 80%, and the all-zero series gets a (narrow) interval too.
    frame = result.frame
    assert (
        (frame["upper_95"] - frame["lower_95"]) >= (frame["upper_80"] - frame["lower_80"]) - 1e-9
    ).all()
    assert frame.loc[frame["series_id"] == "S1|Z", "upper_95"].notna().all()
