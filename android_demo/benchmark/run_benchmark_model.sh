#!/usr/bin/env bash
# Time a .tflite on an Android phone with TFLite's benchmark_model, at the settings of
# `mobilekit bench` (batch 1, XNNPACK on, same threads / runs / warm-up), pinned to the big cores.
#
# Usage: android_demo/benchmark/run_benchmark_model.sh MODEL.tflite BENCHMARK_MODEL_BINARY [options]
#   --threads N        interpreter threads (default 4)
#   --runs N           timed runs at least (default 50; mobilekit bench --num_runs)
#   --warmup N         warm-up runs at least (default 1; --warmup_runs)
#   --min-secs S       keep timing at least S seconds (default 1; --min_secs)
#   --cpus MASK        taskset mask of the cores to pin (default: the N fastest cores, read from
#                      the phone's cpufreq max frequencies)
#   --serial ID        adb device serial (default: the only device)
#   --out LOG          where to write the log (default: benchmark_model-<model>-<threads>t.log)
#   --profile          also ask benchmark_model for its per-op profile
#
# benchmark_model comes from a TensorFlow release or build (android_aarch64 benchmark_model);
# it cannot be downloaded here, so give its path. Then read the log with:
#   mobilekit bench --from-benchmark-model LOG [--from-benchmark-model LOG2] [MODEL.tflite ...] --json results.json
set -euo pipefail

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "run_benchmark_model: $*" >&2; exit 2; }

[ $# -ge 2 ] || usage
model=$1; binary=$2; shift 2
threads=4; runs=50; warmup=1; min_secs=1; cpus=""; serial=""; out=""; profile=false
while [ $# -gt 0 ]; do
  case $1 in
    --threads) threads=${2:?}; shift 2 ;;
    --runs) runs=${2:?}; shift 2 ;;
    --warmup) warmup=${2:?}; shift 2 ;;
    --min-secs) min_secs=${2:?}; shift 2 ;;
    --cpus) cpus=${2:?}; shift 2 ;;
    --serial) serial=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --profile) profile=true; shift ;;
    *) die "unknown option '$1'" ;;
  esac
done
[ -f "$model" ] || die "no such model file: '$model'"
[ -f "$binary" ] || die "no such benchmark_model binary: '$binary'"
for v in "$threads" "$runs" "$warmup"; do
  [[ $v =~ ^[0-9]+$ ]] || die "expected a non-negative integer; received '$v'"
done
[ "$threads" -ge 1 ] || die "--threads must be >= 1; received '$threads'"
command -v adb >/dev/null 2>&1 || die "adb not found (Android platform-tools)"

adb_() { if [ -n "$serial" ]; then adb -s "$serial" "$@"; else adb "$@"; fi; }
name=$(basename "$model")
remote=/data/local/tmp/mobilekit
out=${out:-benchmark_model-${name%.tflite}-${threads}t.log}

if [ -z "$cpus" ]; then
  # The N cores with the highest max frequency (big cores first), as a hex taskset mask.
  cpus=$(adb_ shell 'for c in /sys/devices/system/cpu/cpu[0-9]*; do
            echo "$(cat $c/cpufreq/cpuinfo_max_freq 2>/dev/null || echo 0) ${c##*cpu}"; done' |
         tr -d '\r' | sort -k1,1nr -k2,2n | head -n "$threads" |
         awk '{m += 2 ^ $2} END {printf "%x", m}')
  [ -n "$cpus" ] && [ "$cpus" != 0 ] || die "could not read the phone's core frequencies; pass --cpus MASK"
fi

adb_ shell mkdir -p "$remote"
adb_ push "$model" "$remote/$name" >/dev/null
adb_ push "$binary" "$remote/benchmark_model" >/dev/null
adb_ shell chmod 755 "$remote/benchmark_model"

tmp="$out.partial"
log="$remote/${name%.tflite}-${threads}t.log"
status=0
adb_ shell "taskset $cpus $remote/benchmark_model --graph=$remote/$name --num_threads=$threads \
--num_runs=$runs --warmup_runs=$warmup --min_secs=$min_secs --use_xnnpack=true \
--enable_op_profiling=$profile > $log 2>&1" || status=$?
adb_ pull "$log" "$tmp" >/dev/null || die "could not pull $log from the phone"
if [ "$status" != 0 ]; then
  mv "$tmp" "$out.failed"; die "benchmark_model failed (exit $status); its log is in $out.failed"
fi
{
  echo "# mobilekit run_benchmark_model: taskset $cpus, $(adb_ shell getprop ro.product.model | tr -d '\r'), $(adb_ shell getprop ro.board.platform | tr -d '\r')"
  tr -d '\r' < "$tmp"
} > "$out.tmp" && rm -f "$tmp" && mv "$out.tmp" "$out"
echo "run_benchmark_model: wrote $out; read it with: mobilekit bench --from-benchmark-model $out"
