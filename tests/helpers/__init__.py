"""What several test modules share: the service under gunicorn, the emulator's call log, Redis, data, scrapes, the leak check.

No test module imports another; they import from here.
"""
