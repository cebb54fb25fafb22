"""The early forecast of a run's length, on a fake clock."""

from __future__ import annotations

from resnet_tf.training.callbacks.run_forecast import (
    TIMED_BATCHES,
    WARMUP_BATCHES,
    RunForecast,
    describe_duration,
)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def feed(forecast: RunForecast, clock: FakeClock, batches: int, first: float, then: float):
    """One epoch: the first batch takes `first` seconds (tracing), the others `then`."""
    forecast.on_epoch_begin(0)
    for batch in range(batches):
        clock.now += first if batch == 0 else then
        forecast.on_train_batch_end(batch)
    forecast.on_epoch_end(0)


def test_durations_read_as_people_say_them():
    assert [describe_duration(s) for s in (40, 12 * 60, 7500, 3 * 86400 + 4 * 3600 + 99)] == [
        "40 s",
        "12 min",
        "2 h 5 min",
        "3 d 4 h",
    ]


def test_a_long_cpu_run_is_forecast_early_from_the_timed_batches_and_pointed_to_the_fast_recipes():
    said, clock = [], FakeClock()
    forecast = RunForecast(200, 390, 128, on_gpu=False, say=said.append, clock=clock)
    forecast.on_epoch_begin(0)
    for batch in range(WARMUP_BATCHES + TIMED_BATCHES):
        clock.now += 60.0 if batch == 0 else 5.0  # tracing, then 5 s a batch
        forecast.on_train_batch_end(batch)
    (message,) = said  # said during the first epoch, before its end
    left = 200 * 390 - WARMUP_BATCHES - TIMED_BATCHES
    assert describe_duration(5.0 * left) == "4 d 12 h"
    assert message.startswith("forecast: about 4 d 12 h of training left (32 min an epoch at 26")
    assert "configs/fast.yaml" in message
    for batch in range(WARMUP_BATCHES + TIMED_BATCHES, 390):
        forecast.on_train_batch_end(batch)
    forecast.on_epoch_end(0)
    assert len(said) == 1  # once


def test_a_short_epoch_is_forecast_from_its_whole_time_and_a_gpu_gets_no_pointer():
    said, clock = [], FakeClock()
    forecast = RunForecast(3, 5, 32, on_gpu=True, say=said.append, clock=clock)
    feed(forecast, clock, 5, first=10.0, then=1.0)  # 14 s for the epoch
    feed(forecast, clock, 5, first=1.0, then=1.0)
    (message,) = said
    assert message == (
        "forecast: about 28 s of training left (14 s an epoch at 11 images/s on this GPU; "
        "validation not included)"
    )


def test_batches_reported_a_few_at_a_time_are_timed_too():
    """With train.steps_per_execution 4, Keras reports batches 3, 7, 11, ..."""
    said, clock = [], FakeClock()
    forecast = RunForecast(2, 100, 64, on_gpu=True, say=said.append, clock=clock)
    forecast.on_epoch_begin(0)
    for batch in range(3, 100, 4):
        clock.now += 4 * 0.5  # 0.5 s a batch
        forecast.on_train_batch_end(batch)
    (message,) = said  # from the timed batches, before the epoch's end
    # 184 batches left after the 16 reported when timing ended: 92 s
    assert message.startswith("forecast: about 2 min of training left (50 s an epoch at 128")


def test_a_run_resumed_inside_its_first_epoch_counts_only_the_batches_left():
    """Resumed after 3 of 5 batches of epoch 1 of 2: 2 batches in this first epoch, 7 left."""
    said, clock = [], FakeClock()
    forecast = RunForecast(2, 5, 32, on_gpu=True, say=said.append, clock=clock, batches_done=3)
    feed(forecast, clock, 2, first=2.0, then=2.0)  # 2 s a batch
    (message,) = said
    assert message.startswith("forecast: about 10 s of training left (10 s an epoch at 16 ")
