# Sourced by the check scripts: makes target/venv with the independent readers of what lambdaflow
# writes (DuckDB, deltalake and pyarrow for the lake, prometheus_client for /metrics) from PyPI,
# once, and sets $py to its Python.
venv=target/venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import duckdb, deltalake, pyarrow, prometheus_client" 2>/dev/null ||
  "$venv/bin/pip" install --quiet duckdb deltalake pyarrow prometheus_client
py=$(pwd)/$venv/bin/python
