#!/usr/bin/env bash
# The GPU check: everything that needs an NVIDIA GPU, in one go, its results in one folder.
#
#   scripts/gpu-check.sh [RESULTS_DIR]     run the check (RESULTS_DIR, else $OUT, else
#                                          ./gpu-check-results)
#   scripts/gpu-check.sh --dry-run [DIR]   print the steps and their time limits, run nothing
#   scripts/gpu-check.sh --prepare         fill the wheels folder, on a machine with network
#
# Steps, each with its own time limit inside an overall budget (GPU_CHECK_BUDGET_S, 450 s),
# each writing <step>.log and its figures into the results folder, and summary.md at the end:
#   env        the GPUs (nvidia-smi, NVML), Python, torch and its CUDA
#   install    a virtualenv over the machine's Python (its CUDA torch stays), with what is
#              missing installed from the wheels folder only (no network); install.md says what
#   gpu-tests  pytest tests/gpu, CI unset (a component other than the GPU missing skips)
#   train      the digits reference versions v2 (torch) into a model store in the results
#   serve-gpu  mlcanary serve --device cuda: the GPU gauges on /metrics, the freest GPU chosen
#              (with several GPUs, memory is first held on the freest so that another one is)
#   bench-gpu  python -m benchmarks.gpu_batch: the CPU-against-GPU crossover batch size
#   compare    mlcanary bench compare, the same version served on the CPU and on the GPU,
#              with the cost per million requests at GPU_CHECK_PRICE_CPU / GPU_CHECK_PRICE_GPU
#
# Environment: GPU_CHECK_PYTHON (the Python to use; default: the first of python3.12,
# python3.11, python3 whose torch sees CUDA), GPU_CHECK_WHEELS (default scripts/gpu-check-wheels),
# GPU_CHECK_VENV (default $TMPDIR/mlcanary-gpu-check-venv), GPU_CHECK_BUDGET_S,
# GPU_CHECK_PRICE_CPU (0.10) and GPU_CHECK_PRICE_GPU (2.50), hourly prices of the two nodes.
# The exit code is the number of failed steps (0: all passed). docs/gpu-check.md has the rest.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WHEELS=${GPU_CHECK_WHEELS:-$ROOT/scripts/gpu-check-wheels}
VENV=${GPU_CHECK_VENV:-${TMPDIR:-/tmp}/mlcanary-gpu-check-venv}
BUDGET_S=${GPU_CHECK_BUDGET_S:-450}
PRICE_CPU=${GPU_CHECK_PRICE_CPU:-0.10}
PRICE_GPU=${GPU_CHECK_PRICE_GPU:-2.50}
# What the check needs beyond the machine's torch: the project's serving and bench extras,
# safetensors (the [torch] extra without torch itself) and pytest.
REQUIREMENTS=("mlcanary[serve,bench]" "safetensors>=0.4" "pytest>=8")
PYTHON_VERSIONS=${GPU_CHECK_PYTHON_VERSIONS:-3.11 3.12}
STEPS=(env install gpu-tests train serve-gpu bench-gpu compare)
# Each step's longest run in seconds; the overall budget may cut a later step shorter.
declare -A WHAT=(
    [env]="nvidia-smi; the Python's torch and CUDA"
    [install]="python -m venv --system-site-packages; pip install --no-index --find-links WHEELS"
    [gpu-tests]="env -u CI python -m pytest tests/gpu --junitxml gpu-tests.xml"
    [train]="mlcanary models train --version v2"
    [serve-gpu]="mlcanary serve --model digits:v2 --device cuda --port 3100; /predict; /metrics"
    [bench-gpu]="python -m benchmarks.gpu_batch --out gpu-batch"
    [compare]="mlcanary serve --device cpu --port 3101; mlcanary bench compare --a :3101 --b :3100"
)
declare -A LIMIT=([env]=30 [install]=150 [gpu-tests]=120 [train]=90 [serve-gpu]=90
    [bench-gpu]=120 [compare]=240)

usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

# ---------------------------------------------------------------------------------------------
# Small Python helpers, run with the check's Python: parsing /metrics, JUnit, the reports.
helper() {
    local python=$BASE_PY
    [[ -x $PY ]] && python=$PY
    PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH} "$python" - "$@" <<'PY'
