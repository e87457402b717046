"""Where the repository's files are, whatever directory pytest runs from."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
