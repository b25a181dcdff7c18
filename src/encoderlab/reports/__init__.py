"""Plots and HTML reports built from run directories."""
