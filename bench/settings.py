"""The app's settings, plus one URL the benchmark measures as the dashboard's floor (bench/urls.py)."""

from autumn_admin.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
