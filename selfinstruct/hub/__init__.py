"""An export folder as a Hugging Face dataset repository: the `datasets` configs of the files present
(configs.py), the run's facts (facts.py) and its models' licenses (licenses.py), the generated markdown
(body.py) and the card that holds them (card.py: `write_card`, which a sink stage calls after writing its
files, with the facts the pipeline passed it)."""

CARD = "README.md"  # here, so that a stage can name its card without importing the card's libraries
# The comments around the card's generated section (card.py); here, so that the pipeline config can refuse
# settings that hold them without importing the card's libraries
BEGIN = "<!-- selfinstruct: generated card begins -->"
END = "<!-- selfinstruct: generated card ends -->"
