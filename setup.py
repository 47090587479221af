from setuptools import find_packages, setup

setup(
    name="resight_platform",
    version="0.1.0",
    description="ReSight's Dagster data platform: partner files to trusted tables, marts and forecasts.",
    packages=find_packages(exclude=["resight_platform_tests*"]),
    package_data={
        "resight_platform": [
            "sources/registry/*",
            "sources/registry/mappings/*",
            "io/sql/*.sql",
            "onboard/*.yaml",
            "dagster.yaml",
            "py.typed",
        ]
    },
    python_requires=">=3.11,<3.13",
    install_requires=[
        "dagster>=1.13,<1.14",
        "dagster-webserver>=1.13,<1.14",
        "dagster-postgres>=0.29,<0.30",
        "dagster-aws>=0.29,<0.30",
        "polars>=1.30,<3",
        "pyarrow>=18",
        # Arrow to Postgres binary COPY (the warehouse bulk load)
        "pgpq>=0.12,<0.13",
        "pandera[polars]>=0.24,<0.36",
        "psycopg[binary]>=3.2,<3.4",
        "psycopg2-binary>=2.9,<3",
        "pgserver>=0.1.4,<0.2",
        "boto3>=1.35,<2",
        "pyyaml>=6,<7",
        "numpy>=1.26",
        # demand models: tracking, registry and UI; scikit-learn and matplotlib come with it
        "mlflow>=3.5,<4",
        "scikit-learn>=1.5,<2",
        "matplotlib>=3.8,<4",
        # one definition of the silver, gold and mart transforms for Polars and Spark (resight_platform/engines)
        "narwhals>=2.28,<3",
        # `resight metrics`: the pipeline's health on /metrics for Prometheus (resight_platform/metrics.py)
        "prometheus-client>=0.20,<1",
    ],
    extras_require={
        # The Spark engine (resight_platform/engines/spark.py): a JVM bundle of ~490 MB, so an extra;
        # `make install` installs it. [connect]: the Spark Connect client (spark.remote=sc://...).
        "spark": [
            "pyspark[connect]>=4.0,<5",
            "dagster-pyspark>=0.29,<0.30",
        ],
        # Kubernetes (deploy/helm): the K8sRunLauncher the chart's instance names is loaded by every
        # process that opens the instance, the run pods of this image included.
        "k8s": [
            "dagster-k8s>=0.29,<0.30",
        ],
        "test": [
            # Below 9.2: pytest 9.2's structured node ids make pytest-xdist 3.8's --dist loadgroup
            # ignore xdist_group marks (pytest-dev/pytest-xdist#1386), so each worker built the
            # ML and end-to-end fixtures again and grouped tests ran side by side.
            "pytest>=8,<9.2",
            "pytest-xdist>=3.6,<4",
            "moto[server]>=5.0,<6",
            # a local SMTP server the alert tests send to
            "aiosmtpd>=1.4,<2",
            # the test CA and certificates of the STARTTLS alert server (resight_platform_tests/alert_servers.py)
            "cryptography>=42",
            # benchmark peers and probes (bench/), smoke-tested in the suite
            "pandas>=2.2,<4",
            "psutil>=5.9",
            # drives Debian's Chromium (apt, never Playwright's own download) through the Dagster UI
            # (resight_platform_tests/ui); Locator.filter(visible=) needs 1.51
            "playwright>=1.51,<2",
        ],
        "dev": [
            "ruff>=0.8",
            "mypy>=1.13",
            "types-PyYAML",
            "boto3-stubs[s3]",
        ],
    },
    entry_points={"console_scripts": ["resight=resight_platform.cli:main"]},
)
