"""Pandera models of the ML tables: weekly demand features and the demand forecast."""

from __future__ import annotations

from typing import ClassVar

import pandera.polars as pa
import polars as pl

from resight_platform.ml.features import CATEGORIES, REGIONS, SPECIES

__all__ = ["DemandFeatures", "DemandForecast"]


class _Model(pa.DataFrameModel):
    class Config:
        strict = True
        coerce = False


class _Series(_Model):
    category: str = pa.Field(isin=list(CATEGORIES))
    species: str = pa.Field(isin=list(SPECIES))
    region: str = pa.Field(isin=list(REGIONS))


class DemandFeatures(_Series):
    """One row per week × category × species × region; features use weeks before ``week`` only."""

    week: pl.Date
    units: float = pa.Field(ge=0)
    revenue: float
    scale: float = pa.Field(ge=1)
    seasonal_naive: float = pa.Field(nullable=True, ge=0)
    lag_1: float = pa.Field(nullable=True, ge=0)
    lag_2: float = pa.Field(nullable=True, ge=0)
    lag_3: float = pa.Field(nullable=True, ge=0)
    lag_4: float = pa.Field(nullable=True, ge=0)
    mean_4: float = pa.Field(nullable=True, ge=0)
    mean_26: float = pa.Field(nullable=True, ge=0)
    last_year: float = pa.Field(nullable=True, ge=0)
    season_ratio: float = pa.Field(nullable=True, ge=0)
    log_scale: float = pa.Field(ge=0)
    week_sin: float = pa.Field(ge=-1, le=1)
    week_cos: float = pa.Field(ge=-1, le=1)
    price_ratio: float = pa.Field(nullable=True)
    price_trend: float = pa.Field(nullable=True)
    category_code: float = pa.Field(nullable=True)
    species_code: float = pa.Field(nullable=True)
    region_code: float = pa.Field(nullable=True)

    class Config:
        strict = True
        coerce = False
        unique: ClassVar[list[str]] = ["week", "category", "species", "region"]


class DemandForecast(_Series):
    """One row per future week × category × species × region."""

    week_start: pl.Date
    horizon: pl.Int16 = pa.Field(in_range={"min_value": 1, "max_value": 52})
    units: float = pa.Field(ge=0)
    model_version: pl.Int32 = pa.Field(gt=0)
    trained_through: pl.Date

    class Config:
        strict = True
        coerce = False
        unique: ClassVar[list[str]] = ["week_start", "category", "species", "region"]