import json, re, sys, time
from pathlib import Path

command, args = sys.argv[1], sys.argv[2:]
GAUGES = ["mlcanary_gpu_utilization_ratio", "mlcanary_gpu_memory_used_bytes",
          "mlcanary_gpu_memory_total_bytes", "mlcanary_gpu_power_watts"]

if command == "check-metrics":  # FILE EXPECTED_DEVICE: the gauges and the device label
    text = Path(args[0]).read_text()
    present = [g for g in GAUGES if re.search(rf"^{g}\{{", text, re.M)]
    devices = re.findall(r'^mlcanary_model_info\{[^}]*device="([^"]+)"', text, re.M)
    device = devices[0] if devices else "none"
    print(f"device {device} (expected {args[1]}), GPU gauges {len(present)}/{len(GAUGES)}"
          + "".join(f"; missing {g}" for g in GAUGES if g not in present))
    sys.exit(0 if device == args[1] and len(present) == len(GAUGES) else 1)
elif command == "junit":  # FILE: pytest's counts
    text = Path(args[0]).read_text()
    suite = re.search(r"<testsuite [^>]*>", text).group(0)
    count = {k: int(re.search(rf'{k}="(\d+)"', suite).group(1))
             for k in ("tests", "failures", "errors", "skipped")}
    passed = count["tests"] - count["failures"] - count["errors"] - count["skipped"]
    print(f"{passed} passed, {count['skipped']} skipped, "
          f"{count['failures'] + count['errors']} failed")
    sys.exit(1 if count["failures"] + count["errors"] else 0)
elif command == "crossover":  # gpu_batch.json: the crossover batch size of each network
    report = json.loads(Path(args[0]).read_text())
    print("crossover batch " + ", ".join(f"{k}: {v}" for k, v in report["crossover_batch"].items()))
elif command == "compare":  # compare.json: capacity and cost per million of each side
    document = json.loads(Path(args[0]).read_text())
    parts = []
    for side in document["sides"]:
        capacity, cost = side["capacity_rps"], side["cost_per_million"]
        parts.append(f"{side['label']}: " + (f"{capacity:.0f} req/s, {cost:.4f} per million"
                                             if capacity else "no capacity claimed"))
    print("; ".join(parts))
elif command == "http":  # GET URL [FILE] | POST-PREDICT URL: no curl needed on the machine
    import urllib.request
    if args[0] == "POST-PREDICT":
        from mlcanary.loadtest.labeled import digits_rows
        request = urllib.request.Request(args[1], digits_rows()[0].body.encode(),
                                         {"content-type": "application/json"})
    else:
        request = urllib.request.Request(args[1])
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read()
    except OSError as error:
        sys.exit(f"{args[1]}: {error}")
    if len(args) > 2:
        Path(args[2]).write_bytes(body)
    else:
        print(body.decode())
elif command == "freest":  # "COUNT INDEX": CUDA devices, and the one with the most free memory
    import torch
    free = [torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())]
    print(len(free), free.index(max(free)) if free else -1)
elif command == "hold":  # INDEX SECONDS: hold 60% of a GPU's free memory for a while
    import torch
    index = int(args[0])
    free = torch.cuda.mem_get_info(index)[0]
    block = torch.empty(int(free * 0.6), dtype=torch.uint8, device=f"cuda:{index}")
    print(f"holding {block.numel() / 2**30:.1f} GiB on cuda:{index}", flush=True)
    time.sleep(float(args[1]))
else:
    sys.exit(f"unknown helper {command}")
PY
}

