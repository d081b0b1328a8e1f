# selfinstruct: `make generate` grows a dataset, `make test` runs the tests. Both set up everything.
VENV    ?= .venv
BIN     := $(VENV)/bin
CONFIG  ?= pipelines/default.yaml
RUN     ?= runs/default
ARGS    ?=
PYTEST_ARGS ?=

.PHONY: help install prepare-model generate alpaca test test-fast test-slow test-engine test-unit finetune evaluate ablate dpo grpo rlvr knowledge documents templates stats bench bench-dedup bench-generate bench-ray bench-ifbench clean

help:
	@echo "make generate   install, prepare the embedded model, run $(CONFIG) -> $(RUN)"
	@echo "make test       install, prepare the embedded model, run all tests: two processes, fast + Ray | slow + engine (17-18 min here)"
	@echo "make test-fast  the fast lane: no engine, Ray, subprocess or training, 5 s a test (1 min here)"
	@echo "make test-slow  CPU training and subprocess CLIs;  make test-engine  real vLLM engines, servers and Ray"
	@echo "make finetune   fine-tune the embedded model on $(RUN)/export -> $(RUN)/finetuned"
	@echo "make grpo       verified data (pipelines/verified.yaml) -> SFT -> GRPO on the constraint checkers"
	@echo "make rlvr       plain SFT vs verified SFT, + DPO, + GRPO on $(VERIFIED), evaluated under a stated rule"
	@echo "make documents  instruction data from your documents: make documents DOCS=DIR -> runs/docs"
	@echo "make templates  FLAN-style instructions from a labelled dataset (TEMPLATES_DATA=FILE; default: a real one)"
	@echo "make knowledge  raw text vs grounded instructions vs both (+ general $(RUN)): knowledge, IFBench, pairwise"
	@echo "make dpo        preference pairs from $(RUN) answered by $(RUN)/finetuned, then DPO -> $(RUN)/dpo"
	@echo "make evaluate   base vs fine-tuned answers on the held-out split (SUITES=\"ifbench constraints pairwise reference\")"
	@echo "make ablate     one model per selection of $(RUN) (judge, longest, random, all), compared (CPU: a smoke)"
	@echo "make stats      report on $(RUN)"
	@echo "make bench      benchmarks (bench/)"

$(BIN)/.installed: pyproject.toml scripts/install.sh
	VENV=$(VENV) bash scripts/install.sh
	@touch $@

install: $(BIN)/.installed

prepare-model: install
	$(BIN)/selfinstruct prepare-model

generate: prepare-model
	$(BIN)/selfinstruct generate -c $(CONFIG) -o $(RUN) $(ARGS)

alpaca:
	$(MAKE) generate CONFIG=pipelines/alpaca.yaml RUN=runs/alpaca

# test lanes (README, "Tests"; tests/conftest.py): fast = every test marked neither slow nor engine.
# `make test`: the fast lane, then the slow and engine lanes in two processes side by side (scripts/test.sh)
test: prepare-model
	PY=$(BIN)/python bash scripts/test.sh $(PYTEST_ARGS)

test-fast: prepare-model
	$(BIN)/python -m pytest -q -ra -m fast $(PYTEST_ARGS)

test-slow: prepare-model
	$(BIN)/python -m pytest -q -ra -m slow $(PYTEST_ARGS)

test-engine: prepare-model
	$(BIN)/python -m pytest -q -ra -m engine $(PYTEST_ARGS)

# no engine: the fast and slow lanes
test-unit: prepare-model
	$(BIN)/python -m pytest -q -ra -m "not engine" $(PYTEST_ARGS)

finetune: prepare-model
	$(BIN)/selfinstruct finetune -c pipelines/finetune.yaml -d $(RUN) -o $(RUN)/finetuned \
	  --max-steps 20 --batch-size 4 --max-length 512 --overwrite $(ARGS)

# after `make finetune`: the policy answers the train split (DPO_LIMIT=N: its first N prompts), the judge ranks,
# DPO for a few steps (CPU: minutes)
DPO_LIMIT ?=
dpo: prepare-model
	$(BIN)/selfinstruct generate -c pipelines/preference.yaml -o $(RUN)/preference \
	  --set responses.source=$(RUN) --set responses.model=$(RUN)/finetuned $(if $(DPO_LIMIT),--set responses.limit=$(DPO_LIMIT))
	$(BIN)/selfinstruct dpo -c pipelines/dpo.yaml -d $(RUN)/preference -o $(RUN)/dpo --model $(RUN)/finetuned \
	  --max-steps 10 --batch-size 2 --lr 5e-6 --max-length 512 --overwrite $(ARGS)

