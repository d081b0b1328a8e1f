"""`selfinstruct ablate`: train on each selection of a run and compare the models on the same held-out prompts."""