# ---------------------------------------------------------------------------------------------
prepare() {
    # Runs where pip can reach an index. torch is left out on purpose: the GPU machine's own CUDA
    # build is used, and a CUDA torch is several GB.
    local python=${GPU_CHECK_PYTHON:-python3} version platforms=()
    for tag in manylinux2014 manylinux_2_17 manylinux_2_24 manylinux_2_27 manylinux_2_28 \
        manylinux_2_31 manylinux_2_34 manylinux_2_35 manylinux_2_39; do
        platforms+=(--platform "${tag}_x86_64")
    done
    run mkdir -p "$WHEELS"
    run "$python" -m pip wheel --no-deps --wheel-dir "$WHEELS" "$ROOT" || return 1
    local project
    project=$(find "$WHEELS" -maxdepth 1 -name 'mlcanary-*.whl' 2>/dev/null | sort | tail -n 1)
    project=${project:-$WHEELS/mlcanary-VERSION-py3-none-any.whl}
    for version in $PYTHON_VERSIONS; do
        run "$python" -m pip download --dest "$WHEELS" --only-binary=:all: \
            --python-version "$version" --implementation cp "${platforms[@]}" \
            "${project}[serve,bench]" "${REQUIREMENTS[@]:1}" || return 1
    done
    [[ $DRY_RUN == 1 ]] || echo "wheels for Python $PYTHON_VERSIONS in $WHEELS:" \
        "$(find "$WHEELS" -name '*.whl' | wc -l) files, $(du -sh "$WHEELS" | cut -f1)"
}

run() {
    if [[ $DRY_RUN == 1 ]]; then
        printf '  %s\n' "$*"
    else
        "$@"
    fi
}

# ---------------------------------------------------------------------------------------------
# The steps. Each runs as `gpu-check.sh --step NAME` under `timeout`, so a stuck step is killed
# with everything it started in its process group; servers meant to outlive a step are started
# in their own session, with a time limit of the whole budget, and their pids in $R/pids.

pick_python() {
    if [[ -n ${GPU_CHECK_PYTHON:-} ]]; then
        echo "$GPU_CHECK_PYTHON"
        return
    fi
    local candidate fallback=""
    for candidate in python3.12 python3.11 python3; do
        command -v "$candidate" >/dev/null || continue
        fallback=${fallback:-$candidate}
        if "$candidate" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' \
            2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    echo "${fallback:-python3}"
}

step_env() {
    nvidia-smi || echo "nvidia-smi: not available"
    echo "python: $BASE_PY ($("$BASE_PY" --version 2>&1))"
    "$BASE_PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
        "available", torch.cuda.is_available(), "devices", torch.cuda.device_count())' \
        || echo "torch: not importable by $BASE_PY"
    local gpus
    gpus=$(nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader 2>/dev/null)
    figure "${gpus:-no GPU listed by nvidia-smi}; $("$BASE_PY" --version 2>&1)"
    [[ -n $gpus ]]
}

step_install() {
    if [[ ! -x $VENV/bin/python ]]; then
        "$BASE_PY" -m venv --system-site-packages "$VENV" || return 1
    fi
    local requirements=("${REQUIREMENTS[@]}")
    "$PY" -c 'import torch' 2>/dev/null || requirements+=(torch)
    "$PY" -m pip install --no-index --find-links "$WHEELS" --report "$R/install-report.json" \
        "${requirements[@]}" || return 1
    local installed
    installed=$("$PY" - "$R/install-report.json" "$R/install.md" <<'PY'

import json, sys
from pathlib import Path
items = json.loads(Path(sys.argv[1]).read_text()).get("install", [])
names = sorted(f"{i['metadata']['name']}=={i['metadata']['version']}" for i in items)
Path(sys.argv[2]).write_text("# Installed from the wheels folder\n\n"
                             + "".join(f"- {n}\n" for n in names)
                             + ("" if names else "nothing: everything was already there\n"))
print(f"{len(names)} packages installed from the wheels (install.md)")
PY
    ) || return 1
    echo "$installed"
    figure "$installed"
    if ! "$PY" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())'; then
        figure "$installed; but torch $("$PY" -c 'import torch; print(torch.__version__)') sees no CUDA device"
        return 1
    fi
}

step_gpu_tests() {
    (cd "$ROOT" && env -u CI "$PY" -m pytest -q -p no:cacheprovider -rs \
        --junitxml "$R/gpu-tests.xml" tests/gpu)
    local code=$?
    figure "$(helper junit "$R/gpu-tests.xml")"
    return $code
}

step_train() {
    (cd "$ROOT" && "$PY" -m mlcanary.cli models train --version v2) || return 1
    figure "digits:v2 trained into $MLCANARY_HOME"
}

