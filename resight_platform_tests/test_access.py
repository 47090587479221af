"""``load`` reads back exactly what the IO manager wrote (local lake and the moto S3 endpoint);
``load_model`` loads the aliased registered model; the guide's examples run."""

import contextlib
import inspect
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from resight_platform import list_tables, load, load_model
from resight_platform.defs.partitions import SOURCE_PARTITIONS, daily_partitions, medallion_partitions
from resight_platform.io.lake import LakeIOManager, PartitionStream, write_partition
from resight_platform.io.storage import open_store
from resight_platform.ml import CHAMPION_ALIAS, MODEL_NAME
from resight_platform.ml.features import FEATURES
from resight_platform.settings import Settings

START = "2026-01-01"
MEDALLION = medallion_partitions(START)
DAILY = daily_partitions(START)
MONTHLY = dg.MonthlyPartitionsDefinition(start_date=START)
SOURCES = ["pawmart", "chewy", "petco"]  # dynamic partition order
GUIDE = Path(__file__).resolve().parents[1] / "docs" / "data-science.md"

# What the runs below write: (date, source) → rows of silver/sales. pawmart × chewy for three days
# in one range run (pawmart's last day empty), then petco for one day in a run of its own.
SALES_ROWS = {
    ("2026-01-01", "chewy"): 2,
    ("2026-01-01", "pawmart"): 3,
    ("2026-01-02", "chewy"): 1,
    ("2026-01-02", "pawmart"): 2,
    ("2026-01-02", "petco"): 4,
    ("2026-01-03", "chewy"): 2,
    ("2026-01-03", "pawmart"): 0,
}
DAYS = ["2026-01-01", "2026-01-02", "2026-01-03"]


# --- what the assets write (the real partitions, the real keys, silver-like columns) ------------


def sales_frame(day: str, source: str) -> pl.DataFrame:
    rows, d = SALES_ROWS[(day, source)], date.fromisoformat(day)
    return pl.DataFrame(
        {
            "order_id": [f"{source}-{day}-{i}" for i in range(rows)],
            "line_no": [1] * rows,
            "ordered_at": [datetime(d.year, d.month, d.day, 9 + i, 30, tzinfo=UTC) for i in range(rows)],
            "provider": [source] * rows,
            "store_id": [None if i % 2 else f"{source}-s1" for i in range(rows)],
            "sku": [f"sku-{i % 2}" for i in range(rows)],
            "quantity": [i + 1 for i in range(rows)],
            "net_amount": [12.99 * (i + 1) for i in range(rows)],
            "business_date": [d] * rows,
        },
        schema_overrides={"quantity": pl.Int32, "line_no": pl.Int32},
    )


def daily_frame(day: str) -> pl.DataFrame:
    d = date.fromisoformat(day)
    return pl.DataFrame(
        {
            "sale_date": [d, d],
            "category": ["food", "toys"],
            "species": ["dog", "cat"],
            "region": ["West", "South"],
            "channel": ["store", "online"],
            "units": [10 + d.day, d.day],
            "revenue": [100.0 * d.day, 7.5],
            "orders": [4, 1],
        }
    )


def monthly_frame(month: str) -> pl.DataFrame:
    return pl.DataFrame({"month": [date.fromisoformat(month)], "orders": [int(month[5:7])]})


def features_frame() -> pl.DataFrame:
    """``gold/ml_demand_features``-like rows: two weeks × three series, every model feature."""
    rng = np.random.default_rng(3)
    weeks = [date(2026, 1, 5)] * 3 + [date(2026, 1, 12)] * 3
    columns: dict[str, Any] = {
        "week": weeks,
        "category": ["food", "toys", "litter"] * 2,
        "species": ["dog", "cat", "cat"] * 2,
        "region": ["West", "South", "Midwest"] * 2,
        "units": rng.uniform(50, 150, 6).round(0),
        "scale": [100.0, 20.0, 60.0] * 2,
    }
    columns |= {name: rng.uniform(0, 2, 6) for name in FEATURES}
    columns["last_year"] = [None] * 6  # no history a year back: the model sees NaN
    return pl.DataFrame(columns, schema_overrides={"last_year": pl.Float64})


