"""`make bench`: Gather's benchmarks, each figure printed beside a baseline measured in the same run.

Every benchmark starts what it measures from scratch (fresh PostgreSQL databases, a fresh RabbitMQ
virtual host, the Procfile processes under gunicorn exactly as `make run` starts them), so one run
never leaves work behind for the next. See docs/benchmarks.md for what each figure means.
"""