# Starts `mlcanary serve` in its own session, bounded by the rest of the budget; its pid in
# $R/pids; waits for /readyz.
start_server() {
    local name=$1 port=$2 device=$3 left
    left=$(($(cat "$R/deadline") - $(date +%s)))
    (cd "$ROOT" && setsid timeout "$left" "$PY" -m mlcanary.cli serve --model digits:v2 \
        --port "$port" --device "$device" >"$R/$name.log" 2>&1 &
        echo $! >"$R/$name.pid")
    cat "$R/$name.pid" >>"$R/pids"
    local tries
    for tries in $(seq 120); do
        helper http GET "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
        kill -0 "$(cat "$R/$name.pid")" 2>/dev/null || break
        sleep 1
    done
    echo "$name did not become ready after $tries s; its log:"
    tail -n 30 "$R/$name.log"
    return 1
}

step_serve_gpu() {
    local count freest expected
    read -r count freest < <(helper freest) || return 1
    if ((count == 0)); then
        figure "no CUDA device visible to torch"
        return 1
    fi
    expected="cuda:$freest"
    local holder=""
    if ((count > 1)); then
        # Make another GPU the freest: placement must follow free memory, not index 0.
        setsid timeout 120 "${BASH_SOURCE[0]}" --helper hold "$freest" 120 >"$R/hold.log" 2>&1 &
        holder=$!
        for _ in $(seq 60); do
            grep -q holding "$R/hold.log" 2>/dev/null && break
            sleep 1
        done
        read -r count freest < <(helper freest) || return 1
        expected="cuda:$freest"
    fi
    echo "$count CUDA device(s); the freest now: $expected"
    start_server serve-gpu-server 3100 cuda
    local placed=$?
    # The memory held elsewhere only had to steer the placement.
    [[ -n $holder ]] && kill -- "-$holder" 2>/dev/null
    ((placed == 0)) || return 1
    helper http POST-PREDICT http://127.0.0.1:3100/predict || return 1
    local tries
    for tries in $(seq 30); do  # the gauges are sampled every MLCANARY_GPU_SAMPLE_S
        helper http GET http://127.0.0.1:3100/metrics "$R/serve-gpu-metrics.txt"
        helper check-metrics "$R/serve-gpu-metrics.txt" "$expected" >/dev/null && break
        sleep 1
    done
    local verdict code
    verdict=$(helper check-metrics "$R/serve-gpu-metrics.txt" "$expected")
    code=$?
    figure "$count GPU(s): $verdict after $tries s"
    return $code
}

step_bench_gpu() {
    (cd "$ROOT" && "$PY" -m benchmarks.gpu_batch --out "$R/gpu-batch" --min-seconds 0.2) \
        || return 1
    figure "$(helper crossover "$R/gpu-batch/gpu_batch.json")"
}

step_compare() {
    helper http GET http://127.0.0.1:3100/readyz >/dev/null || {
        figure "no GPU server: serve-gpu did not start one"
        return 1
    }
    start_server compare-cpu-server 3101 cpu || return 1
    local cores processes
    cores=$(nproc)
    processes=$((cores / 4 > 1 ? cores / 4 : 1))
    (cd "$ROOT" && "$PY" -m mlcanary.cli bench compare \
        --a http://127.0.0.1:3101 --b http://127.0.0.1:3100 --label-a cpu --label-b gpu \
        --price-a "$PRICE_CPU" --price-b "$PRICE_GPU" --slo-p95-ms 50 \
        --server-pid-a "$(cat "$R/compare-cpu-server.pid")" \
        --server-pid-b "$(cat "$R/serve-gpu-server.pid")" --processes "$processes" \
        --start-rps 50 --window-s 1 --max-hold-s 8 --resolution 0.15 --out "$R/compare") \
        || return 1
    figure "$(helper compare "$R/compare/compare.json") ($processes Locust processes)"
}

figure() { echo "$*" >"$R/$CURRENT.figure"; }

