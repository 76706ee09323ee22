"""monitor: poll news feeds, match watchlists, deliver each alert once."""

__version__ = "0.1.0"
PROJECT_URL = "https://github.com/monitor-news/monitor"
USER_AGENT = f"monitor/{__version__} (+{PROJECT_URL})"
