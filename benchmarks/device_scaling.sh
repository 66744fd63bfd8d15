#!/usr/bin/env bash
# Thread scaling on a machine with many cores, as one prepared run: the lent 16-core machine of
# this workplace's device tool (its `run` verb; /work/.library/device/README.md), or any Linux
# x86-64 server with Python 3, numpy, CMake, Ninja, pybind11 and a C++17 compiler (PyTorch for the
# peer columns). Nothing is fetched: Eigen's headers and MNIST come in .devcarry/.
#
#   bash benchmarks/device_scaling.sh --prepare   # here: fills .devcarry/ (git-ignored), ~16 MB
#   bash benchmarks/device_scaling.sh [PHASE...]  # there, from the repository root; .devcarry carried
#
# Through the device tool: run(command="bash benchmarks/device_scaling.sh", carry=[".devcarry"],
# timeout_s=540). Phases (all by default, in this order): info build test pool epochs steps train
# model.
#   info    the CPU (lscpu), the compiler, Python, torch
#   build   fastae with native flags (the machine's own AVX-512 or AVX2 paths), its C++ tests,
#           epoch_bench, step_phases and the Python module, into build/device
#   test    the C++ tests (ctest) on this CPU
#   pool    pool_bench: one fork/join of the step's team at 1 to 16 threads (items of 2 and 20 us)
#   epochs  epoch_bench, tutorial and deep model, 1 to 16 threads (C++ alone, 3 epochs each)
#   steps   step_phases, both models, at 2 to 16 threads: the step's phases (the shards'
#           gradients, the sum and update) on T threads, on one, and T shards on one core, in turns
#   train   benchmarks/train_speed.py at 1 to 16 threads: fastae beside PyTorch at each count,
#           then fastae's pairs (1 thread, then T) and encoding at each count
#   model   benchmarks/scaling_model.py for both models, its predictions from 1 and 2 threads
#           set beside the steps measured at 4, 8 and 16 (the model's validation)
# Output: each phase's log in $OUT (the device tool's folder; ./device_out elsewhere), each phase
# under its own time limit so that one slow phase cannot take the others' (about 6 minutes in all
# on 16 cores).
set -uo pipefail
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$self")/.."
carry=.devcarry
out="${OUT:-$PWD/device_out}"

if [ "${1:-}" = "--prepare" ]; then
    py="${PYTHON:-python3}"
    mkdir -p "$carry/eigen"
    grep -qx '/.devcarry/' .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo '/.devcarry/' >> .git/info/exclude; }
    # Eigen's headers and CMake package: cmeel-eigen's prefix (the test extra), else the system's.
    prefix="$("$py" -c 'import cmeel, os; print(os.path.join(os.path.dirname(cmeel.__path__[0]), "cmeel.prefix"))' 2>/dev/null)"
    if [ -d "$prefix/share/eigen3/cmake" ]; then
        cp -r "$prefix/include" "$carry/eigen/" && mkdir -p "$carry/eigen/share" && cp -r "$prefix/share/eigen3" "$carry/eigen/share/"
    elif [ -d /usr/share/eigen3/cmake ]; then
        mkdir -p "$carry/eigen/include" "$carry/eigen/share"
        cp -r /usr/include/eigen3 "$carry/eigen/include/" && cp -r /usr/share/eigen3 "$carry/eigen/share/"
    else
        echo "no Eigen 3.4 found (pip install cmeel-eigen, or apt-get install libeigen3-dev)" >&2
        exit 1
    fi
    mnist="${FASTAE_MNIST:-../shared/data/mnist.npz}"  # this workplace's copy beside the checkout
    if [ -f "$mnist" ]; then cp "$mnist" "$carry/mnist.npz"; else echo "no $mnist: the run will use synthetic data" >&2; fi
    du -sh "$carry"
    exit 0
fi

