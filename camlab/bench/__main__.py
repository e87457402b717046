"""``python -m camlab.bench``: the peers benchmark (``camlab-bench``)."""
from .peers import main

main()
