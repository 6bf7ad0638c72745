"""Client for the Tweakwise backend (Navigator) API, shared by every function of this bundle."""

__version__ = "0.1.0"
