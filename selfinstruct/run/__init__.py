"""A run directory as written by `generate`: reader.py reads run.json, the manifests and the shards
(the stages in the order they ran), for every command that looks at a run."""
