"""`python -m selfinstruct.cli`."""
from . import main

main()
