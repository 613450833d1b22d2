"""KetaCare: clinical software for ketamine-assisted treatment programmes for adult ADHD."""

__version__ = "0.1.0"
