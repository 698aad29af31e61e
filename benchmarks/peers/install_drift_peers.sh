#!/usr/bin/env bash
# Create one virtualenv per drift peer under benchmarks/peers/.envs/ (git-ignored), so their
# pinned dependencies never touch modelpilot's own environment. Run from anywhere:
#
#   bash benchmarks/peers/install_drift_peers.sh            # all peers
#   bash benchmarks/peers/install_drift_peers.sh evidently  # only one
#
# A peer that cannot be installed is reported and skipped; benchmarks/drift_speed.py then
# prints "n/a" for it. Every environment also gets psutil (peak RSS) and pyarrow (the data).
set -u

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
envs="$here/.envs"
python="${PYTHON:-python3.11}"
mkdir -p "$envs"

# Extra pins where a peer's own metadata allows versions it does not work with: evidently 0.7
# imports pandas internals that pandas 3 removed; nannyml imports statsmodels without declaring
# it; alibi-detect pins numpy<2, which recent pyarrow (needed to read the data) no longer takes.
declare -A specs=(
  [evidently]="evidently==0.7.* pandas<3"
  [nannyml]="nannyml statsmodels"
  [alibi-detect]="alibi-detect pyarrow<19"
)
peers=("$@")
if [ ${#peers[@]} -eq 0 ]; then
  peers=(evidently nannyml alibi-detect)
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
  echo "== $peer ($spec) -> $target"
  if [ -x "$target/bin/python" ] && "$target/bin/python" -c "import ${peer//-/_}, pyarrow, psutil" 2>/dev/null; then
    echo "   already installed: $("$target/bin/python" -m pip show "$peer" | grep ^Version)"
    continue
  fi
  rm -rf "$target"
  if "$python" -m venv "$target" >"$log" 2>&1 \
    && "$target/bin/python" -m pip install --quiet "${requirements[@]}" psutil pyarrow >>"$log" 2>&1 \
    && "$target/bin/python" -c "import ${peer//-/_}, pyarrow, psutil" >>"$log" 2>&1; then
    echo "   installed: $("$target/bin/python" -m pip show "$peer" | grep ^Version)"
  else
    echo "   NOT INSTALLED: $peer could not be installed here (see $log, last lines below);"
    echo "   the benchmark will print n/a for it"
    tail -n 5 "$log" | sed 's/^/   | /'
    rm -rf "$target"
  fi
done
exit $status
