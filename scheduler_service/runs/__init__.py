"""Run history (SPEC §6): what every run of every job did."""