# ---------------------------------------------------------------------------------------------
summary() {
    {
        echo "# GPU check"
        echo
        echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD \
            2>/dev/null || echo unknown), Python $BASE_PY, budget ${BUDGET_S} s"
        echo
        echo "| step | result | seconds | figures |"
        echo "|---|---|--:|---|"
        cat "$R/steps.md" 2>/dev/null
        echo
        echo "Each step's log: \`<step>.log\`; installed packages: \`install.md\`; reports:"
        echo "\`gpu-tests.xml\`, \`serve-gpu-metrics.txt\`, \`gpu-batch/\`, \`compare/\`."
    } >"$R/summary.md"
}

stop_servers() {
    [[ -f $R/pids ]] || return 0
    local pid
    while read -r pid; do
        kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null
    done <"$R/pids"
    rm -f "$R/pids"
}

run_steps() {
    mkdir -p "$R"
    R=$(cd "$R" && pwd)
    echo $(($(date +%s) + BUDGET_S)) >"$R/deadline"
    : >"$R/steps.md"
    trap stop_servers EXIT
    trap 'stop_servers; exit 130' INT TERM
    local failed=0 name limit left started code result
    for name in "${STEPS[@]}"; do
        left=$(($(cat "$R/deadline") - $(date +%s)))
        limit=$((LIMIT[$name] < left ? LIMIT[$name] : left))
        if ((limit < 10)); then
            echo "| $name | skipped: out of time | 0 | |" >>"$R/steps.md"
            failed=$((failed + 1))
            continue
        fi
        echo "== $name (at most $limit s)"
        started=$(date +%s)
        timeout --kill-after=10 "$limit" "${BASH_SOURCE[0]}" --step "$name" "$R" \
            >"$R/$name.log" 2>&1
        code=$?
        case $code in
            0) result=passed ;;
            124 | 137) result="timed out after $limit s" ;;
            *) result="failed (exit $code)" ;;
        esac
        ((code == 0)) || failed=$((failed + 1))
        echo "| $name | $result | $(($(date +%s) - started)) | $(cat "$R/$name.figure" \
            2>/dev/null) |" >>"$R/steps.md"
        tail -n 1 "$R/steps.md"
        summary
    done
    stop_servers
    summary
    echo "summary: $R/summary.md"
    return "$failed"
}

dry_run() {
    echo "results: $R (summary.md, <step>.log), budget $BUDGET_S s in all"
    echo "python: GPU_CHECK_PYTHON or the first of python3.12, python3.11, python3 with CUDA torch"
    echo "virtualenv: $VENV (--system-site-packages); wheels: $WHEELS"
    local name
    for name in "${STEPS[@]}"; do
        echo "step $name (at most ${LIMIT[$name]} s): ${WHAT[$name]}"
    done
}

# ---------------------------------------------------------------------------------------------
DRY_RUN=0
MODE=run
while (($#)); do
    case $1 in
        --dry-run) DRY_RUN=1 ;;
        --prepare) MODE=prepare ;;
        --step) MODE=step; CURRENT=$2; shift ;;
        --helper) MODE=helper; shift; break ;;
        -h | --help) usage; exit 0 ;;
        -*) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
        *) break ;;
    esac
    shift
done
R=${OUT:-./gpu-check-results}
[[ $MODE == helper ]] || R=${1:-$R}
BASE_PY=${GPU_CHECK_BASE_PY:-$(pick_python)}
export GPU_CHECK_BASE_PY=$BASE_PY
PY=$VENV/bin/python
[[ $MODE == step && $CURRENT == env ]] && PY=$BASE_PY
export MLCANARY_HOME=$R/home BENTOML_HOME=$R/home/bentoml MLCANARY_GPU_SAMPLE_S=1
export CUDA_DEVICE_ORDER=PCI_BUS_ID  # CUDA's indices as NVML's (the gauges' gpu label)

case $MODE in
    prepare)
        [[ $DRY_RUN == 1 ]] && echo "--prepare would run:"
        prepare
        ;;
    step)
        "step_${CURRENT//-/_}"
        ;;
    helper)
        helper "$@"
        ;;
    run)
        if [[ $DRY_RUN == 1 ]]; then
            dry_run
        else
            run_steps
        fi
        ;;
esac
