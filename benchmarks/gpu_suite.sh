#!/usr/bin/env bash
# One prepared device check for a session that is lent a GPU (about 10 minutes on an H100):
# a short training on the GPU, then batched-MD throughput and stability and training
# throughput on CUDA, each table saved under OUT. The reference data does not travel to
# the device machine: copy ../shared/data/ethanol_xtb.h5 into an ignored folder of the
# checkout, carry it, and point DATA_DIR at it.
#
#   DATA_DIR=.data bash benchmarks/gpu_suite.sh runs/gpu_suite      # on the device
#   DEVICE=cpu MINUTES=0.1 MD_REPLICAS=1,8 STAB_REPLICAS=4 TT_ARGS="--steps 2" bash benchmarks/gpu_suite.sh /tmp/dry
set -euo pipefail
OUT=${1:-runs/gpu_suite}
DEVICE=${DEVICE:-cuda}
MINUTES=${MINUTES:-3}                  # training budget and MD-stability wall budget
DATA_DIR=${DATA_DIR:-../shared/data}
MD_REPLICAS=${MD_REPLICAS:-1,8,64,512}
STAB_REPLICAS=${STAB_REPLICAS:-64}
MD_COMPILE=${MD_COMPILE---compile}     # MD_COMPILE= (empty) leaves the compiled column out
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
(nvidia-smi || true) > "$OUT/device.txt" 2>&1
python benchmarks/accuracy.py --molecule ethanol --minutes "$MINUTES" \
    --data-dir "$DATA_DIR" --out "$OUT/train" -- --device "$DEVICE" 2>&1 | tail -n 8 | tee "$OUT/accuracy.txt"
MODEL="$OUT/train/model.pt"
python benchmarks/md_throughput.py --device "$DEVICE" --model "$MODEL" \
    --replicas "$MD_REPLICAS" $MD_COMPILE 2>&1 | tee "$OUT/md_throughput.txt"
python benchmarks/md_stability.py --device "$DEVICE" --model "$MODEL" \
    --structure "datasets/ethanol_small.h5:ethanol_minimum" --replicas "$STAB_REPLICAS" \
    --ps 100 --max-wall-minutes "$MINUTES" --json "$OUT/md_stability.json" $MD_COMPILE \
    2>&1 | tail -n 8 | tee "$OUT/md_stability.txt"
python benchmarks/training_throughput.py --device "$DEVICE" --data-dir "$DATA_DIR" ${TT_ARGS:-} 2>&1 | tee "$OUT/training_throughput.txt"