# verified data (pipelines/verified.yaml), SFT on its verified answers, then GRPO with the constraint checkers
# as the reward, on the embedded model (CPU: minutes; README, "GRPO")
VERIFIED ?= runs/verified
GRPO_STEPS ?= 20
grpo: prepare-model
	$(BIN)/selfinstruct generate -c pipelines/verified.yaml -o $(VERIFIED)
	$(BIN)/selfinstruct finetune -c pipelines/finetune.yaml -d $(VERIFIED) -o $(VERIFIED)/sft \
	  --max-steps 20 --batch-size 4 --max-length 512 --overwrite
	$(BIN)/selfinstruct grpo -c pipelines/grpo.yaml -d $(VERIFIED) -o $(VERIFIED)/grpo --model $(VERIFIED)/sft \
	  --max-steps $(GRPO_STEPS) --overwrite $(ARGS)

# which training on the verified prompts helps: plain SFT, verified SFT, + DPO, + GRPO, against the base,
# under a rule printed first (README, "GRPO"); LIMIT=0 for all 294 IFBench prompts (a GPU run)
LIMIT ?= 100
rlvr: prepare-model
	$(BIN)/selfinstruct generate -c pipelines/verified.yaml -o $(VERIFIED)
	$(BIN)/selfinstruct rlvr -d $(VERIFIED) -o $(VERIFIED)/rlvr --finetune-config pipelines/finetune.yaml \
	  --dpo-config pipelines/dpo.yaml --grpo-config pipelines/grpo.yaml --limit $(LIMIT) -q $(ARGS)

# instruction data grounded in your own documents (pipelines/documents.yaml): make documents DOCS=path/to/docs
DOCS ?= docs
documents: prepare-model
	$(BIN)/selfinstruct generate -c pipelines/documents.yaml -o runs/docs --set documents.path=$(DOCS) $(ARGS)

# FLAN-style instructions from a labelled dataset: a real one written offline (standard-library docstrings
# by Library Reference chapter, selfinstruct/corpora/stdlib_topics.py), or TEMPLATES_DATA=FILE of your own
TEMPLATES_DATA ?= runs/templates-data/topics.csv
templates: install
	@[ -f $(TEMPLATES_DATA) ] || $(BIN)/python -c "from pathlib import Path; from selfinstruct.corpora.stdlib_topics \
	  import write_topics; print(write_topics(Path('$(TEMPLATES_DATA)')), 'rows -> $(TEMPLATES_DATA)')"
	$(BIN)/selfinstruct generate -c pipelines/templates.yaml -o runs/templates --set templates.path=$(TEMPLATES_DATA) $(ARGS)

# the seed's claim: raw domain text vs grounded instructions vs both (+ general), on the standard library's
# docstrings, against closed-book questions, IFBench and the pairwise judge (README, "Your documents"; needs
# `make generate` for $(RUN)); LIMIT=0 for all 294 IFBench prompts (a GPU run)
KNOWLEDGE ?= runs/knowledge
knowledge: prepare-model
	$(BIN)/selfinstruct knowledge -o $(KNOWLEDGE) --general $(RUN) --finetune-config pipelines/finetune.yaml \
	  --limit $(LIMIT) -q $(ARGS)

SUITES ?= reference
evaluate: prepare-model
	$(BIN)/selfinstruct evaluate --tuned $(RUN)/finetuned --data $(RUN) $(foreach s,$(SUITES),--suite $(s)) $(ARGS)

# which selection of a judged run trains the better model (needs a judge stage in $(RUN) for `judge`)
SELECTORS ?= all random longest judge
ablate: prepare-model
	$(BIN)/selfinstruct ablate -d $(RUN) -o $(RUN)/ablate -c pipelines/finetune.yaml \
	  --max-steps 20 --batch-size 4 --max-length 512 $(foreach s,$(SELECTORS),--selector $(s)) $(ARGS)

# the full IFBench suite, embedded base vs the `make finetune` output (about 10-15 minutes per model on CPU)
bench-ifbench: prepare-model
	$(BIN)/selfinstruct evaluate --tuned $(RUN)/finetuned --suite ifbench -o $(RUN)/finetuned/bench.jsonl --no-loss $(ARGS)

stats: install
	$(BIN)/selfinstruct stats $(RUN)

bench: bench-dedup

bench-dedup: install
	$(BIN)/python bench/dedup.py $(ARGS)

bench-generate: prepare-model
	$(BIN)/python bench/generate.py $(ARGS)

# the Ray executor (ray.data.llm replicas) vs the local executor on the same requests
bench-ray: prepare-model
	$(BIN)/python bench/ray_executor.py $(ARGS)

clean:
	rm -rf runs .pytest_cache
