#!/usr/bin/env bash
# Create one virtualenv per serving peer under benchmarks/peers/.envs/ (git-ignored), so their
# pinned dependencies never touch modelpilot's own environment. Run from anywhere:
#
#   bash benchmarks/peers/install_serving_peers.sh              # all peers
#   bash benchmarks/peers/install_serving_peers.sh mlserver     # only one
#
# Peers: fastapi (FastAPI + uvicorn, the "minimal FastAPI app" baseline), mlserver
# (mlserver + its sklearn, xgboost and lightgbm runtimes, for benchmarks/serving.py --model),
# bentoml, and py-spy (the profiler, for benchmarks/serving.py
# --profile). The raw Starlette baseline runs in modelpilot's own .venv (same starlette and
# uvicorn as modelpilot). A peer that cannot be installed is reported and skipped;
# benchmarks/serving.py then prints "n/a" for it. Every server environment also gets
# scikit-learn, joblib and skops, so it loads the very model file modelpilot serves.
set -u

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
envs="$here/.envs"
python="${PYTHON:-python3.11}"
mkdir -p "$envs"

declare -A specs=(
  [fastapi]="fastapi uvicorn[standard] scikit-learn joblib skops"
  [mlserver]="mlserver mlserver-sklearn mlserver-xgboost mlserver-lightgbm scikit-learn joblib skops"
  [bentoml]="bentoml scikit-learn joblib skops"
  [py-spy]="py-spy"
)
# The module each environment must import to count as installed.
declare -A probes=(
  [fastapi]="fastapi, uvicorn, sklearn, skops"
  [mlserver]="mlserver, mlserver_sklearn, mlserver_xgboost, mlserver_lightgbm, sklearn"
  [bentoml]="bentoml, sklearn"
  [py-spy]="sys"
)
peers=("$@")
if [ ${#peers[@]} -eq 0 ]; then
  peers=(fastapi mlserver bentoml py-spy)
fi

status=0
for peer in "${peers[@]}"; do
  spec="${specs[$peer]:-}"
  if [ -z "$spec" ]; then
    echo "unknown peer '$peer'; expected one of: ${!specs[*]}" >&2
    status=2
    continue
  fi
  read -ra requirements <<<"$spec"
  target="$envs/$peer"
  log="$envs/$peer.install.log"
  probe="import ${probes[$peer]}"
  main_package="${requirements[0]}"
  echo "== $peer ($spec) -> $target"
  if [ -x "$target/bin/python" ] && "$target/bin/python" -c "$probe" 2>/dev/null; then
    echo "   already installed: $("$target/bin/python" -m pip show "$main_package" | grep ^Version)"
    continue
  fi
  rm -rf "$target"
  if "$python" -m venv "$target" >"$log" 2>&1 \
    && "$target/bin/python" -m pip install --quiet --upgrade pip >>"$log" 2>&1 \
    && "$target/bin/python" -m pip install --quiet "${requirements[@]}" >>"$log" 2>&1 \
    && "$target/bin/python" -c "$probe" >>"$log" 2>&1; then
    echo "   installed: $("$target/bin/python" -m pip show "$main_package" | grep ^Version)"
  else
    echo "   NOT INSTALLED: $peer could not be installed here (see $log, last lines below);"
    echo "   the benchmark will print n/a for it"
    tail -n 5 "$log" | sed 's/^/   | /'
    rm -rf "$target"
    status=1
  fi
done
exit $status
