"""Pipeline stages. Each reads the previous stage's shards (or the seed tasks) and writes its own.
(Transitional: the function-style stages are registered through thin Stage classes.)"""
from ..registry import register_stage
from ..stage import Stage
from . import alpaca, bootstrap, classify, export, filter, instances


def _legacy(name, fn, order, generator=False):
    cls = type(f"{name.title()}Stage", (Stage,), {
        "name": name, "order": order, "generator": generator,
        "run": lambda self, store, inputs: fn(self.ctx, store, inputs)})
    return register_stage(cls)


for _name, _mod, _order, _gen in [("bootstrap", bootstrap, 10, True), ("alpaca", alpaca, 10, True),
                                  ("classify", classify, 20, False), ("instances", instances, 30, False),
                                  ("filter", filter, 40, False), ("export", export, 90, False)]:
    _legacy(_name, _mod.run, _order, _gen)

STAGES = {"bootstrap": bootstrap.run, "classify": classify.run, "instances": instances.run,
          "alpaca": alpaca.run, "filter": filter.run, "export": export.run}
