# Sourced by the check scripts: makes target/venv with the lake's independent readers (DuckDB,
# deltalake, pyarrow) from PyPI, once, and sets $py to its Python.
venv=target/venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import duckdb, deltalake, pyarrow" 2>/dev/null ||
  "$venv/bin/pip" install --quiet duckdb deltalake pyarrow
py=$(pwd)/$venv/bin/python
