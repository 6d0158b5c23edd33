"""Evaluation of backmapped structures: distributions, divergences, RDFs, reports."""
