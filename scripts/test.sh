#!/usr/bin/env bash
# `make test`: every lane, as two pytest processes side by side. One runs the fast lane, then the Ray
# modules; the other runs every other slow or engine module (measured: the two take about as long; README,
# "Tests"). vLLM binds each engine's CPU worker to cores it picks itself (on 2 cores: core 0, for every
# engine), so each process gets half of the cores for its engines. The fast lane shares the cores here, so
# its per-test limit is 15 s, not the 5 s of `make test-fast`. A machine with one core runs the lanes one
# after the other. Every lane always runs; the first failure counts.
set -uo pipefail
PY=${PY:-.venv/bin/python}
RAY_MODULES=(tests/test_ray.py tests/test_ray_vllm.py)
cores=$(nproc)
half=$(( cores / 2 ))

if [ "$half" -lt 1 ] || [ -n "${VLLM_CPU_OMP_THREADS_BIND:-}" ]; then  # one core, or the user's own binding
  "$PY" -m pytest -q -ra -m fast "$@"; fast=$?
  "$PY" -m pytest -q -ra -m "not fast" "$@"; rest=$?
  exit $(( fast || rest ))
fi
cores_of() {  # the cores of half $1 (0 or 1), as VLLM_CPU_OMP_THREADS_BIND takes them
  local first=$(( $1 * half ))
  if [ "$half" -eq 1 ]; then echo "$first"; else echo "$first-$(( first + half - 1 ))"; fi
}
log=$(mktemp)
ignore=()
for m in "${RAY_MODULES[@]}"; do ignore+=(--ignore "$m"); done
VLLM_CPU_OMP_THREADS_BIND=$(cores_of 0) "$PY" -m pytest -q -ra -m "not fast" "${ignore[@]}" "$@" >"$log" 2>&1 &
rest_pid=$!
SELFINSTRUCT_FAST_TIMEOUT_S=15 "$PY" -m pytest -q -ra -m fast "$@"; fast=$?
VLLM_CPU_OMP_THREADS_BIND=$(cores_of 1) "$PY" -m pytest -q -ra -m "not fast" "${RAY_MODULES[@]}" "$@"; ray=$?
wait "$rest_pid"; rest=$?
echo "---- every other slow and engine module, run alongside ----"
cat "$log"
rm -f "$log"
exit $(( fast || rest || ray ))
