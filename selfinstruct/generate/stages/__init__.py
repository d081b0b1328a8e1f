"""Pipeline stages. Each reads the previous stage's shards (or the seed tasks) and writes its own."""
from . import alpaca, bootstrap, classify, export, filter, instances

STAGES = {
    "bootstrap": bootstrap.run,
    "classify": classify.run,
    "instances": instances.run,
    "alpaca": alpaca.run,
    "filter": filter.run,
    "export": export.run,
}
