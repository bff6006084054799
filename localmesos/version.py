"""The Apache Mesos release localmesos answers as (master and agents alike), and its build."""
from __future__ import annotations

VERSION = "1.11.0"
BUILD = {"build_date": "2020-11-24 00:00:00", "build_time": 1606176000.0, "build_user": "localmesos"}