mkdir -p "$out"
phases=("$@")
[ ${#phases[@]} -gt 0 ] || phases=(info build test pool epochs steps train model)
py="${PYTHON:-python3}"
bd=build/device
cpus="$(nproc)"
threads=()
for t in 1 2 4 8 16 32 64; do [ "$t" -le "$cpus" ] && threads+=("$t"); done
[ "${threads[-1]}" = "$cpus" ] || threads+=("$cpus")  # and the machine's own count
data=()
[ -f "$carry/mnist.npz" ] && data=(--data "$carry/mnist.npz")
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
info() {
    lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket|NUMA node\(s\)|L2|L3)' || true
    grep -o -w -E 'avx2|avx512f|avx512_bf16|amx_tile' /proc/cpuinfo | sort | uniq -c || true
    cat /sys/fs/cgroup/cpu.max 2>/dev/null || true
    "${CXX:-g++}" --version | head -1
    "$py" -c 'import sys, numpy; print("python", sys.version.split()[0], "numpy", numpy.__version__)'
    "$py" -c 'import torch; print("torch", torch.__version__, "threads", torch.get_num_threads())' || true
}

build() {
    local eigen=(-DCMAKE_PREFIX_PATH="$PWD/$carry/eigen")
    cmake -S . -B "$bd" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFASTAE_BUILD_PYTHON=ON -DFASTAE_BUILD_TESTS=ON \
        -DFASTAE_BUILD_BENCHMARKS=ON -DFASTAE_INSTALL=OFF -DPython_EXECUTABLE="$(command -v "$py")" \
        -Dpybind11_DIR="$("$py" -m pybind11 --cmakedir)" "${eigen[@]}" >/dev/null &&
        cmake --build "$bd" -j "$cpus" >/dev/null || return 1
    local so
    so="$(find "$bd" -name '_core*.so' | head -1)"
    cp "$so" python/fastae/ && "$py" -c 'import fastae; fastae.show_config()'
}

# MNIST's training images as raw float32 for the C++ benchmarks (--data), when the carry has them.
raw_data() {
    local raw=/tmp/fastae_x.f32
    if [ ${#data[@]} -gt 0 ] && [ ! -f "$raw" ]; then
        "$py" -c "import numpy as np; d = np.load('$carry/mnist.npz'); (d['x_train'].reshape(-1, 784) / np.float32(255)).astype(np.float32).tofile('$raw')"
    fi
    [ -f "$raw" ] && echo --data "$raw"
}

epochs() {
    local with
    read -ra with <<< "$(raw_data)"
    for model in "" --deep; do
        for t in "${threads[@]}"; do "$bd/epoch_bench" $model --threads "$t" --epochs 3 "${with[@]}" | tail -1; done
    done
}

step_phases() {
    local with
    read -ra with <<< "$(raw_data)"
    for model in "" --deep; do
        for t in "${threads[@]:1}"; do "$bd/step_phases" $model --threads "$t" --turns 8 "${with[@]}"; done
    done
}

# Run as `device_scaling.sh --run-phase NAME` by phase() below: one phase's body.
if [ "${1:-}" = "--run-phase" ]; then
    "$2"
    exit
fi

# phase NAME LIMIT_S [FUNCTION|COMMAND...]: its output to $out/NAME.txt and the terminal, under
# its time limit and within what is left of the run's budget; a failure is reported and the next
# phase runs.
budget="${FASTAE_DEVICE_BUDGET:-500}"
phase() {
    local name=$1 limit=$2
    shift 2
    local left=$((budget - SECONDS - 5))
    [ "$left" -lt "$limit" ] && limit=$left
    if [ "$limit" -lt 10 ]; then
        echo "=== $name: skipped, ${SECONDS} s of the ${budget} s budget spent"
        return
    fi
    echo "=== $name (limit ${limit} s; ${SECONDS} s since the start)"
    if [ "$(type -t "$1")" = function ]; then set -- bash "$self" --run-phase "$1"; fi
    timeout --kill-after=5 "$limit" "$@" 2>&1 | tee "$out/$name.txt"
    local rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || echo "=== $name: exit status $rc"
}

for p in "${phases[@]}"; do
    case "$p" in
        info) phase info 20 info ;;
        build) phase build 200 build ;;
        test) phase test 40 ctest --test-dir "$bd" -j "$cpus" --output-on-failure ;;
        epochs) phase epochs 60 epochs ;;
        steps) phase steps 45 step_phases ;;
        pool) phase pool 30 bash -c "$bd/pool_bench $cpus 2000 && $bd/pool_bench $cpus 20000" ;;
        train) phase train 180 "$py" benchmarks/train_speed.py "${data[@]}" --threads "${threads[@]}" --epochs 3 \
                   --deep-epochs 2 --pairs 2 --deep-pairs 2 --no-contention ;;
        model)
            for m in tutorial deep; do
                phase "model_$m" 150 "$py" benchmarks/scaling_model.py "${data[@]}" --model "$m" --rows 15000 \
                    --rounds 2 --side-by-side-rounds 1 --epoch-bench "$bd/epoch_bench" --step-phases "$bd/step_phases" \
                    --turns 4 --measure-threads "${threads[@]}"
            done ;;
        *) echo "unknown phase $p (info build test pool epochs steps train model)" >&2 ;;
    esac
done
echo "=== done in ${SECONDS}s; logs in $out"
