"""sitewatch: satellite change detection for camps, coal mines and coal ports."""

__version__ = "0.1.0"