DIM_PRODUCT = pl.DataFrame(
    {
        "product_key": [1, 2, 3],
        "provider": ["pawmart", "pawmart", "chewy"],
        "sku": ["sku-0", "sku-1", "sku-0"],
        "category": ["food", "toys", None],
    }
)


@dg.asset(key=["silver", "sales"], partitions_def=MEDALLION)
def silver_sales(context: dg.AssetExecutionContext) -> PartitionStream:
    """Streamed chunk by chunk as the real silver assets do."""

    def chunks() -> Iterator[tuple[str, pl.DataFrame]]:
        for key in context.partition_keys:
            assert isinstance(key, dg.MultiPartitionKey)
            frame = sales_frame(key.keys_by_dimension["date"], key.keys_by_dimension["source"])
            yield str(key), frame.head(1)
            yield str(key), frame.slice(1)

    return PartitionStream(chunks())


@dg.asset(key=["marts", "daily_sales"], partitions_def=DAILY)
def daily_sales(context: dg.AssetExecutionContext) -> dict[str, pl.DataFrame]:
    return {key: daily_frame(key) for key in context.partition_keys}


@dg.asset(key=["marts", "orders_monthly"], partitions_def=MONTHLY)
def orders_monthly(context: dg.AssetExecutionContext) -> pl.DataFrame:
    return monthly_frame(context.partition_key)


@dg.asset(key=["gold", "dim_product"])
def dim_product() -> pl.DataFrame:
    return DIM_PRODUCT


@dg.asset(key=["gold", "ml_demand_features"])
def ml_demand_features() -> pl.DataFrame:
    return features_frame()


def _range(start: str, end: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}


def materialise_lake(lake: LakeIOManager, *, monthly: bool = True, features: bool = False) -> None:
    """Every table above written by real runs through the lake IO manager."""
    instance = dg.DagsterInstance.ephemeral()
    assert SOURCE_PARTITIONS.name is not None
    instance.add_dynamic_partitions(SOURCE_PARTITIONS.name, SOURCES)
    resources = {"io_manager": lake}
    runs: list[tuple[list[dg.AssetsDefinition], dict[str, Any]]] = [
        ([silver_sales], {"tags": _range("2026-01-01|pawmart", "2026-01-03|chewy")}),
        ([silver_sales], {"partition_key": "2026-01-02|petco"}),
        ([daily_sales], {"tags": _range("2026-01-01", "2026-01-03")}),
        ([dim_product], {}),
    ]
    if monthly:
        runs += [([orders_monthly], {"partition_key": month}) for month in ("2026-01-01", "2026-02-01")]
    if features:
        runs.append(([ml_demand_features], {}))
    for assets, options in runs:
        assert dg.materialize(assets, instance=instance, resources=resources, **options).success


