"""agi_scripts."""
