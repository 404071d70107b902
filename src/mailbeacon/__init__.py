"""mailbeacon: self-hosted email open and click tracking with honest labels."""

__version__ = "0.1.0"