def expected_sales(partitions: list[tuple[str, str]]) -> pl.DataFrame:
    return pl.concat([sales_frame(day, source) for day, source in partitions])


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(params=["local", "s3"])
def lake_env(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LakeIOManager:
    """A lake named by the environment, as a data scientist's shell would (``Settings.from_env``)."""
    monkeypatch.setenv("RESIGHT_HOME", str(tmp_path / "home"))
    if request.param == "local":
        url, endpoint = str(tmp_path / "lake"), None
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    else:
        url, endpoint = request.getfixturevalue("s3_bucket_url"), request.getfixturevalue("s3_endpoint")
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("RESIGHT_LAKE_URL", url)
    return LakeIOManager(lake_url=url, endpoint_url=endpoint)


@pytest.fixture
def local_lake(tmp_path: Path) -> Settings:
    """A small local lake written without Dagster runs, for the error cases."""
    settings = Settings.from_env({"RESIGHT_HOME": str(tmp_path / "home"), "RESIGHT_LAKE_URL": str(tmp_path / "lake")})
    store = open_store(settings.lake_url)
    write_partition(store, ["marts", "daily_sales"], {"date": "2026-01-01"}, daily_frame("2026-01-01"))
    write_partition(store, ["gold", "dim_product"], None, DIM_PRODUCT)
    write_partition(
        store, ["silver", "sales"], {"date": "2026-01-01", "source": "chewy"}, sales_frame(DAYS[0], "chewy")
    )
    store.write_bytes("dead_letter/2026-01-01/abc/file.csv", b"a,b\n")
    return settings


# --- load: what was written, through every filter -----------------------------------------------


def test_load_returns_what_the_io_manager_wrote(lake_env: LakeIOManager) -> None:
    materialise_lake(lake_env)
    everything = sorted(SALES_ROWS)

    # date × source, every partition, and the same table named three ways
    assert_frame_equal(load("silver/sales").collect(), expected_sales(everything))
    assert_frame_equal(load(["silver", "sales"]).collect(), expected_sales(everything))
    assert_frame_equal(load(dg.AssetKey(["silver", "sales"])).collect(), expected_sales(everything))

    # a date range and a source: named partitions, no listing
    read = load("silver/sales", dates=("2026-01-02", "2026-01-03"), sources=["pawmart"])
    assert isinstance(read, pl.LazyFrame)
    assert_frame_equal(read.collect(), expected_sales([("2026-01-02", "pawmart"), ("2026-01-03", "pawmart")]))
    # one date, every source the lake holds for it (petco only delivered that day)
    assert_frame_equal(
        load("silver/sales", dates=date(2026, 1, 2)).collect(),
        expected_sales([("2026-01-02", "chewy"), ("2026-01-02", "pawmart"), ("2026-01-02", "petco")]),
    )
    # a list of days, in any order, and one source as a string
    assert_frame_equal(
        load("silver/sales", dates=["2026-01-03", "2026-01-01"], sources="chewy").collect(),
        expected_sales([("2026-01-01", "chewy"), ("2026-01-03", "chewy")]),
    )
    # open ranges and a source on its own list the lake
    assert_frame_equal(
        load("silver/sales", dates=("2026-01-02", None)).collect(),
        expected_sales([key for key in everything if key[0] >= "2026-01-02"]),
    )
    assert_frame_equal(
        load("silver/sales", dates=(None, "2026-01-01")).collect(),
        expected_sales([key for key in everything if key[0] == "2026-01-01"]),
    )
    assert_frame_equal(load("silver/sales", sources=["petco"]).collect(), expected_sales([("2026-01-02", "petco")]))
    # an empty partition has no file; nothing in range gives the table's empty frame, typed
    assert_frame_equal(
        load("silver/sales", dates="2026-01-03", sources="pawmart").collect(), sales_frame(DAYS[0], "chewy").clear()
    )
    assert_frame_equal(
        load("silver/sales", dates=("2026-02-01", "2026-02-28")).collect(), sales_frame(DAYS[0], "chewy").clear()
    )
    assert_frame_equal(load("silver/sales", sources=["nobody"]).collect(), sales_frame(DAYS[0], "chewy").clear())

    # daily
    assert_frame_equal(load("marts/daily_sales").collect(), pl.concat([daily_frame(day) for day in DAYS]))
    assert_frame_equal(
        load("marts/daily_sales", dates=("2025-12-30", "2026-01-02")).collect(),
        pl.concat([daily_frame(day) for day in DAYS[:2]]),
    )
    # monthly
    assert_frame_equal(load("marts/orders_monthly", months="2026-02").collect(), monthly_frame("2026-02-01"))
    assert_frame_equal(
        load("marts/orders_monthly", months=("2026-01", date(2026, 3, 15))).collect(),
        pl.concat([monthly_frame("2026-01-01"), monthly_frame("2026-02-01")]),
    )
    # unpartitioned
    assert_frame_equal(load("gold/dim_product").collect(), DIM_PRODUCT)

    # pandas
    sales = load("silver/sales", dates="2026-01-02", sources=["chewy", "petco"], pandas=True)
    assert isinstance(sales, pd.DataFrame)
    pd.testing.assert_frame_equal(sales, expected_sales([("2026-01-02", "chewy"), ("2026-01-02", "petco")]).to_pandas())
    pd.testing.assert_frame_equal(load("gold/dim_product", pandas=True), DIM_PRODUCT.to_pandas())

    assert list_tables() == ["gold/dim_product", "marts/daily_sales", "marts/orders_monthly", "silver/sales"]


def test_unknown_table_lists_the_tables_there(local_lake: Settings) -> None:
    with pytest.raises(LookupError, match="no table 'silver/sale' in the lake at") as error:
        load("silver/sale", settings=local_lake)
    assert "tables there: gold/dim_product, marts/daily_sales, silver/sales" in str(error.value)
    for not_a_table in ("silver", "dead_letter/2026-01-01", "dead_letter", "gold/dim_product/data.parquet"):
        with pytest.raises(LookupError, match="no table"):
            load(not_a_table, settings=local_lake)
    assert list_tables(settings=local_lake) == ["gold/dim_product", "marts/daily_sales", "silver/sales"]

    empty = Settings.from_env({"RESIGHT_LAKE_URL": str(Path(local_lake.lake_url).parent / "nothing")})
    with pytest.raises(LookupError, match="has anything been materialised there"):
        load("silver/sales", settings=empty)


@pytest.mark.parametrize(
    ("asset", "filters", "message"),
    [
        ("marts/daily_sales", {"sources": ["pawmart"]}, r"partitioned by date: sources= does not apply \(use dates=\)"),
        ("marts/daily_sales", {"months": "2026-01"}, r"months= does not apply \(use dates=\)"),
        ("gold/dim_product", {"dates": "2026-01-01"}, r"partitioned by nothing \(one file\): dates= does not apply$"),
        ("silver/sales", {"partitions": ["x"]}, r"date × source: partitions= does not apply \(use dates=, sources=\)"),
        ("silver/sales", {"dates": "2026-13-01"}, "'2026-13-01' is not a date"),
        ("silver/sales", {"dates": ("2026-01-03", "2026-01-01")}, r"the range ends \(2026-01-01\) before"),
        ("silver/sales", {"dates": ("2026-01-01", "2026-01-02", "2026-01-03")}, "pass a list for several"),
        ("silver/sales", {"dates": []}, "empty list"),
        ("silver/sales", {"sources": ["../etc"]}, "is not a partition name"),
        ("silver/sales", {"sources": {"pawmart": 1}}, "expected a value or a list"),
        ("silver/../gold", {}, "not an asset name"),
        ("silver/sales/date=2026-01-01", {}, "not an asset name"),
    ],
)
def test_filters_the_table_does_not_have_or_bad_values_are_refused(
    local_lake: Settings, asset: str, filters: dict[str, Any], message: str
) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        load(asset, settings=local_lake, **filters)


# --- load_model ---------------------------------------------------------------------------------


def model_inputs(rows: int, seed: int) -> pd.DataFrame:
    """Seeded rows of the model's inputs: the feature columns (float, some missing, as in the real
    table) and each row's series scale."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.uniform(0, 2, size=(rows, len(FEATURES))), columns=FEATURES)
    frame.loc[::3, "last_year"] = np.nan
    frame["scale"] = rng.uniform(1, 200, size=rows).round(1)
    return frame


@dataclass(frozen=True)
class Registry:
    """A SQLite MLflow store with two versions of the demand model, the first the champion."""

    uri: str
    champion: Any
    latest: Any


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """Tiny seeded regressions registered under MODEL_NAME the way the platform registers its model
    (artifacts in a temporary directory); built once for the module: an MLflow store takes seconds."""
    import mlflow
    from sklearn.ensemble import HistGradientBoostingRegressor

    from resight_platform.ml.pyfunc import log_demand_model

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("demand", artifact_location=(root / "artifacts").as_uri())
    inputs = model_inputs(60, seed=7)
    target = inputs["lag_1"].fillna(0) * 2 - inputs["price_ratio"]
    models = []
    # The fluent API (log_model) uses the process-wide store, which an earlier test in this worker
    # (the platform's training) may have set: point it here, and back afterwards.
    # MLflow's setters also write MLFLOW_TRACKING_URI/MLFLOW_REGISTRY_URI into os.environ, where
    # every later Settings in this worker would read them: those are put back too.
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    environ = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        for iterations in (20, 5):
            model = HistGradientBoostingRegressor(max_iter=iterations, early_stopping=False, random_state=0)
            model.fit(inputs[FEATURES], target)
            with mlflow.start_run(experiment_id=experiment):
                log_demand_model(model, pl.from_pandas(inputs), MODEL_NAME)
            models.append(model)
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
        for name, value in environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    client.set_registered_model_alias(MODEL_NAME, CHAMPION_ALIAS, "1")
    return Registry(uri, *models)


def units(estimator: Any, rows: pd.DataFrame) -> np.ndarray:
    """What the registered model must answer: the estimator's relative prediction, clipped at 0,
    times the row's scale."""
    relative = estimator.predict(rows[FEATURES])
    return np.clip(relative, 0.0, None) * rows["scale"].to_numpy()


def test_load_model_loads_the_aliased_version_and_predicts_units(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):  # only the settings say where
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({"MLFLOW_TRACKING_URI": registry.uri})
    champion, latest = registry.champion, registry.latest
    model = load_model(settings=settings)
    rows = model_inputs(8, seed=1)
    assert model.metadata.get_input_schema().input_names() == [*FEATURES, "scale"]
    predicted = model.predict(rows)
    np.testing.assert_allclose(predicted, units(champion, rows), rtol=1e-12)
    assert (predicted >= 0).all() and (units(champion, rows) != champion.predict(rows[FEATURES])).any()
    assert not np.allclose(predicted, units(latest, rows))  # the alias, not the newest
    shuffled = rows[["scale", *reversed(FEATURES)]].assign(note="extra columns are ignored")
    np.testing.assert_allclose(model.predict(shuffled), predicted, rtol=1e-12)
    with pytest.raises(LookupError, match=f"no version of model '{MODEL_NAME}' has the alias 'challenger'"):
        load_model("challenger", settings=settings)
    assert inspect.signature(load_model).parameters["alias"].default == CHAMPION_ALIAS


def test_the_registered_model_refuses_rows_without_their_scale(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    model = load_model(settings=Settings.from_env({"MLFLOW_TRACKING_URI": registry.uri}))
    with pytest.raises(Exception, match="scale"):
        model.predict(model_inputs(3, seed=2).drop(columns="scale"))


def test_load_model_says_when_nothing_is_registered(tmp_path: Path) -> None:
    nothing = Settings.from_env({"RESIGHT_HOME": str(tmp_path / "home")})
    with pytest.raises(LookupError, match=r"no MLflow store at .*mlflow\.db: no model has been trained"):
        load_model(settings=nothing)
    assert not nothing.mlflow_dir.exists()  # asking created nothing

    (tmp_path / "empty").mkdir()
    empty = Settings.from_env({"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'empty' / 'mlflow.db'}"})
    import mlflow

    mlflow.MlflowClient(tracking_uri=empty.tracking_uri).search_experiments()  # a store without the model
    with pytest.raises(LookupError, match=f"no version of model '{MODEL_NAME}' has the alias 'champion'"):
        load_model(settings=empty)


# --- the guide ----------------------------------------------------------------------------------


def guide_examples() -> list[tuple[str, str]]:
    """Each ```python block of the guide with the ```text block that follows it (its output)."""
    text = GUIDE.read_text()
    blocks = re.findall(r"```(\w+)\n(.*?)```", text, flags=re.DOTALL)
    examples = []
    for i, (language, code) in enumerate(blocks):
        if language == "python":
            follows = blocks[i + 1] if i + 1 < len(blocks) else ("", "")
            examples.append((code, follows[1] if follows[0] == "text" else ""))
    return examples


def test_the_guide_examples_run_and_print_what_it_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry
) -> None:
    examples = guide_examples()
    assert len(examples) >= 2
    lake = tmp_path / "lake"
    monkeypatch.setenv("RESIGHT_LAKE_URL", str(lake))
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    materialise_lake(LakeIOManager(lake_url=str(lake)), monthly=False, features=True)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.uri)
    monkeypatch.chdir(tmp_path)

    namespace: dict[str, Any] = {}
    for code, shown in examples:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, str(GUIDE), "exec"), namespace)
        assert printed.getvalue().strip() == shown.strip(), code
