#!/usr/bin/env bash
# Re-resolves the packages the run-environment tests install (the standard images' sets: sklearn-1.9, the
# sklearn framework's default, sklearn-1.5 and sklearn-1.3, see shipyard_repo.domain.standard_images; and
# the mlflow set: MLflow's client with scikit-learn 1.9, for the runs that track to Shipyard with MLflow)
# with `uv pip compile` for this Python, and writes their
# exact versions to requirements-environments.lock. tools/install-test-deps.sh downloads those wheels into
# .venv/wheelhouse, from which the tests build environments offline (SHIPYARD_PACKAGES_OFFLINE=1).
# SciPy, pandas and matplotlib are resolved once, with NumPy 1.26 (the sklearn-1.3 set), and the
# other sets are held to them: one wheel of each serves every set. The mlflow set is held to the whole
# sklearn-1.9 set (NumPy 2 and scikit-learn 1.9 too): mlflow-skinny (the client without the server) of
# .venv's mlflow version (the one Shipyard's tracking API is tested against), skops (the format
# mlflow.sklearn.log_model saves in by default) and the sklearn images' packages, so that both the bare
# set and an image with all of them build.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
UV="$("$ROOT/.venv/bin/python" -c 'import uv; print(uv.find_uv_bin())')"
PYTHON="$("$ROOT/.venv/bin/python" -c 'import sys; print(sys._base_executable)')"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
COMMON="numpy scipy pandas matplotlib joblib"
printf '%s\n' "scikit-learn==1.3.*" "numpy<2" scipy pandas matplotlib joblib > "$TMP/sklearn-1.3.in"
for VERSION in 1.5 1.9; do
  printf '%s\n' "scikit-learn==$VERSION.*" $COMMON > "$TMP/sklearn-$VERSION.in"
done
MLFLOW="$("$ROOT/.venv/bin/python" -c 'from importlib.metadata import version; print(version("mlflow"))')"
printf '%s\n' "mlflow-skinny==$MLFLOW" "scikit-learn==1.9.*" skops $COMMON > "$TMP/mlflow.in"
compile() { "$UV" pip compile --quiet --python "$PYTHON" --no-header --no-annotate "$@"; }
compile "$TMP/sklearn-1.3.in" -o "$TMP/sklearn-1.3.txt"
grep -v -E '^(numpy|scikit-learn)==' "$TMP/sklearn-1.3.txt" > "$TMP/shared.txt"
for VERSION in 1.5 1.9; do
  compile "$TMP/sklearn-$VERSION.in" -c "$TMP/shared.txt" -o "$TMP/sklearn-$VERSION.txt"
done
compile "$TMP/mlflow.in" -c "$TMP/sklearn-1.9.txt" -o "$TMP/mlflow.txt"
{
  echo "# Exact versions of every wheel the run-environment tests install (the sklearn-1.9, sklearn-1.5 and"
  echo "# sklearn-1.3 images' sets, and the mlflow set: mlflow-skinny $MLFLOW with scikit-learn 1.9),"
  echo "# resolved $(date -u +%Y-%m-%d) for $("$PYTHON" --version) on $(uname -m) by"
  echo "# tools/lock-environments.sh (run it again to re-resolve); tools/install-test-deps.sh downloads them."
  cat "$TMP"/sklearn-*.txt "$TMP/mlflow.txt" | grep -v '^#' | LC_ALL=C sort -f -u
} > "$ROOT/requirements-environments.lock"
echo "wrote $ROOT/requirements-environments.lock"
