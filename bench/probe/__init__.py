"""The probe process (``python bench/probe CONFIG``); see ``__main__``."""
